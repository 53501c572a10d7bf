"""DDIM: the non-Markovian generalisation of DDPM (Song et al. 2021; seed article 1).

With a = abar_t, b = abar_tau (tau < t) and the model's eps_theta(x_t, t):

(1) undetermined coefficients: for sigma^2 <= 1 - b, x_tau = lambda x_0 + k x_t + sigma eps,
    k = sqrt((1 - b - sigma^2)/(1 - a)), lambda = sqrt(b) - k sqrt(a), keeps q(x_tau|x_0) =
    N(sqrt(b) x_0, (1 - b) I) for every sigma (the non-Markovian family).
(2) update      x0_hat = (x_t - sqrt(1 - a) eps_theta)/sqrt(a)
                x_tau  = sqrt(b) x0_hat + sqrt(1 - b - sigma^2) eps_theta + sigma z
(3) the paper's sigma(eta) = eta sqrt((1 - b)/(1 - a)) sqrt(1 - a/b); eta = 1 is the DDPM posterior
    step on (t, tau) with beta = 1 - a/b, eta = 0 is deterministic.
(4) the article's sigma = eta sqrt((1 - b)/(1 - a)) sqrt(1 - alpha_t), with the single-step
    alpha_t = abar_t / abar_{t-1}; it equals (3) only when tau = t - 1.
(5) ODE view: xbar = x/sqrt(abar), s = sqrt((1 - abar)/abar); DDIM with eta = 0 is exactly the Euler
    step xbar_tau = xbar_t + (s_tau - s_t) eps_theta(x_t, t) of d xbar = eps(xbar/sqrt(s^2 + 1)) d s.
(6) inversion: the eta = 0 update run forward in t (from tau to t) maps x_0 back to x_T.
(7) SLERP between x_T endpoints: sin((1 - u) th)/sin(th) x_a + sin(u th)/sin(th) x_b,
    cos(th) = <x_a, x_b>/(|x_a| |x_b|); parallel endpoints (th = 0) interpolate linearly,
    antiparallel ones (th = pi, no unique great circle) are an error.
The article's sampler: T = 1000, linear betas, 20 steps at int(linspace(999, 0, 20)) (truncated),
stopping at tau = 0 (sample(..., to_data=False)); by default sample() takes one more step, to
abar = 1, as the DDIM paper's code does.
"""

import math

import torch

from impl.diffusion.schedules import F64, _positive_int, check_abar, check_timesteps


def _eta(eta):
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta: must be finite and >= 0, got {eta!r}")


def sigma_paper(eta, a, b):
    """(3)."""
    _eta(eta)
    return eta * ((1 - b) / (1 - a)) ** 0.5 * (1 - a / b) ** 0.5


def sigma_article(eta, a, b, alpha_t):
    """(4): single-step alpha_t = abar_t / abar_{t-1} in place of a/b."""
    _eta(eta)
    return eta * ((1 - b) / (1 - a)) ** 0.5 * (1 - alpha_t) ** 0.5


def _direction(b, sigma):
    """sqrt(1 - b - sigma^2); sigma^2 may exceed 1 - b only by rounding (8 ulps)."""
    if not math.isfinite(sigma) or sigma < 0 or sigma**2 > (1 - b) * (1 + 2**-50):
        raise ValueError(
            f"sigma: need 0 <= sigma^2 <= 1 - abar_tau = {1 - b!r}, got sigma = {sigma!r}"
        )
    return max(1 - b - sigma**2, 0.0) ** 0.5


def _same_shape(x_t, **others):
    for name, value in others.items():
        if value is not None and tuple(value.shape) != tuple(x_t.shape):
            raise ValueError(
                f"{name}: shape {tuple(value.shape)} does not match x_t's {tuple(x_t.shape)}"
            )


def coefficients(a, b, sigma):
    """(1): (lambda, k) of x_tau = lambda x_0 + k x_t + sigma eps."""
    k = _direction(b, sigma) / (1 - a) ** 0.5
    return b**0.5 - k * a**0.5, k


def step(x_t, eps_hat, a, b, sigma, z):
    """(2): one DDIM step from abar_t = a to abar_tau = b (tensors; one new tensor, in-place
    updates: x_tau = sqrt(b/a) x_t + (sqrt(1 - b - sigma^2) - sqrt(b (1 - a)/a)) eps_hat + sigma z)."""
    _same_shape(x_t, eps_hat=eps_hat, z=z if sigma else None)
    direction = _direction(b, sigma)
    x0_hat = torch.add(x_t, eps_hat, alpha=-((1 - a) ** 0.5)).mul_(1 / a**0.5)  # eps_to_x0
    out = x0_hat.mul_(b**0.5).add_(eps_hat, alpha=direction)
    return out.add_(z, alpha=sigma) if sigma else out


def article_timesteps(T=1000, n=20):
    """The article's schedule: linspace(T - 1, 0, n) truncated towards zero, in integers:
    t_k = floor((T - 1)(n - 1 - k) / (n - 1)), k = 0..n-1 (a float linspace can land just below
    an integer and truncate one lower: float64 gives 14.999999999999998 -> 14 at T = 31,
    n = 23, k = 11). n = 1 gives [T - 1]."""
    _positive_int("T", T)
    _positive_int("n", n)
    if n > T:
        raise ValueError(f"n: {n} steps exceed the T = {T} timesteps")
    if n == 1:
        return torch.tensor([T - 1])
    k = torch.arange(n)
    return (T - 1) * (n - 1 - k) // (n - 1)


def single_step_alpha(abar, t):
    """(4)'s alpha_t = abar_t / abar_{t-1}, the one-step alpha of DDPM (abar_{-1} = 1: the data)."""
    return abar[t].item() / (abar[t - 1].item() if t > 0 else 1.0)


def step_sigma(rule, eta, abar, t, b):
    """The sampler's sigma on the step from timestep t to abar_tau = b: (3) or (4)."""
    a = abar[t].item()
    if rule == "paper":
        return sigma_paper(eta, a, b)
    return sigma_article(eta, a, b, single_step_alpha(abar, t))


def plan(abar, timesteps, eta, sigma="paper", to_data=True):
    """The sampler's steps [(t, a, b, s)]: from each timestep t (a = abar_t) to the next one
    (b = abar_tau) with s = step_sigma(sigma, eta, ...). to_data=True (the DDIM paper's code,
    diffusers with set_alpha_to_one) adds one last step from the last timestep to the data
    (b = 1, where s = 0); to_data=False stops at the last timestep, as the article's sampler,
    whose 20 timesteps int(linspace(999, 0, 20)) give 19 steps, the last one to tau = 0.
    sigma^2 must not exceed 1 - b: eta > 1 can break that (ValueError naming eta; no clipping)."""
    if sigma not in ("paper", "article"):
        raise ValueError(f"sigma: 'paper' or 'article', got {sigma!r}")
    _eta(eta)
    abar = check_abar(torch.as_tensor(abar, dtype=F64))
    ts = check_timesteps(timesteps, abar.numel()).tolist()
    targets = [abar[tau].item() for tau in ts[1:]] + ([1.0] if to_data else [])
    steps = []
    for t, b in zip(ts, targets, strict=False):
        s = step_sigma(sigma, eta, abar, t, b)
        if s**2 > (1 - b) * (1 + 2**-50):
            raise ValueError(
                f"eta: {eta!r} gives sigma^2 = {s**2!r} > 1 - abar_tau = {1 - b!r} on the step "
                f"from t = {t}: a DDIM step needs sigma^2 <= 1 - abar_tau"
            )
        steps.append((t, abar[t].item(), b, s))
    return steps


def sample(eps_model, x_T, abar, timesteps, eta, generator=None, sigma="paper", to_data=True):
    """(2) over a decreasing sub-sequence, the steps of `plan` (see there for `to_data`);
    z ~ N(0, I) in x's dtype from `generator`, drawn only on steps with s > 0.
    `sigma`: "paper" (3) or "article" (4)."""
    x = x_T
    for t, a, b, s in plan(abar, timesteps, eta, sigma, to_data):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype) if s > 0 else None
        x = step(x, eps_model(x, t), a, b, s, z)
    return x


def invert(eps_model, x0, abar, timesteps):
    """(6): x_0 -> x_T with the deterministic update run forward through increasing timesteps
    (the model is evaluated at the current, less noisy point: an approximation that improves
    as the steps get smaller)."""
    abar = check_abar(torch.as_tensor(abar, dtype=F64))
    ts = check_timesteps(timesteps, abar.numel()).flip(0).tolist()  # increasing
    x, b, t_prev = x0, 1.0, None
    for t in ts:
        a = abar[t].item()
        eps = eps_model(x, t_prev) if t_prev is not None else eps_model(x, t)
        x = a**0.5 * ((x - (1 - b) ** 0.5 * eps) / b**0.5) + (1 - a) ** 0.5 * eps
        b, t_prev = a, t
    return x


def ode_euler_step(x_t, eps_hat, a, b):
    """(5): x_tau from the Euler step in (xbar, s) coordinates."""
    s_t, s_tau = ((1 - a) / a) ** 0.5, ((1 - b) / b) ** 0.5
    xbar_tau = x_t / a**0.5 + (s_tau - s_t) * eps_hat
    return b**0.5 * xbar_tau


def slerp(x_a, x_b, u):
    """(7)."""
    cos = torch.sum(x_a * x_b) / (x_a.norm() * x_b.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    if theta.abs() < 1e-12:
        return (1 - u) * x_a + u * x_b
    if not math.pi - theta >= 1e-12:  # (also NaN)
        raise ValueError("x_b: antiparallel to x_a (theta = pi): no unique great circle")
    return (torch.sin((1 - u) * theta) * x_a + torch.sin(u * theta) * x_b) / torch.sin(theta)
