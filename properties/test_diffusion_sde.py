"""SDE-01..SDE-08: score SDEs, their reverse, the probability-flow ODE, likelihoods and the
consistency parametrisation (impl/diffusion/sde.py; the samplers and solvers through the `sde` family).

With Gaussian data every process here is linear in x, so the law of a numerical solution is
Gaussian with a mean and variance that two solves determine (x -> phi x + psi): the properties
compare those laws with the exact marginals, and check that the error shrinks at the solver's
order (Euler-Maruyama and Euler 1, Heun 2). Mixture data are checked statistically.
"""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy import stats as sps

from impl import ode
from impl.diffusion import oracle
from impl.diffusion import sde as sdes
from properties import stats
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close, assert_within_richardson

F64 = torch.float64
MIXTURE_1D = oracle.isotropic_mixture(
    [[-2.0], [1.5]], 0.4, weights=torch.tensor([0.3, 0.7], dtype=F64)
)
U = 2.0**-53
SDES = {"VP": sdes.VP(), "sub-VP": sdes.SubVP(), "VE": sdes.VE()}


def gaussian(mu, sigma):
    return oracle.GaussianMixture([1.0], [[mu]], [[[sigma**2]]])


def marginal(process, data_mu, data_sigma, t):
    """Exact law (mean, variance) of x_t for 1-D Gaussian data."""
    c, s2 = process.kernel(t)
    return c * data_mu, c**2 * data_sigma**2 + s2


def score_of(process, data):
    def score(x, t):
        c, s2 = process.kernel(t)
        return data.score(x, c**2, s2)

    return score


def pushforward(step_fn, m, v):
    """Law of a linear map x -> phi x + psi applied to N(m, v), from two evaluations."""
    out = step_fn(torch.tensor([[0.0], [1.0]], dtype=F64))
    phi, psi = (out[1] - out[0]).item(), out[0].item()
    return phi * m + psi, phi**2 * v


def law_error(law, target):
    return abs(law[0] - target[0]) + abs(law[1] - target[1])


@claim("SDE-01")
@given(name=st.sampled_from(sorted(SDES)), seed=seeds, x0=floats(-3, 3), n=st.integers(1, 50))
def test_euler_maruyama_step(sde, name, seed, x0, n):
    process = SDES[name]
    x = torch.full((8, 1), x0, dtype=F64)
    gen_a, gen_b = seed.torch(), seed.torch()
    got = sde.euler_maruyama(process, x, 0.1, 0.6, n, gen_a)
    want, h = x, 0.5 / n
    for k in range(n):  # x + f dt + g sqrt(dt) z, written out
        t = 0.1 + k * h
        want = (
            want
            + process.f(want, t) * h
            + process.g(t) * h**0.5 * torch.randn(8, 1, generator=gen_b, dtype=F64)
        )
    # the grid points are computed two ways (linspace vs 0.1 + k h): within 4 u; the coefficients
    # then differ by <= 8 u relative per step, the iterate by the accumulated 8 n u (|x| + g)
    scale = 8 * n * (want.abs() + 10 * max(process.g(t) for t in (0.1, 0.6)))
    assert_close(got, want, ulps=1, scale=scale, what="EM iterate - x + f dt + g sqrt(dt) z")
    current().summary = "Euler-Maruyama takes x + f dt + g sqrt(dt) z on VP, sub-VP and VE"


@claim("SDE-01")
@statistical()
@given(seed=seeds, x0=floats(-2, 2), n=st.sampled_from([10, 100]))
def test_euler_maruyama_law_and_its_convergence(sde, seed, x0, n):
    """VP is linear: EM's law is N(a x0, v) with a = prod (1 - beta_k h/2), v_{k+1} = (1 - beta_k h/2)^2 v_k
    + beta_k h exactly; 4000 paths follow it, and it tends to the kernel N(c x0, s^2) at order 1."""
    vp = SDES["VP"]
    h = 1.0 / n
    a, v = 1.0, 0.0
    for k in range(n):
        beta = vp.beta(k * h)
        a, v = a * (1 - beta * h / 2), (1 - beta * h / 2) ** 2 * v + beta * h
    x = sde.euler_maruyama(vp, torch.full((4000, 1), x0, dtype=F64), 0.0, 1.0, n, seed.torch())
    stats.normal_law(x[:, 0].numpy(), a * x0, v, what=f"EM paths vs EM law, {n} steps")
    c, s2 = vp.kernel(1.0)
    current().worst(f"|EM law - kernel| at {n} steps", abs(a * x0 - c * x0) + abs(v - s2))


def law_of_em(vp, n):
    h, a, v = 1.0 / n, 1.0, 0.0
    for k in range(n):
        beta = vp.beta(k * h)
        a, v = a * (1 - beta * h / 2), (1 - beta * h / 2) ** 2 * v + beta * h
    return a, v


@claim("SDE-01")
def test_euler_maruyama_law_converges_at_order_one():
    vp = SDES["VP"]
    c, s2 = vp.kernel(1.0)
    errors = [
        abs(law_of_em(vp, n)[1] - s2) + abs(law_of_em(vp, n)[0] - c) for n in (250, 500, 1000, 2000)
    ]
    ratios = [errors[i] / errors[i + 1] for i in range(3)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios
    current().record(error_ratios_per_doubling=[round(r, 3) for r in ratios])


@claim("SDE-02")
def test_ddpm_tends_to_the_vp_sde_at_rate_one_over_n(diffusion, sde):
    """beta_i = beta(i/N)/N: prod_{i<=N} (1 - beta_i) -> exp(-int_0^1 beta) = abar(1), error O(1/N)."""
    vp = sde.vp()
    exact = math.exp(-vp.integral(1.0))
    errors = {}
    for N in (1000, 2000, 4000, 8000, 16000):
        betas = torch.tensor([vp.beta(i / N) / N for i in range(1, N + 1)], dtype=F64)
        errors[N] = abs(diffusion.alphas_cumprod(betas)[-1].item() - exact) / exact
    values = list(errors.values())
    ratios = [values[i] / values[i + 1] for i in range(len(values) - 1)]
    assert all(1.9 < r < 2.1 for r in ratios), ratios
    # perturbation kernel: the mean coefficient sqrt(prod) -> exp(-B/2) = c(1) of the VP kernel
    c, _ = vp.kernel(1.0)
    N = 16000
    betas = torch.tensor([vp.beta(i / N) / N for i in range(1, N + 1)], dtype=F64)
    assert abs(diffusion.alphas_cumprod(betas)[-1].item() ** 0.5 - c) / c < 2 * values[-1]
    current().record(**{f"relative error, N = {N}": f"{e:.2e}" for N, e in errors.items()})
    current().summary = (
        f"prod(1 - beta_i) -> exp(-int beta); the error halves per doubling of N ({values[-1]:.1e})"
    )


def kernel_by_its_moment_equations(process, t):
    """(c(t), s(t)^2) of the linear SDE dx = f'(t) x dt + g(t) dw as the implementation defines
    f (f' = f(1, t) - f(0, t)) and g: dc/dt = f' c from c(0) = 1 and ds^2/dt = 2 f' s^2 + g^2
    from s^2(0) = 0, solved by scipy's DOP853 to rtol 1e-12, atol 1e-14 (order 8: a quarter of
    RK45's evaluations of f and g at this tolerance)."""
    one, zero = torch.ones(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64)

    def slope(u):
        return (process.f(one, u) - process.f(zero, u)).item()

    def rhs(u, y):
        return [slope(u) * y[0], 2 * slope(u) * y[1] + process.g(u) ** 2]

    sol = integrate.solve_ivp(rhs, (0.0, t), [1.0, 0.0], "DOP853", rtol=1e-12, atol=1e-14)
    return sol.y[0, -1], sol.y[1, -1]


def assert_kernel_solves_the_sde(name, process, t):
    c, s2 = kernel_by_its_moment_equations(process, t)
    closed_c, closed_s2 = process.kernel(t)
    # rtol 1e-12 per step, a few hundred steps at most: 1e-9 of the larger of 1 and the value
    assert abs(c - closed_c) <= 1e-9 * max(1.0, closed_c), (name, t, c, closed_c)
    assert abs(s2 - closed_s2) <= 1e-9 * max(1.0, closed_s2), (name, t, s2, closed_s2)


@claim("SDE-02")
@given(t=floats(0.01, 1.0))
def test_vp_kernel_solves_the_moment_equations_of_the_vp_sde(sde, t):
    """The VP SDE as implemented (f = -beta x / 2, g = sqrt(beta)) has the kernel
    N(x0 exp(-B/2), (1 - exp(-B)) I): its moment equations, solved numerically, give
    VP.kernel(t). And one Euler-Maruyama step of it is DDPM's step to first order in beta_i =
    beta(t) h: 1 + f' h = sqrt(1 - beta_i) + O(h^2) (|difference| <= beta_i^2 / 2 for beta_i
    <= 1/2) and g^2 h = beta_i."""
    vp, h = sde.vp(), 1e-3
    assert_kernel_solves_the_sde("VP", vp, t)
    beta_i = vp.beta(t) * h
    one, zero = torch.ones(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64)
    mean_factor = 1 + (vp.f(one, t) - vp.f(zero, t)).item() * h
    assert abs(mean_factor - (1 - beta_i) ** 0.5) <= beta_i**2 / 2, (mean_factor, beta_i)
    assert math.isclose(vp.g(t) ** 2 * h, beta_i, rel_tol=1e-14)
    current().summary = "the VP SDE's moment equations give its kernel; its EM step is DDPM's"


@claim("SDE-03")
@given(t=floats(0.01, 1.0))
def test_kernels_solve_their_moment_equations(sde, t):
    """dc/dt = f' c, d s^2/dt = 2 f' s^2 + g^2 (f' = df/dx, from the implementation's f and g)
    from c(0) = 1, s^2(0) = 0, solved to rtol 1e-12, equal the closed forms: VE c = 1,
    s^2 = sigma(t)^2 - sigma(0)^2; sub-VP c = e^{-B/2}, s^2 = (1 - e^{-B})^2."""
    for name, process in (("VE", sde.ve()), ("sub-VP", sde.subvp())):
        assert_kernel_solves_the_sde(name, process, t)
    current().summary = "VE and sub-VP kernels solve their SDEs' moment equations"


def reverse_step_law(sde, process, score, t, t_next):
    """(A, d, G) with one step of the implementation's reverse EM, from t to t_next, equal to
    x -> A x + d + G z: its drift is affine in x for Gaussian data and its noise is the first
    N(0, 1) draw of the generator. Three one-step runs: x = 0 and x = 1 with the same noise give
    A; x = 0 with two noises z_a, z_b (drawn here from identically seeded generators) gives G."""

    def run(x, seed):
        x = torch.tensor([[x]], dtype=F64)
        gen = torch.Generator().manual_seed(seed)
        return sde.reverse_euler_maruyama(process, score, x, t, t_next, 1, gen).item()

    z_a, z_b = (torch.randn(1, 1, generator=torch.Generator().manual_seed(k), dtype=F64).item()
                for k in (1, 2))  # fmt: skip
    at_0, at_1, at_0_b = run(0.0, 1), run(1.0, 1), run(0.0, 2)
    G = (at_0 - at_0_b) / (z_a - z_b)
    return at_1 - at_0, at_0 - G * z_a, G


def reverse_joint_law_error(sde, process, mu, sigma, n, marks=4):
    """Reverse EM from t = 1 (x_1 ~ p_1 exactly) down to 0 in n steps, Gaussian data N(mu,
    sigma^2): the recursion m <- A m + d, v <- A^2 v + G^2, Cov(x_k+1, x_j) = A Cov(x_k, x_j)
    gives the exact joint law of the iterates at the mark times 1, 3/4, 1/2, 1/4, 0. The forward
    process has mean c(t) mu, variance v(t) = c(t)^2 sigma^2 + s(t)^2 and, for s > t,
    Cov(x_s, x_t) = (c(s)/c(t)) v(t) (x_s = (c(s)/c(t)) x_t + noise independent of x_t). Returns
    the largest error over the marks, in units of the standard deviations:
    |m - c mu| / sqrt(v) + |var - v| / v, |Cov - Cov_fwd| / sqrt(v(s) v(t))."""

    def forward(t):
        c, s2 = process.kernel(t)
        return c, c * mu, c**2 * sigma**2 + s2

    score = score_of(process, gaussian(mu, sigma))
    ts = ode.grid(1.0, 0.0, n)
    _, m, v = forward(1.0)
    marked, covs, worst = [1.0], [v], 0.0
    for k, (t, t_next) in enumerate(zip(ts, ts[1:], strict=False)):
        A, d, G = reverse_step_law(sde, process, score, t, t_next)
        m, v, covs = A * m + d, A**2 * v + G**2, [A * cov for cov in covs]
        if (k + 1) % (n // marks):
            continue
        c_t, m_t, v_t = forward(t_next)
        worst = max(worst, abs(m - m_t) / v_t**0.5 + abs(v - v_t) / v_t)
        for s_, cov in zip(marked, covs, strict=True):
            c_s, _, v_s = forward(s_)
            worst = max(worst, abs(cov - c_s / c_t * v_t) / (v_s * v_t) ** 0.5)
        marked.append(t_next)
        covs.append(v)
    return worst


@claim("SDE-04")
@settings(max_examples=4)
@given(mu=floats(-2, 2), sigma=floats(0.2, 2.0))
def test_reverse_sde_has_the_joint_law_of_the_forward_process(sde, mu, sigma):
    """Gaussian data, exact score: reverse Euler-Maruyama is a linear Gaussian recursion, whose
    joint law (means, variances and Cov(x_s, x_t) at t = 1, 3/4, 1/2, 1/4, 0) is computed exactly
    from the implementation's steps and compared with the forward process' for VP, sub-VP and
    VE. EM's weak error is C h + O(h^2): per doubling of the steps (100, 200, 400) the error
    ratio lies within 20% of 2 (1.6 to 2.5; measured 2.0 to 2.4), so it tends to 0 at order 1.
    A wrong drift, diffusion or noise leaves an error that does not vanish (ratio near 1)."""
    ratios = {}
    for name, process in SDES.items():
        errors = [reverse_joint_law_error(sde, process, mu, sigma, n) for n in (100, 200, 400)]
        ratios[name] = [errors[0] / errors[1], errors[1] / errors[2]]
        assert all(1.6 < r < 2.5 for r in ratios[name]), (name, errors)
        current().worst(f"{name}: joint-law error at 400 steps (in std units)", errors[2])
    current().summary = (
        "reverse EM's joint law (means, variances, Cov(x_s, x_t)) tends to the forward process'"
        " at order 1 (VP, sub-VP, VE, Gaussian data)"
    )


def reverse_step(process, score, x, t, h, z):
    """One reverse EM step (3), written out: x - (f - g^2 score) h + g sqrt(h) z."""
    drift = process.f(x, t) - process.g(t) ** 2 * score(x, t)
    return x - drift * h + process.g(t) * h**0.5 * z


@claim("SDE-04")
@given(name=st.sampled_from(sorted(SDES)), seed=seeds, x0=floats(-3, 3), n=st.integers(1, 40))
def test_reverse_euler_maruyama_step(sde, name, seed, x0, n):
    """Reverse EM from t = 0.6 down to 0.1 takes the written-out steps of (3) on the same grid,
    with float64 noise drawn from the caller's generator only (the global RNG is not used)."""
    process = SDES[name]
    score = score_of(process, gaussian(0.3, 0.8))
    x = x0 + torch.linspace(-1, 1, 8, dtype=F64)[:, None]
    gen_a, gen_b = seed.torch(), seed.torch()
    torch.manual_seed(0)
    got = sde.reverse_euler_maruyama(process, score, x, 0.6, 0.1, n, gen_a)
    torch.manual_seed(1)  # a sampler that drew from the global RNG would now differ
    want, ts = x, ode.grid(0.6, 0.1, n)
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        want = reverse_step(
            process, score, want, t, t - t_next, torch.randn(8, 1, generator=gen_b, dtype=F64)
        )
    # same grid, same operations up to their order: a few u per step of the terms' sizes
    g2 = max(process.g(t) ** 2 for t in (0.1, 0.6))
    scale = 8 * n * (want.abs() + 10 * (1 + g2))
    assert_close(
        got, want, ulps=1, scale=scale, what="reverse EM - x - (f - g^2 s) dt + g sqrt(dt) z"
    )
    current().summary = "reverse EM takes x - (f - g^2 score) dt + g sqrt(dt) z (VP, sub-VP, VE)"


@claim("SDE-04")
@given(
    seed=seeds,
    snr=floats(0.01, 0.5),
    n=st.integers(8, 20),
    scale_x=floats(0.1, 3.0),
    name=st.sampled_from(sorted(SDES)),
)
def test_predictor_corrector_step(sde, seed, snr, n, scale_x, name):
    """(7), Song et al.'s Algorithms 2 (VE) and 3 (VP) with the Langevin corrector of Algorithms
    4 and 5, written out: each reverse EM step from t to t_next, then at t_next
    x + e s + sqrt(2 e) z with e = 2 alpha (snr mean_i |z_i| / mean_i |s_i|)^2 (row norms averaged
    over the batch), s = score(x, t_next), alpha = 1 - beta(t_next) (t - t_next) for VP and
    sub-VP (alpha_i = 1 - beta_i), 1 for VE; the result is x after the last corrector. 5 points
    in d = 3, so a norm over the wrong axis changes e. n >= 8 keeps beta_i < 1 on [0.2, 0.7]."""
    process = SDES[name]
    data = oracle.isotropic_mixture([[0.5, -0.2, 0.1]], 0.7)  # scores of size < 1 near the mean
    score = score_of(process, data)
    x = scale_x * torch.randn(5, 3, generator=seed.torch(), dtype=F64)
    gen_a, gen_b = seed.torch(), seed.torch()
    got = sde.predictor_corrector(process, score, x, 0.7, 0.2, n, gen_a, snr=snr)
    want, ts = x, ode.grid(0.7, 0.2, n)
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        want = reverse_step(
            process, score, want, t, t - t_next, torch.randn(5, 3, generator=gen_b, dtype=F64)
        )
        s = score(want, t_next)
        z = torch.randn(5, 3, generator=gen_b, dtype=F64)
        alpha = 1.0 if name == "VE" else 1 - process.beta(t_next) * (t - t_next)
        e = 2 * alpha * (snr * z.norm(dim=1).mean() / s.norm(dim=1).mean()) ** 2
        want = want + e * s + (2 * e) ** 0.5 * z
    # same grid and formulas; e's few roundings (relative 8 u) move x by <= 8 u (e |s| + |z|)
    # per step, and later steps carry that on: 32 n u of the terms' size (g^2 for VE's drift)
    g2 = max(process.g(t) ** 2 for t in (0.2, 0.7))
    scale = 32 * n * (want.abs() + 10 * (1 + g2) * (1 + want.abs().max()))
    assert_close(got, want, ulps=1, scale=scale, what="predictor-corrector - the written-out steps")
    current().summary = (
        "predictor-corrector: reverse EM, then Langevin at the new time with e = 2 alpha_i (snr"
        " |z| / |s|)^2 (Song et al., Algorithms 2-5)"
    )


def mixture_cdf(process, t):
    """CDF of MIXTURE_1D (0.3 N(-2, 0.4^2) + 0.7 N(1.5, 0.4^2)) noised to time t."""
    c, s2 = process.kernel(t)
    std = (c**2 * 0.16 + s2) ** 0.5
    return lambda x: 0.3 * sps.norm.cdf(x, -2 * c, std) + 0.7 * sps.norm.cdf(x, 1.5 * c, std)


@claim("SDE-04")
@statistical()
@given(seed=seeds)
def test_reverse_sde_generates_mixture_data(sde, seed):
    """1-D mixture, VP, 1000 reverse EM steps to t = 1e-3, 4000 samples: KS test against the exact
    marginal at 1e-3 (alpha = 1e-7)."""
    process = SDES["VP"]
    data = MIXTURE_1D
    c1, s21 = process.kernel(1.0)
    gen = seed.torch()
    x0, _ = data.sample(4000, gen)
    x1 = c1 * x0 + s21**0.5 * torch.randn(4000, 1, generator=gen, dtype=F64)
    out = sde.reverse_euler_maruyama(process, score_of(process, data), x1, 1.0, 1e-3, 1000, gen)
    cdf = mixture_cdf(process, 1e-3)
    stats.ks_law(out[:, 0].numpy(), cdf, what="reverse SDE samples vs p_0")


def ode_law(sde, process, score, m1, v1, n, method, half=True, t_eps=1e-3):
    drift = lambda x, t: sde.ode_drift(process, score, x, t, half)  # noqa: E731
    return pushforward(lambda x: sde.ode_solve(drift, x, 1.0, t_eps, n, method), m1, v1)


@claim("SDE-05.half")
@settings(max_examples=12)
@given(mu=floats(-2, 2), sigma=floats(0.2, 2.0), name=st.sampled_from(sorted(SDES)))
def test_probability_flow_ode_keeps_the_marginals(sde, mu, sigma, name):
    """Pushing p_1 through the PF-ODE to t = 1e-3 gives p_{1e-3}: Euler's error halves and Heun's
    quarters per doubling of the steps (order 1 and 2). Where the error is below 1e-4 from the
    start (VP with unit-variance data: p_t barely moves) only that accuracy is checked."""
    process = SDES[name]
    score = score_of(process, gaussian(mu, sigma))
    start, target = marginal(process, mu, sigma, 1.0), marginal(process, mu, sigma, 1e-3)
    for method, order in (("euler", 1), ("heun", 2)):
        errs = [
            law_error(ode_law(sde, process, score, *start, n, method), target)
            for n in (100, 200, 400)
        ]
        if errs[0] < 1e-4:
            assert max(errs) < 1e-4, (method, errs)
            continue
        ratio = errs[1] / errs[2]
        assert 2**order * 0.8 < ratio < 2**order * 1.25, (method, errs)
    current().summary = (
        "PF-ODE push-forward of p_1 is p_t; Euler order 1, Heun order 2 (VP, sub-VP, VE)"
    )


@claim(refutes="SDE-05.without-half")
def test_ode_without_the_half_does_not_keep_the_marginals(sde):
    def keeps(case):
        name, mu, sigma = case
        process = SDES[name]
        score = score_of(process, gaussian(mu, sigma))
        law = ode_law(
            sde, process, score, *marginal(process, mu, sigma, 1.0), 800, "heun", half=False
        )
        return law_error(law, marginal(process, mu, sigma, 1e-3)) < 1e-3

    cases = st.tuples(
        st.sampled_from(sorted(SDES)), st.sampled_from([0.0, 1.0]), st.sampled_from([1.0, 0.5])
    )
    # 12 cases in all: 12 examples, not the default 200 (each is a 800-step Heun solve)
    name, mu, sigma = refute(cases, keeps, claim="SDE-05.without-half", max_examples=12,
                             describe=lambda c: f"{c[0]}, data N({c[1]}, {c[2]}^2)")  # fmt: skip
    process = SDES[name]
    score = score_of(process, gaussian(mu, sigma))
    law = ode_law(sde, process, score, *marginal(process, mu, sigma, 1.0), 800, "heun", half=False)
    current().record(pushed_variance=law[1], true_variance=marginal(process, mu, sigma, 1e-3)[1])
    current().summary = (
        f"{name}, data N({mu}, {sigma}^2): without the 1/2 the variance ends at {law[1]:.2e}"
    )


@claim("SDE-05.half")
def test_trajectories_and_orders_figure(sde):
    """The report's figures: PF-ODE and reverse-SDE trajectories on 2-D mixture data, and the
    solver-order plot; the mixture samples from the PF-ODE also pass a per-axis KS test."""
    process = SDES["VP"]
    data = oracle.isotropic_mixture([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]], 0.4)
    score = score_of(process, data)
    gen = torch.Generator().manual_seed(0)
    c1, s21 = process.kernel(1.0)
    x1 = c1 * data.sample(2000, gen)[0] + s21**0.5 * torch.randn(2000, 2, generator=gen, dtype=F64)
    ts = np.linspace(1.0, 1e-3, 101)
    ode_path, sde_path = [x1[:12]], [x1[:12]]
    x_ode, x_sde = x1, x1
    for t, t_next in zip(ts, ts[1:], strict=False):
        x_ode = sde.ode_solve(
            lambda x, t: sde.ode_drift(process, score, x, t), x_ode, t, t_next, 2, "heun"
        )
        x_sde = sde.reverse_euler_maruyama(process, score, x_sde, t, t_next, 2, gen)
        ode_path.append(x_ode[:12])
        sde_path.append(x_sde[:12])
    c, s2 = process.kernel(1e-3)
    for axis in (0, 1):
        means = (data.means[:, axis] * c).numpy()
        std = (c**2 * 0.16 + s2) ** 0.5
        cdf = lambda x, m=means, sd=std: sum(sps.norm.cdf(x, mk, sd) for mk in m) / 3  # noqa: E731
        stats.ks_law(x_ode[:, axis].numpy(), cdf, what=f"PF-ODE samples, axis {axis}")
    ode_path, sde_path = torch.stack(ode_path).numpy(), torch.stack(sde_path).numpy()

    def draw(fig):
        ax = fig.subplots()
        for i in range(12):
            ax.plot(
                ode_path[:, i, 0],
                ode_path[:, i, 1],
                color="C0",
                lw=1,
                label="PF-ODE" if i == 0 else None,
            )
            ax.plot(
                sde_path[:, i, 0],
                sde_path[:, i, 1],
                color="C1",
                lw=0.6,
                alpha=0.7,
                label="reverse SDE" if i == 0 else None,
            )
        ax.scatter(*(data.means.numpy().T), color="k", marker="x", label="data means")
        ax.set_title("VP: the same 12 starting points, PF-ODE (Heun) vs reverse SDE (EM)")
        ax.legend()

    figure("sde05_trajectories", draw)

    mu, sigma = 1.0, 0.5
    g_score = score_of(process, gaussian(mu, sigma))
    start, target = marginal(process, mu, sigma, 1.0), marginal(process, mu, sigma, 1e-3)
    ns = [25, 50, 100, 200, 400, 800]
    curves = {
        m: [law_error(ode_law(sde, process, g_score, *start, n, m), target) for n in ns]
        for m in ("euler", "heun")
    }

    def draw_orders(fig):
        ax = fig.subplots()
        for m, errs in curves.items():
            ax.loglog(ns, errs, "o-", label=f"PF-ODE, {m}")
        ax.loglog(ns, [curves["euler"][0] * ns[0] / n for n in ns], "k:", label="slope -1")
        ax.loglog(ns, [curves["heun"][0] * (ns[0] / n) ** 2 for n in ns], "k--", label="slope -2")
        ax.set_xlabel("steps")
        ax.set_ylabel("|mean error| + |variance error| at t = 1e-3")
        ax.legend()

    figure("sde_solver_order", draw_orders)
    current().summary = (
        "figures: trajectories (PF-ODE vs reverse SDE) and solver orders; PF-ODE samples pass KS"
    )


@claim("SDE-06")
@given(a=floats(1e-4, 0.9999), seed=seeds)
def test_score_of_the_kernel_is_minus_eps_over_std(a, seed):
    x0, eps = torch.randn(2, 8, generator=seed.torch(), dtype=F64)
    x_t = (a**0.5 * x0 + (1 - a) ** 0.5 * eps).requires_grad_(True)
    log_q = (-0.5 * (x_t - a**0.5 * x0) ** 2 / (1 - a)).sum()
    (grad,) = torch.autograd.grad(log_q, x_t)
    # autograd forms (x_t - sqrt(a) x0)/(1 - a) from the rounded x_t: off by u (|x_t| + |x0|)/(1 - a)
    scale = (x_t.detach().abs() + x0.abs() + eps.abs()) / (1 - a)
    assert_close(
        grad, -eps / (1 - a) ** 0.5, ulps=8, scale=scale, what="grad log q(x_t|x_0) + eps/sqrt(1-a)"
    )
    # and the oracle: its score and its eps-predictor satisfy s = -eps*/sqrt(1 - a)
    data = oracle.isotropic_mixture([[1.0, 0.0], [-1.0, 1.0]], 0.6)
    x = torch.randn(16, 2, generator=seed.torch(), dtype=F64).requires_grad_(True)
    (auto,) = torch.autograd.grad(data.log_density(x, a).sum(), x)
    closed = data.score(x.detach(), a)
    assert_close(
        auto,
        closed,
        ulps=0,
        abs_floor=1e-9 * (1 + closed.abs()),
        what="autograd score - closed-form score",
    )
    assert_close(
        -data.eps(x.detach(), a) / (1 - a) ** 0.5,
        closed,
        ulps=8,
        scale=closed.abs() + 1,
        what="-eps*/sqrt(1-a) - score",
    )
    current().summary = (
        "grad log q(x_t|x_0) = -eps/sqrt(1 - abar_t); the oracle's score = -eps*/sqrt(1 - abar_t)"
    )


@claim("SDE-07")
@settings(max_examples=8)
@given(d=st.integers(1, 3), seed=seeds)
def test_ode_log_likelihood_is_the_exact_log_density(sde, d, seed):
    """Gaussian data N(mu, diag): log p_0(x_0) from the PF-ODE (Heun, exact divergence) against
    the exact log-density. Heun's error e(n) ~ C/n^2, so e(n) ~ (LL(n/2) - LL(n))/3; the check
    allows twice that."""
    gen = seed.torch()
    mu = torch.randn(d, generator=gen, dtype=F64)
    var = 0.2 + torch.rand(d, generator=gen, dtype=F64)
    data = oracle.GaussianMixture([1.0], mu[None], torch.diag(var)[None])
    process = SDES["VP"]
    score = score_of(process, data)
    c1, s21 = process.kernel(1.0)
    prior = lambda x: data.log_density(x, c1**2, s21)  # noqa: E731
    x0 = mu + var.sqrt() * torch.randn(4, d, generator=gen, dtype=F64)
    exact = data.log_density(x0, 1.0, 0.0)
    coarse = sde.log_likelihood(process, score, prior, x0, 50)
    fine = sde.log_likelihood(process, score, prior, x0, 100)
    assert_within_richardson(  # pooled over the points: one error constant
        coarse, fine, exact, floor=1e-10, what="ODE log-likelihood - exact log-density"
    )
    current().worst("largest |ODE log-likelihood - exact|", float((fine - exact).abs().max()))


@claim("SDE-07")
@statistical()
@given(d=st.integers(3, 6), seed=seeds)
def test_hutchinson_is_unbiased_with_the_variances_of_its_probes(sde, d, seed):
    """E[v^T J v] = tr(J) for the implementation's Rademacher and Gaussian probes (sde.probes);
    the variances are exactly 2 sum_{i != j} S_ij^2 and 2 ||S||_F^2 (S the symmetric part of J).
    J = N(0, 1) entries + 2 I, so that the diagonal (which only the Gaussian probe's variance
    counts) carries a third or more of ||S||_F^2. Each check is a CLT test at alpha = 1e-7 over
    n = 20000 probes: the mean of v^T J v against tr J, and the mean of (v^T J v - tr J)^2 (an
    unbiased estimate of the variance, tr J being exact) against the formula. Power: the
    variance's relative standard error is about sqrt(Var((v^T J v - tr J)^2) / n) / Var, a
    few percent here, so a variance off by the diagonal's share is rejected. (d >= 3: at d = 2
    the Rademacher (v^T J v - tr J)^2 = 4 S_12^2 for every probe, a degenerate CLT test.)"""
    gen = seed.torch()
    J = torch.randn(d, d, generator=gen, dtype=F64) + 2 * torch.eye(d, dtype=F64)
    S = (J + J.T) / 2
    trace = float(torch.trace(J))
    variance = {"rademacher": 2 * float((S**2).sum() - (torch.diag(S) ** 2).sum()),
                "gaussian": 2 * float((S**2).sum())}  # fmt: skip
    n = 20_000
    for kind, var in variance.items():
        est = sde.hutchinson(lambda v: v @ J.T, sde.probes(kind, (n, d), gen))
        stats.mean_equals(est.numpy(), trace, what=f"{kind} Hutchinson mean - tr J")
        stats.mean_equals(((est - trace) ** 2).numpy(), var,
                          what=f"{kind} Hutchinson variance - its formula")  # fmt: skip
    current().summary = (
        "Hutchinson unbiased for both probes; variances 2 sum_{i!=j} S_ij^2 (Rademacher) and"
        " 2 ||S||_F^2 (Gaussian), measured"
    )


@claim("SDE-08")
@given(t1=floats(0.002, 80.0), t2=floats(0.002, 80.0), seed=seeds)
def test_consistency_parametrisation(sde, t1, t2, seed):
    x = torch.randn(16, generator=seed.torch(), dtype=F64)
    F = lambda x, t: torch.sin(x) * t + 3.0  # noqa: E731
    assert torch.equal(sde.consistency_function(F, x, 0.002), x), "f(x, eps) = x exactly"
    lo, hi = sorted((t1, t2))
    if hi > lo:
        skip_lo, out_lo = sde.consistency_coefficients(lo)
        skip_hi, out_hi = sde.consistency_coefficients(hi)
        assert skip_hi <= skip_lo and out_hi >= out_lo
    current().summary = (
        "c_skip(e) = 1, c_out(e) = 0 exactly; c_skip decreasing, c_out increasing for t > e"
    )


def test_bad_input_names_the_argument():
    import pytest

    x = torch.zeros(2, 1, dtype=F64)
    for call, argument in [
        (lambda: sdes.VP(beta_min=0.0), "beta_min"),
        (lambda: sdes.VP(beta_max=-1.0), "beta_max"),
        (lambda: sdes.VE(sigma_min=-0.1), "sigma_min"),
        (lambda: sdes.VE(sigma_min=1.0, sigma_max=0.5), "sigma_max"),
        (lambda: sdes.VE(sigma_min=1.0, sigma_max=1.0), "sigma_max"),
        (lambda: sdes.euler_maruyama(sdes.VP(), x, 0.5, 0.2, 10, None), "t1"),
        (
            lambda: sdes.reverse_euler_maruyama(sdes.VP(), lambda x, t: x, x, 0.2, 0.5, 10, None),
            "t0",
        ),
        (lambda: ode.ode_solve(lambda x, t: x, x, 0.5, 0.5, 10), "t_end"),
        (lambda: ode.ode_solve(lambda x, t: x, x, 0.0, 1.5, 10), "t_end"),
        (lambda: ode.ode_solve(lambda x, t: x, x, 0.0, 1.0, 0), "n"),
        (lambda: ode.ode_solve(lambda x, t: x, x, 0.0, 1.0, 4, "rk4"), "method"),
        (lambda: sdes.consistency_coefficients(0.001), "t"),
        (
            lambda: sdes.predictor_corrector(
                sdes.VP(), lambda x, t: x, x, 1.0, 0.5, 4, None, snr=0.0
            ),
            "snr",
        ),
        (
            lambda: sdes.log_likelihood(
                sdes.VP(), lambda x, t: x, lambda x: x[:, 0], x, 2, probe="uniform"
            ),
            "probe",
        ),
        (lambda: sdes.probes("sphere", (2, 1), None), "kind"),
        (lambda: sdes.euler_maruyama(sdes.VP(), x, 0.5, 0.5, 10, None), "t1"),
        (
            lambda: sdes.reverse_euler_maruyama(sdes.VP(), lambda x, t: x, x, 0.5, 0.5, 10, None),
            "t0",
        ),
        (lambda: sdes.euler_maruyama(sdes.VP(), x, 0.2, float("nan"), 10, None), "t1"),
        (lambda: sdes.predictor_corrector(sdes.VP(), lambda x, t: x, x, 2.0, 0.5, 4, None), "t1"),
        (
            lambda: sdes.log_likelihood(
                sdes.VP(), lambda x, t: x, lambda x: x[:, 0], x, 2, t_eps=1.0
            ),
            "t_eps",
        ),
        (lambda: sdes.VP().kernel(float("nan")), "t"),
        (lambda: sdes.VE().g(1.5), "t"),
        (lambda: sdes.consistency_coefficients(float("nan")), "t"),
        (lambda: sdes.consistency_coefficients(1.0, eps=0.0), "eps"),
        (lambda: sdes.predictor_corrector(sdes.VP(), lambda x, t: x, x, 1.0, 0.0, 10, None), "n"),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()


@claim("SDE-04")
@statistical()
@given(seed=seeds)
def test_predictor_corrector_generates_mixture_data(sde, seed):
    """Predictor (reverse EM) + Langevin corrector (snr 0.16), 300 steps, VP, 1-D mixture: 3000
    samples pass a KS test against the exact marginal at t = 1e-3 (alpha = 1e-7)."""
    process = SDES["VP"]
    data = MIXTURE_1D
    gen = seed.torch()
    c1, s21 = process.kernel(1.0)
    x1 = c1 * data.sample(3000, gen)[0] + s21**0.5 * torch.randn(3000, 1, generator=gen, dtype=F64)
    out = sde.predictor_corrector(process, score_of(process, data), x1, 1.0, 1e-3, 300, gen)
    cdf = mixture_cdf(process, 1e-3)
    stats.ks_law(out[:, 0].numpy(), cdf, what="predictor-corrector samples vs p_0")


@claim("SDE-07")
@statistical()
@given(seed=seeds)
def test_hutchinson_log_likelihood_is_unbiased_along_the_ode(sde, seed):
    """The ODE log-likelihood with one Hutchinson probe per point (Rademacher, d = 3) is an
    unbiased estimate of the exact-divergence value: over 3000 probes its mean matches it (CLT
    test at alpha = 1e-7)."""
    d = 3
    # a rotated covariance, so that the drift's Jacobian has off-diagonal terms (a diagonal one
    # makes the Rademacher estimate exact, with zero variance)
    Q = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(3), dtype=F64))[0]
    cov = Q @ torch.diag(torch.tensor([0.3, 0.6, 1.2], dtype=F64)) @ Q.T
    data = oracle.GaussianMixture([1.0], torch.zeros(1, d, dtype=F64), cov[None])
    process = SDES["VP"]
    score = score_of(process, data)
    c1, s21 = process.kernel(1.0)

    def prior(x):
        return data.log_density(x, c1**2, s21)

    x0 = torch.tensor([[0.2, -0.4, 0.9]], dtype=F64).expand(3000, d).contiguous()
    exact = sde.log_likelihood(process, score, prior, x0[:1], 20)
    estimates = sde.log_likelihood(
        process, score, prior, x0, 20, generator=seed.torch(), probe="rademacher"
    )
    stats.mean_equals(
        estimates.numpy(),
        float(exact[0]),
        what="Hutchinson ODE log-likelihood - exact-divergence one",
    )


@claim("SDE-08")
def test_consistency_parametrisation_by_its_formula(sde):
    """(6) at t = 1 with the defaults sigma_data = 0.5, eps = 0.002: c_skip = sd^2 / ((t - eps)^2
    + sd^2), c_out = sd (t - eps) / sqrt(sd^2 + t^2), and f = c_skip x + c_out F(x, t)."""
    sd, eps, t = 0.5, 0.002, 1.0
    c_skip, c_out = sde.consistency_coefficients(t)
    assert math.isclose(c_skip, sd**2 / ((t - eps) ** 2 + sd**2), rel_tol=1e-15)
    assert math.isclose(c_out, sd * (t - eps) / math.sqrt(sd**2 + t**2), rel_tol=1e-15)
    x = torch.tensor([[0.3, -1.0]], dtype=torch.float64)
    f = sde.consistency_function(lambda x, t: 2 * x + t, x, t)
    assert torch.allclose(f, c_skip * x + c_out * (2 * x + t), rtol=1e-15, atol=0)


@claim("SDE-07")
@settings(max_examples=10)
@given(d=st.integers(1, 4), seed=seeds)
def test_hutchinson_probes_on_a_diagonal_jacobian(sde, d, seed):
    """Isotropic Gaussian data: the PF-ODE drift's Jacobian is a(t) I, so v^T J v = a |v|^2 and
    the ODE path does not depend on v. Hence, with the same steps, a Rademacher probe (|v|^2 = d)
    gives the exact-divergence value, and a Gaussian probe v (drawn from the caller's generator,
    float64) gives prior + (|v|^2 / d) * integral exactly."""
    gen = seed.torch()
    data = oracle.isotropic_mixture([torch.randn(d, generator=gen, dtype=F64).tolist()], 0.8)
    process = SDES["VP"]
    score = score_of(process, data)
    x0 = torch.randn(6, d, generator=gen, dtype=F64)
    zero_prior = lambda x: torch.zeros(x.shape[0], dtype=F64)  # noqa: E731
    integral = sde.log_likelihood(process, score, zero_prior, x0, 10)
    rad = sde.log_likelihood(process, score, zero_prior, x0, 10, generator=seed.torch(),
                             probe="rademacher")  # fmt: skip
    gauss = sde.log_likelihood(process, score, zero_prior, x0, 10, generator=seed.torch(),
                               probe="gaussian")  # fmt: skip
    v = torch.randn(6, d, generator=seed.torch(), dtype=F64)
    # the divergences differ in summation order only: d u per evaluation, 4 per Heun step, 10
    # steps, relative to the integral of |div| (here |integral|: one sign along the path)
    scale = 40 * (d + 2) * integral.abs()
    assert_close(rad, integral, ulps=1, scale=scale, what="Rademacher estimate - exact")
    want = (v**2).sum(1) / d * integral
    assert_close(gauss, want, ulps=1, scale=scale * (v**2).sum(1),
                 what="Gaussian estimate - |v|^2/d x exact")  # fmt: skip
    assert not torch.allclose(gauss, integral, rtol=1e-6), "the Gaussian probe is not exact"
    current().summary = "Rademacher exact and Gaussian = |v|^2/d x exact on a diagonal Jacobian"


@claim("SDE-03")
def test_the_papers_default_sdes(sde):
    """Song et al.'s defaults: VP beta from 0.1 to 20 (c(1)^2 = exp(-(0.1 + 19.9/2))), VE sigma
    from 0.01 to 50 (s(1)^2 = 50^2 - 0.01^2); the consistency map is the identity at its eps."""
    c, s2 = sde.vp().kernel(1.0)
    assert math.isclose(c**2, math.exp(-(0.1 + 19.9 / 2)), rel_tol=1e-14)
    assert math.isclose(s2, -math.expm1(-(0.1 + 19.9 / 2)), rel_tol=1e-15)
    ve = sde.ve()
    assert ve.kernel(1.0) == (1.0, ve.sigma(1.0) ** 2 - 0.01**2)
    assert math.isclose(ve.sigma(1.0), 50.0, rel_tol=1e-14) and ve.sigma(0.0) == 0.01
    x = torch.tensor([[0.3, -1.2]], dtype=F64)
    F = lambda x, t: x + 1.0  # noqa: E731
    assert torch.equal(sde.consistency_function(F, x, 0.01, eps=0.01), x)
    assert not torch.equal(sde.consistency_function(F, x, 0.01), x)
