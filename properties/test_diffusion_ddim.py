"""DDIM-03..DDIM-11: the DDIM family, its sampler and its claims (impl/diffusion/ddim.py).

Rounding budgets: x0_hat = (x_t - sqrt(1 - a) eps)/sqrt(a) amplifies absolute rounding of x_t by
1/sqrt(a) (up to 160 at the end of the linear schedule), so identities between steps get
8 u (|x_t| + |eps|)(sqrt(b/a) + 1) + 8 u (|eps| + |z|) per entry (u = 2^-53).
"""

import math
import os

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from impl.diffusion import ddim, oracle, schedules
from properties import stats
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

U = 2.0**-53
ABAR = schedules.alphas_cumprod(schedules.linear_betas())
F64 = torch.float64


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
def test_undetermined_coefficients_preserve_the_marginal(inputs, fraction):
    t, tau, a, b, *_ = inputs
    sigma = fraction * (1 - b) ** 0.5
    lam, k = ddim.coefficients(a, b, sigma)
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
def test_x_tau_has_the_marginal_for_every_sigma(inputs, fraction, x0):
    t, tau, a, b, _, _, _ = inputs
    gen = torch.Generator().manual_seed(t * 1000 + tau + 1)
    sigma = fraction * (1 - b) ** 0.5
    lam, k = ddim.coefficients(a, b, sigma)
    eps, z = torch.randn(2, 4000, generator=gen, dtype=F64)
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    x_tau = lam * x0 + k * x_t + sigma * z
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


@claim("DDIM-05")
@given(inputs=step_inputs())
def test_eta_one_is_the_ddpm_step_on_any_pair(diffusion, inputs):
    """sigma(eta = 1)^2 = beta~ with beta = 1 - abar_t/abar_tau, on consecutive and skipped pairs."""
    t, tau, a, b, x0, eps, z = inputs
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    sigma = diffusion.sigma_paper(1.0, a, b)
    got, want = _ddpm_vs_ddim(diffusion, x_t, eps, z, a, b, sigma)
    # 1 - a/b and 1 - a lose u/(1 - .) relative in sigma and in the posterior coefficients
    cond = 1 / (1 - a) + (1 / (1 - a / b) if b < 1 else 0) + 1
    assert_close(got, want, ulps=0, abs_floor=step_budget(x_t, eps, z, a, b) * 4 * cond,
                 what="DDIM(eta = 1) step - DDPM step")  # fmt: skip
    current().summary = (
        "DDIM with the paper's sigma(eta=1) is the DDPM posterior step on every (t, tau)"
    )


@claim("DDIM-06.consecutive")
@given(inputs=step_inputs())
def test_article_sigma_on_consecutive_steps(diffusion, inputs):
    t, _, a, _, x0, eps, z = inputs
    b = abar_of(t - 1)
    alpha_t = a / b
    s_article, s_paper = (
        diffusion.sigma_article(1.0, a, b, alpha_t),
        diffusion.sigma_paper(1.0, a, b),
    )
    assert_close(
        s_article, s_paper, ulps=8, scale=s_paper, what="article sigma - paper sigma (tau = t - 1)"
    )
    current().summary = (
        "on consecutive steps 1 - alpha_t = 1 - abar_t/abar_{t-1}: the two sigmas coincide"
    )


@claim(refutes="DDIM-06.skipped")
def test_article_sigma_on_the_articles_skipped_steps(diffusion):
    ts = ddim.article_timesteps().tolist()
    article_pairs = list(zip(ts, ts[1:], strict=False))

    def reproduces(pair):
        t, tau = pair
        a, b = abar_of(t), abar_of(tau)
        alpha_t = a / abar_of(t - 1)
        x_t, eps, z = torch.randn(3, 8, generator=torch.Generator().manual_seed(t), dtype=F64)
        got, want = _ddpm_vs_ddim(
            diffusion, x_t, eps, z, a, b, diffusion.sigma_article(1.0, a, b, alpha_t)
        )
        return bool(torch.all((got - want).abs() <= 1e-6))

    t, tau = refute(st.sampled_from(article_pairs), reproduces, claim="DDIM-06.skipped",
                    describe=lambda p: f"the article's pair (t, tau) = {p}")  # fmt: skip
    a, b = abar_of(t), abar_of(tau)
    s_article = diffusion.sigma_article(1.0, a, b, a / abar_of(t - 1))
    s_paper = diffusion.sigma_paper(1.0, a, b)
    current().record(
        sigma_article=s_article, sigma_paper=s_paper, variance_ratio=s_paper**2 / s_article**2
    )
    current().summary = (
        f"(t, tau) = ({t}, {tau}): the article's sigma {s_article:.4f} vs the DDPM posterior std "
        f"{s_paper:.4f} (variance x{s_paper**2 / s_article**2:.0f}): not DDPM on skipped steps"
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
    assert len(set(ts.tolist())) == n and torch.all(ts[1:] < ts[:-1])
    visited = []
    abar = schedules.alphas_cumprod(torch.linspace(1e-4, 0.02, T, dtype=F64))
    diffusion.ddim_sample(lambda x, t: visited.append(t) or torch.zeros_like(x), torch.zeros(1, 1, dtype=F64),
                          abar, ts, 0.0)  # fmt: skip
    assert visited == ts.tolist() and visited[-1] == ts[-1]
    current().summary = (
        "floor(c i) is strictly decreasing; the sampler calls the model at exactly those steps"
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

MIXTURE = oracle.isotropic_mixture(
    [[-2.0], [1.5]], 0.4, weights=torch.tensor([0.3, 0.7], dtype=F64)
)
ETAS, STEPS, N = (0.0, 0.2, 0.5, 1.0), (10, 20, 50, 100, 1000), 20_000


def mixture_cdf(x):
    return 0.3 * sps.norm.cdf(x, -2, 0.4) + 0.7 * sps.norm.cdf(x, 1.5, 0.4)


def _distances(diffusion):
    """KS distance to the data of N samples for every (eta, steps), and DDPM with 1000 steps.
    The rule, fixed before measuring: a sampler is 'as close as DDPM-1000' when a KS test at
    alpha = 1e-7 with N = 20000 samples cannot tell its samples from the data distribution."""
    model = MIXTURE.eps_model(ABAR)
    x_T = torch.randn(N, 1, generator=torch.Generator().manual_seed(1), dtype=F64)
    table = {}
    for eta in ETAS:
        for n in STEPS:
            ts = diffusion.timesteps(1000, n, "leading")
            x0 = diffusion.ddim_sample(model, x_T, ABAR, ts, eta, torch.Generator().manual_seed(2))
            table[eta, n] = x0[:, 0].numpy()
    ddpm = diffusion.ddpm_sample(
        model, x_T, ABAR, torch.arange(999, -1, -1), torch.Generator().manual_seed(3)
    )
    return table, ddpm[:, 0].numpy()


_CACHE = {}


def distances(diffusion):
    # keyed by the mutant under test too: the mutation run runs the suite once and then forks a
    # process per mutant, which would otherwise read the clean run's samples
    key = (diffusion, os.environ.get("MUTANT_UNDER_TEST"))
    if key not in _CACHE:
        _CACHE[key] = _distances(diffusion)
    return _CACHE[key]


def ks(x):
    return sps.kstest(x, mixture_cdf)


@claim("DDIM-09.100-steps")
def test_100_ddim_steps_are_as_close_as_1000_ddpm_steps(diffusion):
    table, ddpm = distances(diffusion)
    stats.ks_law(ddpm, mixture_cdf, what="DDPM, 1000 steps vs the data")
    for eta in ETAS:
        stats.ks_law(
            table[eta, 100], mixture_cdf, what=f"DDIM, 100 steps, eta = {eta}, vs the data"
        )
    current().summary = (
        "100 steps, every eta: KS at alpha = 1e-7 on 20000 samples cannot tell them from the data"
    )


@claim(refutes="DDIM-09.20-steps")
def test_20_ddim_steps_are_distinguishable_from_the_data(diffusion):
    table, _ = distances(diffusion)

    def indistinguishable(eta):
        return ks(table[eta, 20]).pvalue >= stats.ALPHA

    eta = refute(st.sampled_from(ETAS), indistinguishable, claim="DDIM-09.20-steps",
                 describe=lambda e: f"eta = {e}, 20 steps, N = {N}")  # fmt: skip
    result = ks(table[eta, 20])
    current().record(ks_distance=float(result.statistic), p_value=float(result.pvalue))
    current().summary = (
        f"eta = {eta}, 20 steps: KS distance {result.statistic:.3f}, p = {result.pvalue:.1e}"
    )


@claim("DDIM-09.pattern")
def test_table_1_pattern(diffusion):
    table, ddpm = distances(diffusion)
    D = {key: float(ks(x).statistic) for key, x in table.items()}
    band = math.sqrt(-math.log(stats.ALPHA / 2) / 2) / math.sqrt(N)  # KS critical value at alpha
    # The Kolmogorov distribution has standard deviation 0.2603, so a KS distance on N samples
    # varies by about 0.26 / sqrt(N) = 0.0018 from one sample to the next; the orderings below
    # must hold by four of those.
    margin = 4 * 0.2603 / math.sqrt(N)
    for n in (10, 20):
        assert D[0.0, n] + margin < D[1.0, n], f"{n} steps: eta = 0 should beat eta = 1"
    for eta in ETAS:
        assert D[eta, 100] + margin < D[eta, 10], f"eta = {eta}: more steps should be closer"
    current().record(**{f"KS distance, eta = {e}, {n} steps": round(D[e, n], 4) for e, n in D})
    current().record(ddpm_1000_ks=round(float(ks(ddpm).statistic), 4), band=round(band, 4))

    def draw(fig):
        ax = fig.subplots()
        grid = np.array([[D[e, n] for n in STEPS] for e in ETAS])
        im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
        for i, e in enumerate(ETAS):
            for j, n in enumerate(STEPS):
                mark = "*" if grid[i, j] > band else ""
                ax.text(
                    j, i, f"{grid[i, j]:.3f}{mark}", ha="center", va="center", color="w", fontsize=9
                )
        ax.set_xticks(range(len(STEPS)), [str(n) for n in STEPS])
        ax.set_yticks(range(len(ETAS)), [f"eta = {e}" for e in ETAS])
        ax.set_xlabel("DDIM steps")
        ax.set_title(f"KS distance to the data (N = {N}); * beyond the alpha = 1e-7 band {band:.3f};\n"
                     f"DDPM 1000 steps: {ks(ddpm).statistic:.3f}", fontsize=9)  # fmt: skip
        fig.colorbar(im, ax=ax)

    figure("ddim09_table1", draw)
    current().summary = "fewer steps: eta = 0 best; every eta improves with steps (Table 1 pattern)"


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


@given(seed=seeds, n=st.integers(1, 6), eta=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
       sigma=st.sampled_from(["paper", "article"]))  # fmt: skip
def test_sampler_takes_the_written_out_steps(seed, n, eta, sigma):
    """sample() over decreasing t_1 > ... > t_n: a = abar[t_k], b = abar[t_{k+1}] (1 after the
    last), s = sigma_paper(eta, a, b) or sigma_article(eta, a, b, alpha_t) with the single-step
    alpha_t = a / abar[t_k - 1] (a at t = 0), clipped to sqrt(1 - b); z drawn from the caller's
    generator only where s > 0; then step(x, eps(x, t_k), a, b, s, z). The steps end at t = 1
    and t = 0, where alpha_t's two cases meet."""
    ts = sorted(set(torch.randperm(1000, generator=seed.torch())[:n].tolist()) | {0, 1})[::-1]
    n = len(ts)
    x_T = torch.randn(3, 2, generator=seed.torch(), dtype=F64)
    model = lambda x, t: 0.2 * x + 1e-3 * t  # noqa: E731
    gen_a = torch.Generator().manual_seed(4)
    got = ddim.sample(model, x_T, ABAR, ts, eta, gen_a, sigma=sigma)
    g, want = torch.Generator().manual_seed(4), x_T
    for i, t in enumerate(ts):
        a = ABAR[t].item()
        b = ABAR[ts[i + 1]].item() if i + 1 < n else 1.0
        if sigma == "paper":
            s = ddim.sigma_paper(eta, a, b)
        else:
            s = ddim.sigma_article(eta, a, b, a / (ABAR[t - 1].item() if t > 0 else 1.0))
        s = min(s, (1 - b) ** 0.5)
        z = torch.randn(3, 2, generator=g, dtype=F64) if s > 0 else None
        want = ddim.step(want, model(want, t), a, b, s, z)
    assert torch.equal(got, want)
    assert torch.equal(torch.rand(1, generator=gen_a), torch.rand(1, generator=g))
