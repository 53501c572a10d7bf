"""Rejected variants of the DDIM article's claims (DDIM-*): misreadings and bugs a reader of the
article would plausibly write, each patched into impl/diffusion (and into the family adapter
where a property calls the function through it)."""

import torch

from impl.diffusion import ddim, ddpm, schedules
from properties.adapters import diffusion as adapter
from properties.variants import variant


def _swap(mp, module, name, fn, adapter_name=None):
    mp.setattr(module, name, fn)
    if adapter_name:
        mp.setattr(adapter.Reference, adapter_name, staticmethod(fn))


@variant(
    "DDIM-01", name="abar-cumprod-shifted", why="abar_t = prod_{i<t} (1 - beta_i): one factor short"
)
def _(mp):
    clean = schedules.alphas_cumprod

    def shifted(betas):
        abar = clean(betas)
        return torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])

    mp.setattr(schedules, "alphas_cumprod", shifted)


@variant("DDIM-01", name="q-sample-variance-not-rooted",
         why="x_t = sqrt(abar) x_0 + (1 - abar) eps: the variance where the std belongs")  # fmt: skip
def _(mp):
    mp.setattr(ddpm, "q_sample", lambda x0, a, eps: a**0.5 * x0 + (1 - a) * eps)


@variant("DDIM-02", name="posterior-mean-sqrt-abar-t-on-x0",
         why="mu~ with sqrt(abar_t) in place of sqrt(abar_{t-1}) on x_0")  # fmt: skip
def _(mp):
    clean = ddpm.posterior

    def posterior(x_t, x0, a, b):
        _, var = clean(x_t, x0, a, b)
        mean = (a / b) ** 0.5 * (1 - b) / (1 - a) * x_t + a**0.5 * (1 - a / b) / (1 - a) * x0
        return mean, var

    mp.setattr(ddpm, "posterior", posterior)


@variant("DDIM-02", name="posterior-variance-abar-t-for-abar-t-1",
         why="beta~ = (1 - abar_t) beta_t / (1 - abar_t): abar_t where abar_{t-1} belongs")  # fmt: skip
def _(mp):
    clean = ddpm.posterior

    def posterior(x_t, x0, a, b):
        mean, _ = clean(x_t, x0, a, b)
        return mean, (1 - a) * (1 - a / b) / (1 - a)

    mp.setattr(ddpm, "posterior", posterior)


@variant("DDIM-03", name="ddim-k-without-sqrt",
         why="k = (1 - abar_tau - sigma^2)/(1 - abar_t): the square root dropped")  # fmt: skip
def _(mp):
    def coefficients(a, b, sigma):
        k = (1 - b - sigma**2) / (1 - a)
        return b**0.5 - k * a**0.5, k

    mp.setattr(ddim, "coefficients", coefficients)


def _ddim_step(x0_hat_power=0.5, direction_sigma=True):
    def step(x_t, eps_hat, a, b, sigma, z):
        x0_hat = (x_t - (1 - a) ** 0.5 * eps_hat) / a**x0_hat_power
        direction = (1 - b - (sigma**2 if direction_sigma else 0.0)) ** 0.5
        out = b**0.5 * x0_hat + direction * eps_hat
        return out + sigma * z if sigma else out

    return step


@variant("DDIM-04", name="ddim-x0-hat-without-sqrt",
         why="x0_hat = (x_t - sqrt(1 - abar_t) eps)/abar_t: divided by abar_t, not its root")  # fmt: skip
def _(mp):
    _swap(mp, ddim, "step", _ddim_step(x0_hat_power=1.0), "ddim_step")


@variant("DDIM-04", "DDIM-05", name="ddim-direction-ignores-sigma",
         why="direction term sqrt(1 - abar_tau) eps, without the - sigma^2")  # fmt: skip
def _(mp):
    _swap(mp, ddim, "step", _ddim_step(direction_sigma=False), "ddim_step")


@variant("DDIM-05", name="sampler-paper-sigma-single-step-alpha",
         why="the sampler's paper sigma built with the single-step alpha_t on skipped steps")  # fmt: skip
def _(mp):
    clean = ddim.step_sigma
    mp.setattr(ddim, "step_sigma", lambda rule, eta, abar, t, b: clean("article", eta, abar, t, b))


@variant("DDIM-06.consecutive", name="single-step-alpha-off-by-one",
         why="the sampler's single-step alpha_t read one step late: abar_{t-1}/abar_{t-2}")  # fmt: skip
def _(mp):
    clean = ddim.single_step_alpha
    mp.setattr(ddim, "single_step_alpha", lambda abar, t: clean(abar, max(t - 1, 0)))


@variant("DDIM-06.skipped", name="article-sigma-silently-fixed",
         why="the article's sigma replaced by the paper's (1 - abar_t/abar_tau): hides its error")  # fmt: skip
def _(mp):
    _swap(mp, ddim, "sigma_article", lambda eta, a, b, alpha_t: ddim.sigma_paper(eta, a, b),
          "sigma_article")  # fmt: skip


@variant("DDIM-07", "DDIM-09.pattern", name="sampler-ignores-eta",
         why="the sampler's sigma always built with eta = 1 (the eta argument never reaches it)")  # fmt: skip
def _(mp):
    clean = ddim.step_sigma
    mp.setattr(ddim, "step_sigma", lambda rule, eta, abar, t, b: clean(rule, 1.0, abar, t, b))


def _spacing(bad_spacing, fix):
    """The adapter's timesteps with one spacing replaced (the claims' properties call it)."""
    clean = schedules.timesteps

    def timesteps(T, n, spacing):
        return fix(clean(T, n, spacing), T, n) if spacing == bad_spacing else clean(T, n, spacing)

    return staticmethod(timesteps)


@variant("DDIM-08.linear", name="ddim-linear-as-leading",
         why="tau_i = i floor(T/n) (the leading spacing) for floor(i T/n)")  # fmt: skip
def _(mp):
    leading = schedules.timesteps
    fn = _spacing("ddim-linear", lambda ts, T, n: leading(T, n, "leading"))
    mp.setattr(adapter.Reference, "timesteps", fn)


def _bump_repeats(ts, T, n):
    """Increasing order, each timestep raised to one above the previous where it repeats it."""
    out = []
    for t in reversed(ts.tolist()):
        out.append(max(t, out[-1] + 1) if out else t)
    return torch.tensor(out[::-1], dtype=torch.long)


@variant("DDIM-08.quadratic", name="ddim-quadratic-repeats-bumped",
         why="floor(c i^2) silently made strictly increasing (a repeat raised by one): hides "
             "the article's repeated timesteps")  # fmt: skip
def _(mp):
    mp.setattr(adapter.Reference, "timesteps", _spacing("ddim-quadratic", _bump_repeats))


@variant("DDIM-09.pattern", name="eta-as-on-off-switch",
         why="eta read as a switch: any eta > 0 samples with sigma(eta = 1)")  # fmt: skip
def _(mp):
    clean = ddim.step_sigma
    mp.setattr(
        ddim, "step_sigma", lambda rule, eta, abar, t, b: clean(rule, float(eta > 0), abar, t, b)
    )


@variant("DDIM-09.100-steps", "DDIM-09.20-steps", name="ddpm-x0-hat-divided-by-abar",
         why="DDPM's x0_hat divided by abar_t, not its root: the 1000-step baseline degraded")  # fmt: skip
def _(mp):
    mp.setattr(ddpm, "eps_to_x0", lambda x_t, eps, a: (x_t - (1 - a) ** 0.5 * eps) / a)


@variant("DDIM-10", name="ode-euler-s-without-sqrt",
         why="Euler step in s = (1 - abar)/abar, the square root of sigma dropped")  # fmt: skip
def _(mp):
    def ode_euler_step(x_t, eps_hat, a, b):
        s_t, s_tau = (1 - a) / a, (1 - b) / b
        return b**0.5 * (x_t / a**0.5 + (s_tau - s_t) * eps_hat)

    _swap(mp, ddim, "ode_euler_step", ode_euler_step, "ode_euler_step")


@variant("DDIM-11", name="slerp-as-lerp", why="linear interpolation of x_T in place of SLERP")
def _(mp):
    _swap(mp, ddim, "slerp", lambda x_a, x_b, u: (1 - u) * x_a + u * x_b, "slerp")
