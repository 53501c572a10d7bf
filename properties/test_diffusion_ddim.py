"""DDIM-03..DDIM-11: the DDIM family, its sampler and its claims (impl/diffusion/ddim.py).

Rounding budgets: x0_hat = (x_t - sqrt(1 - a) eps)/sqrt(a) amplifies absolute rounding of x_t by
1/sqrt(a) (up to 160 at the end of the linear schedule), so identities between steps get
8 u (|x_t| + |eps|)(sqrt(b/a) + 1) + 8 u (|eps| + |z|) per entry (u = 2^-53).
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d

from impl.diffusion import ddim, oracle, schedules
from properties import stats, variants
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

pytestmark = pytest.mark.usefixtures("one_torch_thread")

U = 2.0**-53
ABAR = schedules.alphas_cumprod(schedules.linear_betas())
F64 = torch.float64
REFERENCE_CALLS = {
    "test_update_is_predicted_x0_direction_and_noise": "DDIM-03's lambda, k (ddim.coefficients) "
    "give the expected lambda x_0 + k x_t + sigma z the step under test is compared with",
}


def step_budget(x_t, eps, z, a, b):
    return 8 * U * ((x_t.abs() + eps.abs()) * ((b / a) ** 0.5 + 1) + eps.abs() + z.abs())


pairs = st.integers(1, 999).flatmap(lambda t: st.tuples(st.just(t), st.integers(-1, t - 1)))


def abar_of(k):
    return 1.0 if k < 0 else ABAR[k].item()


@st.composite
def step_inputs(draw):
    t, tau = draw(pairs)
    seed = draw(seeds)
    gen = seed.torch()
    x0, eps, z = torch.randn(3, 8, generator=gen, dtype=F64) * torch.tensor(
        [[3.0], [1.0], [1.0]], dtype=F64
    )
    a, b = abar_of(t), abar_of(tau)
    return t, tau, a, b, x0, eps, z


@claim("DDIM-03")
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0))
def test_undetermined_coefficients_preserve_the_marginal(diffusion, inputs, fraction):
    t, tau, a, b, *_ = inputs
    sigma = fraction * (1 - b) ** 0.5
    lam, k = diffusion.coefficients(a, b, sigma)
    # mean: lambda + k sqrt(a) = sqrt(b); variance: k^2 (1 - a) + sigma^2 = 1 - b (a few roundings
    # of numbers <= 1, and 1 - b - sigma^2 carries u / (1 - b) relative)
    assert_close(lam + k * a**0.5, b**0.5, ulps=16, what="lambda + k sqrt(abar_t) - sqrt(abar_tau)")
    assert_close(
        k**2 * (1 - a) + sigma**2,
        1 - b,
        ulps=16,
        what="k^2 (1 - abar_t) + sigma^2 - (1 - abar_tau)",
    )
    current().summary = (
        "lambda, k keep mean sqrt(abar_tau) x_0 and variance 1 - abar_tau for every sigma"
    )


@claim("DDIM-03")
@statistical()
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0), x0=floats(-3, 3))
def test_x_tau_has_the_marginal_for_every_sigma(diffusion, inputs, fraction, x0):
    t, tau, a, b, _, _, _ = inputs
    gen = torch.Generator().manual_seed(t * 1000 + tau + 1)
    sigma = fraction * (1 - b) ** 0.5
    lam, k = diffusion.coefficients(a, b, sigma)
    eps, z = torch.randn(2, 4000, generator=gen, dtype=F64)
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    x_tau = lam * x0 + k * x_t + sigma * z
    if b == 1:  # tau = -1, the data: sigma = k = 0, lambda = 1, the point mass at x_0
        assert torch.equal(x_tau, torch.full_like(x_tau, x0)), "x_tau at abar_tau = 1 is x_0"
        return
    stats.normal_law(x_tau.numpy(), b**0.5 * x0, 1 - b, what="x_tau vs N(sqrt(b) x_0, (1 - b))")


@claim("DDIM-04")
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0))
def test_update_is_predicted_x0_direction_and_noise(diffusion, inputs, fraction):
    """With the true eps, the update is lambda x_0 + k x_t + sigma z of DDIM-03."""
    t, tau, a, b, x0, eps, z = inputs
    sigma = fraction * (1 - b) ** 0.5
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    lam, k = ddim.coefficients(a, b, sigma)
    got = diffusion.ddim_step(x_t, eps, a, b, sigma, z)
    assert_close(got, lam * x0 + k * x_t + sigma * z, ulps=0, abs_floor=step_budget(x_t, eps, z, a, b) * 4,
                 what="DDIM step - (lambda x_0 + k x_t + sigma z)")  # fmt: skip
    current().summary = (
        "the update equals lambda x_0 + k x_t + sigma z when eps_theta is the true noise"
    )


def _ddpm_vs_ddim(diffusion, x_t, eps, z, a, b, sigma):
    return diffusion.ddim_step(x_t, eps, a, b, sigma, z), diffusion.ddpm_step(x_t, eps, a, b, z)


def _ddpm_budget(x_t, eps, z, a, b):
    # 1 - a/b and 1 - a lose u/(1 - .) relative in sigma and in the posterior coefficients
    cond = 1 / (1 - a) + (1 / (1 - a / b) if b < 1 else 0) + 1
    return step_budget(x_t, eps, z, a, b) * 4 * cond


@claim("DDIM-05")
@given(inputs=step_inputs())
def test_eta_one_is_the_ddpm_step_on_any_pair(diffusion, inputs):
    """sigma(eta = 1)^2 = beta~ with beta = 1 - abar_t/abar_tau, on consecutive and skipped pairs."""
    t, tau, a, b, x0, eps, z = inputs
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    sigma = diffusion.sigma_paper(1.0, a, b)
    got, want = _ddpm_vs_ddim(diffusion, x_t, eps, z, a, b, sigma)
    assert_close(got, want, ulps=0, abs_floor=_ddpm_budget(x_t, eps, z, a, b),
                 what="DDIM(eta = 1) step - DDPM step")  # fmt: skip
    current().summary = (
        "DDIM with the paper's sigma(eta=1) is the DDPM posterior step on every (t, tau)"
    )


def sampler_steps(diffusion, ts, sigma, seed, to_data=True):
    """Run the DDIM sampler (eta = 1) on the Gaussian oracle from x_T drawn with `seed` and return
    its own steps [(t, a, b, x_t, eps, z, x_tau)]: x_t and eps as the model saw them, x_tau the
    state it passed on (the output after the last step), z the noise it drew (z ~ N(0, I) from
    the caller's generator, one draw per step with sigma > 0: eta = 1 has sigma > 0 on every
    step to abar_tau < 1, and 0 on the step to the data, b = 1)."""
    model, seen = _gaussian_eps_model(), []

    def recording(x, t):
        eps = model(x, t)
        seen.append((t, x.clone(), eps))
        return eps

    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(seed), dtype=F64)
    out = diffusion.ddim_sample(recording, x_T, ABAR, ts, 1.0, torch.Generator().manual_seed(seed + 1),
                                sigma=sigma, to_data=to_data)  # fmt: skip
    assert [t for t, _, _ in seen] == list(ts)[: len(ts) - (not to_data)], "model calls"
    noise, steps = torch.Generator().manual_seed(seed + 1), []
    targets = [abar_of(tau) for tau in list(ts)[1:]] + ([1.0] if to_data else [])
    for i, ((t, x_t, eps), b) in enumerate(zip(seen, targets, strict=True)):
        z = torch.randn(x_t.shape, generator=noise, dtype=F64) if b < 1 else torch.zeros_like(x_t)
        x_tau = seen[i + 1][1] if i + 1 < len(seen) else out
        steps.append((t, abar_of(t), b, x_t, eps, z, x_tau))
    return steps


subsequences = st.lists(st.integers(0, 999), min_size=1, max_size=8, unique=True).map(
    lambda ts: sorted(ts, reverse=True)
)


@claim("DDIM-05")
@given(ts=subsequences, seed=st.integers(0, 2**20))
def test_the_samplers_own_steps_are_ddpm_steps_with_eta_one(diffusion, ts, seed):
    """The sampler's own steps (eta = 1, the paper's sigma) on any sub-sequence are DDPM
    posterior steps on the same (t, tau) with the same noise: whatever sigma the sampler uses
    per step is seen here, not a sigma the test computes."""
    for t, a, b, x_t, eps, z, x_tau in sampler_steps(diffusion, ts, "paper", seed):
        assert_close(x_tau, diffusion.ddpm_step(x_t, eps, a, b, z), ulps=0,
                     abs_floor=_ddpm_budget(x_t, eps, z, a, b),
                     what=f"the sampler's step {t} -> abar {b:.6g} - the DDPM step")  # fmt: skip
    current().summary = "the DDIM sampler's own eta = 1 steps are DDPM posterior steps"


consecutive = st.integers(1, 8).flatmap(
    lambda k: st.integers(k - 1, 999).map(lambda t0: list(range(t0, t0 - k, -1)))
)


@claim("DDIM-06.consecutive")
@given(ts=consecutive, seed=st.integers(0, 2**20), to_data=st.booleans())
def test_article_sigma_on_consecutive_steps(diffusion, ts, seed, to_data):
    """The sampler with the article's sigma (its own single-step alpha_t), eta = 1, on
    consecutive timesteps: each of its steps is the DDPM posterior step with the same noise."""
    for t, a, b, x_t, eps, z, x_tau in sampler_steps(diffusion, ts, "article", seed, to_data):
        assert_close(x_tau, diffusion.ddpm_step(x_t, eps, a, b, z), ulps=0,
                     abs_floor=_ddpm_budget(x_t, eps, z, a, b),
                     what=f"the article's sampler, step {t} -> {t - 1} - the DDPM step")  # fmt: skip
    current().summary = (
        "on consecutive steps 1 - alpha_t = 1 - abar_t/abar_{t-1}: the article's sampler is DDPM"
    )


@claim(refutes="DDIM-06.skipped")
def test_article_sigma_on_the_articles_skipped_steps(diffusion):
    """The article's sampler: its 20 timesteps int(linspace(999, 0, 20)), consecutive entries as
    (t, tau), stopping at tau = 0 (to_data=False: the model is called at the first 19 only),
    sigma with the single-step alpha_t, eta = 1. Each of its steps is the DDIM step with that
    sigma; a step that is not the DDPM posterior step with the same noise refutes the claim."""
    ts = diffusion.article_timesteps().tolist()
    steps = sampler_steps(diffusion, ts, "article", 0, to_data=False)
    assert len(steps) == 19 and steps[-1][2] == abar_of(0), "19 steps, the last one to tau = 0"

    def reproduces(i):
        t, a, b, x_t, eps, z, x_tau = steps[i]
        sigma = diffusion.sigma_article(1.0, a, b, a / abar_of(t - 1))
        assert_close(x_tau, diffusion.ddim_step(x_t, eps, a, b, sigma, z),
                     ulps=0, abs_floor=step_budget(x_t, eps, z, a, b) * 4,
                     what=f"the article's sampler at t = {t} - the article's DDIM step")  # fmt: skip
        want = diffusion.ddpm_step(x_t, eps, a, b, z)
        return bool(torch.all((x_tau - want).abs() <= _ddpm_budget(x_t, eps, z, a, b)))

    i = refute(st.sampled_from(range(len(steps))), reproduces, claim="DDIM-06.skipped",
               describe=lambda i: f"the article's step (t, tau) = ({ts[i]}, {ts[i + 1]})")  # fmt: skip
    t, tau = ts[i], ts[i + 1]
    a, b = abar_of(t), abar_of(tau)
    s_article = diffusion.sigma_article(1.0, a, b, a / abar_of(t - 1))
    s_paper = diffusion.sigma_paper(1.0, a, b)
    current().record(
        sigma_article=s_article, sigma_paper=s_paper, variance_ratio=s_paper**2 / s_article**2
    )
    current().summary = (
        f"(t, tau) = ({t}, {tau}): the article's sampler uses sigma {s_article:.4f} where the DDPM "
        f"posterior std is {s_paper:.4f} (variance x{s_paper**2 / s_article**2:.0f}): not DDPM"
    )


def _gaussian_eps_model():
    g = oracle.isotropic_mixture([[1.0, -0.5]], 0.7)
    return g.eps_model(ABAR)


@claim("DDIM-07")
@given(seed=seeds, n=st.sampled_from([10, 50, 100]))
def test_eta_zero_is_deterministic(diffusion, seed, n):
    model = _gaussian_eps_model()
    x_T = torch.randn(16, 2, generator=seed.torch(), dtype=F64)
    ts = diffusion.timesteps(1000, n, "leading")
    one = diffusion.ddim_sample(model, x_T, ABAR, ts, 0.0, torch.Generator().manual_seed(1))
    two = diffusion.ddim_sample(model, x_T, ABAR, ts, 0.0, torch.Generator().manual_seed(2))
    assert torch.equal(one, two), "eta = 0 must not use the noise"


@claim("DDIM-07")
def test_inversion_reconstructs_x_T_better_with_more_steps(diffusion):
    model = _gaussian_eps_model()
    x_T = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    errors = {}
    for n in (10, 50, 200, 1000):
        ts = diffusion.timesteps(1000, n, "leading")
        x0 = diffusion.ddim_sample(model, x_T, ABAR, ts, 0.0)
        errors[n] = float((diffusion.ddim_invert(model, x0, ABAR, ts) - x_T).abs().mean())
    values = list(errors.values())
    assert all(later < earlier for earlier, later in zip(values, values[1:], strict=False)), errors
    assert errors[1000] < 0.05
    current().record(**{f"mean |x_T - inverted x_T|, {n} steps": e for n, e in errors.items()})
    current().summary = (
        f"reconstruction error {values[0]:.3f} (10 steps) -> {values[-1]:.4f} (1000 steps)"
    )


@claim("DDIM-08.linear")
@given(T=st.integers(2, 2000), data=st.data())
def test_linear_subsequence_is_visited_exactly(diffusion, T, data):
    n = data.draw(st.integers(1, T))
    ts = diffusion.timesteps(T, n, "ddim-linear")
    assert ts.tolist() == [i * T // n for i in range(n - 1, -1, -1)], "tau_i = floor(i T / n)"
    assert len(set(ts.tolist())) == n and torch.all(ts[1:] < ts[:-1])
    visited = []
    abar = diffusion.alphas_cumprod(torch.linspace(1e-4, 0.02, T, dtype=F64))
    diffusion.ddim_sample(lambda x, t: visited.append(t) or torch.zeros_like(x), torch.zeros(1, 1, dtype=F64),
                          abar, ts, 0.0)  # fmt: skip
    assert visited == ts.tolist() and visited[-1] == ts[-1]
    current().summary = (
        "floor(c i), c = T/n, is strictly decreasing; the sampler calls the model at exactly those"
    )


@claim(refutes="DDIM-08.quadratic")
def test_quadratic_subsequence_repeats_timesteps(diffusion):
    def distinct(case):
        T, n = case
        ts = diffusion.timesteps(T, n, "ddim-quadratic")
        return len(set(ts.tolist())) == n

    T, n = refute(st.integers(2, 1000).flatmap(lambda T: st.tuples(st.just(T), st.integers(1, T))), distinct,
                  claim="DDIM-08.quadratic", describe=lambda c: f"T = {c[0]}, n = {c[1]}")  # fmt: skip
    for n_steps in (50, 100):
        ts = diffusion.timesteps(1000, n_steps, "ddim-quadratic").tolist()
        current().record(**{f"T = 1000, n = {n_steps}: distinct timesteps": len(set(ts))})
    current().summary = (
        f"T = {T}, n = {n}: floor(c i^2) repeats a timestep; at T = 1000, n = 100 only "
        f"{len(set(diffusion.timesteps(1000, 100, 'ddim-quadratic').tolist()))} are distinct"
    )


@claim("DDIM-10")
@given(inputs=step_inputs())
def test_eta_zero_is_the_euler_step_of_the_ode(diffusion, inputs):
    t, tau, a, b, x0, eps, z = inputs
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    got = diffusion.ode_euler_step(x_t, eps, a, b)
    want = diffusion.ddim_step(x_t, eps, a, b, 0.0, z)
    # s = sqrt((1 - a)/a) is large (<= 160) at the end of the schedule: rounding scales with it
    s = ((1 - a) / a) ** 0.5 + 1
    assert_close(
        got,
        want,
        ulps=0,
        abs_floor=step_budget(x_t, eps, z, a, b) * 4 * s,
        what="Euler step - DDIM(eta=0)",
    )
    current().summary = "DDIM(eta = 0) is the Euler step of d xbar = eps d s in xbar = x/sqrt(abar)"


@claim("DDIM-11")
@given(seed=seeds, d=st.integers(2, 64), u=floats(0.0, 1.0))
def test_slerp_endpoints_and_norm(diffusion, seed, d, u):
    gen = seed.torch()
    x_a, x_b = torch.randn(2, d, generator=gen, dtype=F64)
    x_b = x_b * (x_a.norm() / x_b.norm())  # equal norms
    theta = math.acos(float((x_a @ x_b) / (x_a.norm() * x_b.norm())))
    budget = 16 * (d + 4) * U * float(x_a.norm()) / math.sin(theta)
    assert_close(
        diffusion.slerp(x_a, x_b, 0.0), x_a, ulps=0, abs_floor=budget, what="slerp(0) - x_a"
    )
    assert_close(
        diffusion.slerp(x_a, x_b, 1.0), x_b, ulps=0, abs_floor=budget, what="slerp(1) - x_b"
    )
    assert_close(diffusion.slerp(x_a, x_b, u).norm(), x_a.norm(), ulps=0, abs_floor=budget,
                 what="|slerp(u)| - |x_a|")  # fmt: skip
    current().summary = "SLERP reproduces both endpoints and keeps the norm of equal-norm endpoints"


# DDIM-09: quality against the number of steps -----------------------------------------------
#
# Distances are computed, not sampled. The data: 0.3 N(-2, 0.4^2) + 0.7 N(1.5, 0.4^2) in 1-D with
# its exact eps-predictor; x_T ~ N(0, 1). Every sampler step is x_tau = m(x_t) + s z with m
# increasing (asserted), so the law of x_tau has the CDF F_tau(y) = E Phi((y - m(X_t))/s): the
# CDF F_t, pushed through m (F_t(m^{-1}(y)), monotone cubic interpolation on a grid of 2001 points
# over [-7, 7]) and smoothed by N(0, s^2) (a sampled Gaussian filter; Gauss-Hermite below 2 grid
# steps). The
# distance to the data is the 1-D energy distance E = 2 int (F - F_data)^2 dy, a squared distance
# as FID is. For eta = 0 the sampler is a monotone map M and F(M(x)) = Phi(x) exactly: E from the
# sampler itself on 4001 normal quantiles checks the grid computation (NUMERICAL below).

MIXTURE = oracle.isotropic_mixture(
    [[-2.0], [1.5]], 0.4, weights=torch.tensor([0.3, 0.7], dtype=F64)
)
ETAS, STEPS = (0.0, 0.2, 0.5, 1.0), (10, 20, 50, 100)
GRID = np.linspace(-7.0, 7.0, 2001)
# The paper's FIDs (Table 1, CIFAR10): DDIM eta = 0 with 20 and 100 steps, DDPM (sigma-hat, the
# large variance) with 1000 steps. "Close in quality": at most the paper's own ratio, fixed here
# before any distance was computed.
FID = {20: 6.84, 100: 4.16, "DDPM-1000": 3.17}
RATIO = {n: FID[n] / FID["DDPM-1000"] for n in (20, 100)}
# relative error allowed to a computed distance: the grid and the exact eta = 0 route agree to
# 4e-4 (and halving the grid moves DDPM-1000's distance by 2e-3); asserted in test_table_1_pattern
NUMERICAL = 2e-3
HERMITE = np.polynomial.hermite_e.hermegauss(16)
HERMITE = (HERMITE[0], HERMITE[1] / math.sqrt(2 * math.pi))  # E f(Z) = sum w f(z), Z ~ N(0, 1)


def mixture_cdf(x):
    return 0.3 * sps.norm.cdf(x, -2, 0.4) + 0.7 * sps.norm.cdf(x, 1.5, 0.4)


def energy(y, F):
    return 2 * float(np.trapezoid((F - mixture_cdf(y)) ** 2, y))


def _propagate(steps):
    """CDF on GRID after the sampler's steps [(t, step)], step(x_t, eps, z) its step t -> tau."""
    x = torch.tensor(GRID, dtype=F64)[:, None]
    model, F, dy = MIXTURE.eps_model(ABAR), sps.norm.cdf(GRID), GRID[1] - GRID[0]
    for t, step in steps:
        eps = model(x, t)
        m = step(x, eps, torch.zeros_like(x))[:, 0].numpy()
        s = float(step(x[:1], eps[:1], torch.ones_like(x[:1]))[0, 0]) - m[0]  # the noise's std
        assert np.all(np.diff(m) > 0), f"the step from t = {t} is not increasing in x_t"
        spline = PchipInterpolator(m, F, extrapolate=False)

        def pushed(y, m=m, F=F, spline=spline):
            inside = np.clip(np.nan_to_num(spline(y)), 0, 1)
            return np.where(y < m[0], F[0], np.where(y > m[-1], F[-1], inside))

        if s == 0:
            F = pushed(GRID)
        elif s < 2 * dy:  # narrower than the grid: Gauss-Hermite in z, 16 nodes
            F = sum(w * pushed(GRID - s * z) for z, w in zip(*HERMITE, strict=True))
        else:
            F = gaussian_filter1d(pushed(GRID), s / dy, mode="nearest", truncate=10)
    return F


def _ddim_cdf(diffusion, n, eta):
    """The DDIM sampler's own plan: its timesteps, targets and sigma per step."""
    plan = diffusion.ddim_plan(ABAR, diffusion.timesteps(1000, n, "leading"), eta)
    return _propagate([(t, lambda x, eps, z, a=a, b=b, s=s: diffusion.ddim_step(x, eps, a, b, s, z))
                       for t, a, b, s in plan])  # fmt: skip


def _ddpm_cdf(diffusion):
    """DDPM, 1000 steps, the large variance (sigma-hat): t -> t - 1, the last step to the data."""

    def step(t):
        a, b = abar_of(t), abar_of(t - 1)
        return lambda x, eps, z: diffusion.ddpm_step(x, eps, a, b, z, "large")

    return _propagate([(t, step(t)) for t in range(999, -1, -1)])


def _exact_eta_zero(diffusion, n):
    """E for eta = 0 from the sampler itself: F(M(x_i)) = u_i at x_i = Phi^{-1}(u_i)."""
    u = (np.arange(4001) + 0.5) / 4001
    x_T = torch.tensor(sps.norm.ppf(u), dtype=F64)[:, None]
    ts = diffusion.timesteps(1000, n, "leading")
    y = diffusion.ddim_sample(MIXTURE.eps_model(ABAR), x_T, ABAR, ts, 0.0)[:, 0].numpy()
    assert np.all(np.diff(y) > 0), f"DDIM(eta = 0), {n} steps, is not increasing in x_T"
    return energy(y, u)


def _distances(diffusion):
    table = {(eta, n): energy(GRID, _ddim_cdf(diffusion, n, eta)) for eta in ETAS for n in STEPS}
    exact = {n: _exact_eta_zero(diffusion, n) for n in STEPS}
    ddpm_cdf = _ddpm_cdf(diffusion)
    return table, exact, energy(GRID, ddpm_cdf), ddpm_cdf


_CACHE = {}


def distances(diffusion):
    # keyed by the mutant and the variant under test too: the mutation run forks a process per
    # mutant after a clean run, and a variant must never read the clean code's distances
    key = (diffusion, os.environ.get("MUTANT_UNDER_TEST"), variants.active())
    if key not in _CACHE:
        _CACHE[key] = _distances(diffusion)
    return _CACHE[key]


def _refute_close(diffusion, n):
    table, _, ddpm, _ = distances(diffusion)

    def close(eta):
        return table[eta, n] <= RATIO[n] * ddpm * (1 + NUMERICAL)

    eta = refute(st.sampled_from(ETAS), close, claim=f"DDIM-09.{n}-steps",
                 describe=lambda e: f"eta = {e}, {n} DDIM steps")  # fmt: skip
    ratios = {f"E(eta = {e}, {n} steps) / E(DDPM-1000)": round(table[e, n] / ddpm, 1) for e in ETAS}
    current().record(**ratios)
    current().record(ddpm_1000_energy=ddpm, allowed_ratio=round(RATIO[n], 3))
    current().summary = (
        f"eta = {eta}, {n} steps: energy distance {table[eta, n]:.2e}, {table[eta, n] / ddpm:.0f}x "
        f"DDPM-1000's {ddpm:.2e}; the paper's FID ratio allows {RATIO[n]:.2f}x"
    )


@claim(refutes="DDIM-09.100-steps")
def test_100_ddim_steps_are_not_as_close_as_1000_ddpm_steps(diffusion):
    _refute_close(diffusion, 100)


@claim(refutes="DDIM-09.20-steps")
def test_20_ddim_steps_are_not_as_close_as_1000_ddpm_steps(diffusion):
    _refute_close(diffusion, 20)


@claim("DDIM-09.pattern")
def test_table_1_pattern(diffusion):
    """The whole eta x steps table: at every number of steps the distance grows with eta, and
    for every eta it shrinks as the steps grow, each by more than the numerical error."""
    table, exact, ddpm, _ = distances(diffusion)
    for n in STEPS:
        assert abs(table[0.0, n] - exact[n]) <= NUMERICAL * exact[n], (
            f"{n} steps, eta = 0: grid {table[0.0, n]:.6e} vs exact {exact[n]:.6e}"
        )
    gap = 1 + 2 * NUMERICAL
    for n in STEPS:
        for lo, hi in zip(ETAS, ETAS[1:], strict=False):
            assert table[lo, n] * gap < table[hi, n], f"{n} steps: eta = {lo} should beat {hi}"
    for eta in ETAS:
        for few, more in zip(STEPS, STEPS[1:], strict=False):
            assert table[eta, more] * gap < table[eta, few], f"eta = {eta}: {more} vs {few} steps"
    record = {f"energy distance, eta = {e}, {n} steps": f"{d:.3e}" for (e, n), d in table.items()}
    current().record(**record)
    current().record(ddpm_1000_energy=f"{ddpm:.3e}")

    def draw(fig):
        ax = fig.subplots()
        grid = np.array([[math.log10(table[e, n]) for n in STEPS] for e in ETAS])
        im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
        for i, e in enumerate(ETAS):
            for j, n in enumerate(STEPS):
                ax.text(j, i, f"{table[e, n]:.1e}", ha="center", va="center", color="w", fontsize=9)
        ax.set_xticks(range(len(STEPS)), [str(n) for n in STEPS])
        ax.set_yticks(range(len(ETAS)), [f"eta = {e}" for e in ETAS])
        ax.set_xlabel("DDIM steps")
        ax.set_title(f"energy distance to the data (exact, log10 colour);\n"
                     f"DDPM 1000 steps: {ddpm:.1e}", fontsize=9)  # fmt: skip
        fig.colorbar(im, ax=ax)

    figure("ddim09_table1", draw)
    current().summary = "every eta improves with steps; at every step count smaller eta is closer"


@claim("DDIM-09.pattern")
def test_the_computed_laws_are_the_samplers_laws(diffusion):
    """The grid computation against the samplers themselves: N = 10000 samples of DDPM-1000
    (large variance) and of DDIM with 20 steps at eta = 1, one experiment (a fixed seed), KS test
    at alpha = 1e-7 against the computed CDF (it detects a CDF off by 0.029 or more)."""
    _, _, _, ddpm_cdf = distances(diffusion)
    model, gen = MIXTURE.eps_model(ABAR), torch.Generator().manual_seed(9)
    x_T = torch.randn(10_000, 1, generator=gen, dtype=F64)
    ts = diffusion.timesteps(1000, 20, "leading")
    x0 = diffusion.ddpm_sample(model, x_T, ABAR, torch.arange(999, -1, -1), gen, "large")
    ddim_cdf = _ddim_cdf(diffusion, 20, 1.0)
    y0 = diffusion.ddim_sample(model, x_T, ABAR, ts, 1.0, gen)
    stats.ks_law(x0[:, 0].numpy(), lambda y: np.interp(y, GRID, ddpm_cdf),
                 what="DDPM-1000 samples vs the computed CDF")  # fmt: skip
    stats.ks_law(y0[:, 0].numpy(), lambda y: np.interp(y, GRID, ddim_cdf),
                 what="DDIM, 20 steps, eta = 1, samples vs the computed CDF")  # fmt: skip


def test_slerp_exactly_on_a_quarter_circle_and_between_parallel_vectors():
    """(7) slerp(e1, e2, u) = cos(u pi/2) e1 + sin(u pi/2) e2 for orthonormal e1, e2; for
    parallel vectors (theta = 0) it is the linear (1 - u) x_a + u x_b, also when rounding puts
    the computed cosine just above 1 (x and 0.3 x: cos - 1 = 4.4e-16, clamped to 1)."""
    e1, e2 = torch.eye(2, dtype=torch.float64)
    for u in (0.0, 0.25, 0.7, 1.0):
        expected = math.cos(u * math.pi / 2) * e1 + math.sin(u * math.pi / 2) * e2
        assert torch.allclose(ddim.slerp(e1, e2, u), expected, rtol=0, atol=1e-15)
    x = torch.tensor([0.9, -0.4, 0.35], dtype=torch.float64)
    assert float(torch.sum(x * 0.3 * x) / (x.norm() * (0.3 * x).norm())) > 1  # the precondition
    for u in (0.25, 0.7):
        assert torch.allclose(
            ddim.slerp(x, 0.3 * x, u), (1 - u) * x + u * 0.3 * x, rtol=1e-15, atol=0
        )


def test_slerp_at_a_small_angle_and_between_antiparallel_vectors():
    """At th = 0.5 (below 1 rad, far above the parallel cut-off 1e-12) slerp is on the circle:
    cos(u th) e1 + sin(u th) e2. Antiparallel endpoints have no unique great circle: an error,
    also when rounding puts the computed cosine just below -1 (x and -0.3 x)."""
    import pytest

    e1, e2 = torch.eye(2, dtype=torch.float64)
    end = math.cos(0.5) * e1 + math.sin(0.5) * e2
    for u in (0.25, 0.7):
        expected = math.cos(0.5 * u) * e1 + math.sin(0.5 * u) * e2
        assert torch.allclose(ddim.slerp(e1, end, u), expected, rtol=0, atol=4e-16)
    x = torch.tensor([0.9, -0.4, 0.35], dtype=torch.float64)
    assert float(torch.sum(x * -0.3 * x) / (x.norm() * (0.3 * x).norm())) < -1  # precondition
    for y in (-x, -0.3 * x):
        with pytest.raises(ValueError, match="^x_b: antiparallel"):
            ddim.slerp(x, y, 0.5)


@given(T=st.integers(1, 2000), data=st.data())
def test_article_timesteps_truncate_the_exact_linspace(T, data):
    """int(linspace(T - 1, 0, n)) in exact arithmetic: floor((T - 1)(n - 1 - k) / (n - 1)),
    from T - 1 down to 0 (n = 1: T - 1). A float linspace misses it at T = 31, n = 23."""
    n = data.draw(st.integers(1, T), label="n")
    got = ddim.article_timesteps(T, n).tolist()
    want = [T - 1] if n == 1 else [(T - 1) * (n - 1 - k) // (n - 1) for k in range(n)]
    assert got == want
    assert ddim.article_timesteps(31, 23).tolist()[11] == 15  # float64's linspace gives 14


def test_inversion_steps_and_model_times():
    """(6) written out: through increasing t_1 < ... < t_n, x <- sqrt(a) (x - sqrt(1 - b) eps) /
    sqrt(b) + sqrt(1 - a) eps with a = abar[t_k], b = abar[t_{k-1}] (b = 1 first) and eps the
    model at the previous, less noisy time (t_1 for the first step). abar given as a list gives
    the same result as the float64 tensor."""
    calls = []

    def model(x, t):
        calls.append(t)
        return 0.3 * x + 1e-3 * t

    x0 = torch.tensor([[0.5, -1.0], [2.0, 0.1]], dtype=F64)
    ts = [700, 300, 50, 10]
    got = ddim.invert(model, x0, ABAR, ts)
    assert calls == [10, 10, 50, 300], calls
    want, b, t_model = x0, 1.0, 10
    for t in (10, 50, 300, 700):
        a, eps = ABAR[t].item(), 0.3 * want + 1e-3 * t_model
        want = a**0.5 * (want - (1 - b) ** 0.5 * eps) / b**0.5 + (1 - a) ** 0.5 * eps
        b, t_model = a, t
    # same operations up to their order: 4 u per step of the terms' size (|x| <= 30 here)
    assert_close(got, want, ulps=16, scale=30, what="inverted x_T - the written-out steps")
    assert torch.equal(ddim.invert(model, x0, ABAR.tolist(), ts), got)
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    g = torch.Generator
    assert torch.equal(
        ddim.sample(model, x_T, ABAR.tolist(), ts, 0.5, g().manual_seed(1)),
        ddim.sample(model, x_T, ABAR, ts, 0.5, g().manual_seed(1)),
    )


def test_article_timesteps_and_beta_checks():
    """The article's 20 of 1000 steps: int(linspace(999, 0, 20)) from 999 down to 0; betas must
    be a 1-D sequence in (0, 1], and abar is float64 whatever their dtype."""
    import pytest

    expected = np.linspace(999, 0, 20).astype(np.int64)
    assert ddim.article_timesteps().tolist() == expected.tolist()
    assert (
        schedules.alphas_cumprod(torch.tensor([0.1, 0.2], dtype=torch.float32)).dtype
        == torch.float64
    )
    for bad in ([0.1, 1.5], [[0.1, 0.2]], []):
        with pytest.raises(ValueError, match="^betas: "):
            schedules.alphas_cumprod(bad)


@given(seed=seeds, n=st.integers(1, 6), eta=st.sampled_from([0.0, 0.5, 1.0, 1.2, 2.0]),
       sigma=st.sampled_from(["paper", "article"]), to_data=st.booleans())  # fmt: skip
def test_sampler_takes_the_written_out_steps(seed, n, eta, sigma, to_data):
    """sample() over decreasing t_1 > ... > t_n: a = abar[t_k], b = abar[t_{k+1}] (1 after the
    last with to_data, no step after the last without), s = sigma_paper(eta, a, b) or
    sigma_article(eta, a, b, alpha_t) with the single-step alpha_t = a / abar[t_k - 1] (a at
    t = 0); z drawn from the caller's generator only where s > 0; then step(x, eps(x, t_k), a, b,
    s, z). Where s^2 > 1 - b (eta > 1) the sampler raises ValueError naming eta, without clipping.
    The steps end at t = 1 and t = 0, where alpha_t's two cases meet."""
    import pytest

    ts = sorted(set(torch.randperm(1000, generator=seed.torch())[:n].tolist()) | {0, 1})[::-1]
    n = len(ts)
    x_T = torch.randn(3, 2, generator=seed.torch(), dtype=F64)
    model = lambda x, t: 0.2 * x + 1e-3 * t  # noqa: E731
    g, want, too_large = torch.Generator().manual_seed(4), x_T, False
    for i, t in enumerate(ts[: n if to_data else n - 1]):
        a = ABAR[t].item()
        b = ABAR[ts[i + 1]].item() if i + 1 < n else 1.0
        if sigma == "paper":
            s = ddim.sigma_paper(eta, a, b)
        else:
            s = ddim.sigma_article(eta, a, b, a / (ABAR[t - 1].item() if t > 0 else 1.0))
        if s**2 > 1 - b:
            too_large = True
            break
        z = torch.randn(3, 2, generator=g, dtype=F64) if s > 0 else None
        want = ddim.step(want, model(want, t), a, b, s, z)
    gen_a = torch.Generator().manual_seed(4)
    if too_large:
        with pytest.raises(ValueError, match="^eta: "):
            ddim.sample(model, x_T, ABAR, ts, eta, gen_a, sigma=sigma, to_data=to_data)
        return
    got = ddim.sample(model, x_T, ABAR, ts, eta, gen_a, sigma=sigma, to_data=to_data)
    assert torch.equal(got, want)
    assert torch.equal(torch.rand(1, generator=gen_a), torch.rand(1, generator=g))


# Issue 16, part 2: bad input gets a clear error naming the argument ----------------------------


def test_sigma_paper_refuses_levels_out_of_order():
    """ddim.sigma_paper(1., 0.6, 0.5) returned a complex number (sqrt(1 - a/b) with a > b)."""
    with pytest.raises(ValueError, match=r"^b: abar_tau must be >= abar_t = a"):
        ddim.sigma_paper(1.0, 0.6, 0.5)
    for call, argument in (
        (lambda: ddim.sigma_paper(1.0, 1.2, 1.5), "a"),
        (lambda: ddim.sigma_article(1.0, 0.6, 0.5, 0.9), "b"),
        (lambda: ddim.sigma_article(1.0, 0.3, 0.6, 1.5), "alpha_t"),
        (lambda: ddim.coefficients(0.6, 0.5, 0.1), "b"),
        (lambda: ddim.step(torch.zeros(2), torch.zeros(2), 0.6, 0.5, 0.0, None), "b"),
        (lambda: ddim.step(torch.zeros(2), torch.zeros(2), 0.0, 0.5, 0.0, None), "a"),
        (lambda: ddim.ode_euler_step(torch.zeros(2), torch.zeros(2), 0.6, 0.5), "b"),
        (lambda: ddim.sigma_paper("1", 0.3, 0.6), "eta"),
    ):
        with pytest.raises((ValueError, TypeError), match=rf"^{argument}: "):
            call()
    # the step that stays put (a = b: Stable Diffusion's last step with steps_offset = 0) is valid
    assert ddim.sigma_paper(1.0, 0.5, 0.5) == 0.0


@pytest.mark.parametrize("d", [2, 3, 8, 64, 1000])
def test_slerp_refuses_antiparallel_endpoints_for_every_seed(d):
    """ddim.slerp(x, -x, 0.5) returned zeros for about a quarter of the seeds: arccos of a cosine
    rounded to -1 + 2^-53 is pi - 1.5e-8, far above the old 1e-12 cut-off. The cut-off is now on
    the cosine, (2 d + 6) eps from -1 (the rounding bound of the computed cosine): every seed
    and scale of an antiparallel pair is refused, in float64 and float32."""
    for seed in range(300):
        x = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=F64)
        for y in (-x, -0.3 * x, -7.0 * x, (-x).float().double()):
            with pytest.raises(ValueError, match="^x_b: antiparallel"):
                ddim.slerp(x, y, 0.5)
        with pytest.raises(ValueError, match="^x_b: antiparallel"):
            ddim.slerp(x.float(), -x.float(), 0.5)
        # an orthogonal pair is far from the cut-off and interpolates on the circle
        w = torch.randn(d, generator=torch.Generator().manual_seed(seed + 10**6), dtype=F64)
        w = w - (w @ x) / (x @ x) * x
        mid = ddim.slerp(x, w * (x.norm() / w.norm()), 0.5)
        assert abs(float(mid.norm() / x.norm()) - 1) < 1e-12


def test_slerp_refuses_zero_and_mismatched_endpoints():
    x = torch.ones(3, dtype=F64)
    for call, argument in (
        (lambda: ddim.slerp(torch.zeros(3, dtype=F64), x, 0.5), "x_a"),
        (lambda: ddim.slerp(x, torch.zeros(3, dtype=F64), 0.5), "x_b"),
        (lambda: ddim.slerp(x, torch.ones(4, dtype=F64), 0.5), "x_b"),
        (lambda: ddim.slerp(x, x, 1.5), "u"),
    ):
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()
