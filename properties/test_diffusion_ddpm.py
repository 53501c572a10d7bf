"""DDIM-01, DDIM-02: the DDPM forward process and its posterior (impl/diffusion/ddpm.py).

Exact checks use schedules whose sqrt(alpha_t) are rationals, so that every coefficient is
rational and the identities can be tested with Fractions, without tolerance.
"""

from fractions import Fraction

import mpmath
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from impl.diffusion import ddpm, schedules
from properties import stats
from properties.catalogue import claim
from properties.evidence import current
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

U = 2.0**-53
roots = st.lists(
    st.fractions(Fraction(1, 2), Fraction(999, 1000), max_denominator=1000), min_size=1, max_size=30
)


@claim("DDIM-01")
@given(r=roots)
def test_composed_one_step_kernels_give_the_marginal_exactly(r):
    """x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps_t composed from x_0: the mean coefficient is
    prod sqrt(alpha_i) = sqrt(abar_t) and the variance v_t = alpha_t v_{t-1} + beta_t = 1 - abar_t."""
    coefficient, variance, abar = Fraction(1), Fraction(0), Fraction(1)
    for root in r:
        alpha = root**2
        coefficient *= root
        variance = alpha * variance + (1 - alpha)
        abar *= alpha
        assert coefficient**2 == abar and variance == 1 - abar
    current().summary = "exact on rational schedules: mean sqrt(abar_t) x_0, variance 1 - abar_t"


@claim("DDIM-01")
@given(beta=st.lists(floats(1e-5, 0.5), min_size=1, max_size=200))
def test_alphas_cumprod_is_the_product(diffusion, beta):
    abar = diffusion.alphas_cumprod(torch.tensor(beta, dtype=torch.float64))
    exact = [Fraction(1)]
    for b in beta:
        exact.append(exact[-1] * (1 - Fraction(b)))
    # each factor 1 - beta rounds by u and each product by u: relative error <= 2 t u
    t = torch.arange(1, len(beta) + 1, dtype=torch.float64)
    reference = torch.tensor([float(e) for e in exact[1:]], dtype=torch.float64)
    assert_close(
        abar, reference, ulps=2, scale=(2 * t + 1) * reference, what="abar_t - prod (1 - beta_i)"
    )


@claim("DDIM-01")
@statistical()
@given(t=st.integers(1, 300), x0=floats(-3, 3), seed=seeds)
def test_simulated_chain_has_the_forward_marginal(diffusion, t, x0, seed):
    """4000 chains of t one-step kernels on the linear schedule: x_t ~ N(sqrt(abar_t) x_0, 1 - abar_t)."""
    betas = schedules.linear_betas()[:t]
    gen = seed.torch()
    x = torch.full((4000,), x0, dtype=torch.float64)
    for beta in betas:
        x = (1 - beta) ** 0.5 * x + beta**0.5 * torch.randn(
            4000, generator=gen, dtype=torch.float64
        )
    a = diffusion.alphas_cumprod(betas)[-1].item()
    stats.normal_law(x.numpy(), a**0.5 * x0, 1 - a, what="x_t from the chain vs q(x_t|x_0)")


@claim("DDIM-02")
@given(
    r=roots,
    x_t=st.fractions(-10, 10, max_denominator=100),
    x0=st.fractions(-10, 10, max_denominator=100),
)
def test_bayes_posterior_matches_the_formulas_exactly(r, x_t, x0):
    """q(x_{t-1} | x_t, x_0) ~ q(x_t | x_{t-1}) q(x_{t-1} | x_0): precision alpha_t/beta_t +
    1/(1 - abar_{t-1}), mean (sqrt(alpha_t) x_t / beta_t + sqrt(abar_{t-1}) x_0/(1 - abar_{t-1})) /
    precision. Both equal DDIM-02's mu~ and beta~, and the article's std form squared, exactly."""
    if len(r) < 2:
        r = r + r
    root_prev = 1
    for root in r[:-1]:
        root_prev *= root  # sqrt(abar_{t-1})
    alpha = r[-1] ** 2
    abar_prev, beta = root_prev**2, 1 - r[-1] ** 2
    abar = abar_prev * alpha
    precision = alpha / beta + 1 / (1 - abar_prev)
    mean = (r[-1] * x_t / beta + root_prev * x0 / (1 - abar_prev)) / precision
    mu = r[-1] * (1 - abar_prev) / (1 - abar) * x_t + root_prev * beta / (1 - abar) * x0
    beta_tilde = (1 - abar_prev) * beta / (1 - abar)
    assert mean == mu and 1 / precision == beta_tilde
    current().summary = (
        "exact: Bayes' product of Gaussians gives mu~ and beta~; both variance forms agree"
    )


@claim("DDIM-02")
@given(a=floats(1e-6, 0.999), ratio=floats(1e-3, 0.999999), x_t=floats(-5, 5), x0=floats(-5, 5))
def test_posterior_implementation_within_rounding(diffusion, a, ratio, x_t, x0):
    """ddpm.posterior (mean and variance) and the article's variance form against the formulas
    evaluated on the same float inputs in 60-digit arithmetic (b = a / ratio > a). Cancellations:
    1 - a, 1 - b and 1 - a/b lose u / (1 - .) relative, so each coefficient carries 8 u (1/(1 - a)
    + 1/(1 - b) + 1/(1 - a/b) + 4) relative, and the mean that times |c1 x_t| + |c2 x_0|."""
    b = a / ratio
    assume(b < 1)
    with mpmath.workdps(60):
        A, B, X, X0 = (mpmath.mpf(v) for v in (a, b, x_t, x0))
        beta = 1 - A / B
        c1, c2 = mpmath.sqrt(A / B) * (1 - B) / (1 - A), mpmath.sqrt(B) * beta / (1 - A)
        mean_exact, var_exact = float(c1 * X + c2 * X0), float((1 - B) * beta / (1 - A))
        size = float(abs(c1 * X) + abs(c2 * X0))
    mean, var = diffusion.posterior(
        torch.tensor(x_t, dtype=torch.float64), torch.tensor(x0, dtype=torch.float64), a, b
    )
    cond = 1 / (1 - a) + 1 / (1 - b) + 1 / (1 - a / b) + 4
    # subnormal x_t, x0 (down to 5e-324): each rounding there is absolute, 2^-1074
    assert_close(mean, mean_exact, ulps=8 * cond, scale=size, abs_floor=8 * cond * 2.0**-1074,
                 what="mu~")  # fmt: skip
    assert_close(torch.tensor(var), var_exact, ulps=8 * cond, scale=var_exact, what="beta~")
    assert_close(torch.tensor(diffusion.posterior_variance_article(a, b)), var_exact, ulps=8 * cond,
                 scale=var_exact, what="article's (alpha/beta + 1/(1-b))^-1")  # fmt: skip


@claim("DDIM-01")
@statistical()
@given(a=floats(1e-4, 0.9999), x0=floats(-3, 3), seed=seeds)
def test_q_sample_has_the_forward_marginal(diffusion, a, x0, seed):
    """4000 draws of ddpm.q_sample(x_0, abar_t, eps), eps ~ N(0, 1): N(sqrt(abar_t) x_0, 1 - abar_t)."""
    eps = torch.randn(4000, generator=seed.torch(), dtype=torch.float64)
    x_t = diffusion.q_sample(torch.full((4000,), x0, dtype=torch.float64), a, eps)
    stats.normal_law(x_t.numpy(), a**0.5 * x0, 1 - a, what="q_sample vs q(x_t|x_0)")


@claim("DDIM-02")
@given(seed=seeds, n=st.integers(1, 6), variance=st.sampled_from(["posterior", "large"]))
def test_sampler_takes_the_ancestral_steps(diffusion, seed, n, variance):
    """sample() over decreasing t_1 > ... > t_n: x <- ancestral_step(x, eps(x, t_k), abar[t_k],
    abar[t_{k+1}] (1 for the last step), z_k) with z_k ~ N(0, I) in x's dtype from the caller's
    generator only; abar as a Python list gives the same."""
    abar = diffusion.alphas_cumprod(schedules.linear_betas())
    ts = sorted(torch.randperm(1000, generator=seed.torch())[:n].tolist(), reverse=True)
    x_T = torch.randn(3, 2, generator=seed.torch(), dtype=torch.float64)
    model = lambda x, t: 0.2 * x + 1e-3 * t  # noqa: E731
    torch.manual_seed(0)
    got = diffusion.ddpm_sample(model, x_T, abar.tolist(), ts, torch.Generator().manual_seed(9),
                                variance)  # fmt: skip
    torch.manual_seed(1)
    g, want = torch.Generator().manual_seed(9), x_T
    for i, t in enumerate(ts):
        b = abar[ts[i + 1]].item() if i + 1 < n else 1.0
        z = torch.randn(3, 2, generator=g, dtype=torch.float64)
        want = diffusion.ddpm_step(want, model(want, t), abar[t].item(), b, z, variance)
    assert torch.equal(got, want)
    # the last step (to abar = 1) is x0_hat, without noise, whatever the variance
    x, z = x_T, torch.ones_like(x_T)
    last = diffusion.ddpm_step(x, model(x, 0), abar[0].item(), 1.0, z, variance)
    assert torch.equal(last, schedules.eps_to_x0(x, model(x, 0), abar[0].item()))
    assert torch.equal(diffusion.ddpm_sample(model, x_T, abar, ts, torch.Generator().manual_seed(9)),
                       diffusion.ddpm_sample(model, x_T, abar, ts, torch.Generator().manual_seed(9),
                                   "posterior"))  # fmt: skip


# Issue 16, part 2: bad input gets a clear error naming the argument ----------------------------


def test_q_sample_refuses_abar_above_one():
    """ddpm.q_sample(x, 1.2, eps) returned complex numbers (sqrt(1 - 1.2))."""
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^a: must lie in \[0, 1\]"):
        ddpm.q_sample(x, 1.2, x)


def test_posterior_refuses_levels_out_of_order():
    """ddpm.posterior(x, x, 0.5, 0.3) returned a negative variance: abar_tau = b must be >= a."""
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^b: abar_tau must be >= abar_t = a"):
        ddpm.posterior(x, x, 0.5, 0.3)
    for a, b, argument in ((1.0, 1.0, "a"), (-0.1, 0.5, "a"), (0.3, 1.5, "b"), (0.3, 0.0, "b")):
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            ddpm.posterior(x, x, a, b)
    with pytest.raises(ValueError, match=r"^b: abar_tau must be > abar_t"):
        ddpm.posterior_variance_article(0.5, 0.5)
    # one level per batch row is allowed, and checked per row
    mean, var = ddpm.posterior(x, x, torch.tensor([[0.2], [0.3], [0.4], [0.5]]), 0.6)
    assert mean.shape == x.shape and torch.all(var > 0)
    with pytest.raises(ValueError, match=r"^b: "):
        ddpm.posterior(x, x, torch.tensor([[0.2], [0.3], [0.4], [0.7]]), 0.6)
