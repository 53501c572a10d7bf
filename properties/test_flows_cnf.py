"""FLOW-03, FLOW-04: continuous normalizing flows (impl/flows/cnf.py) and the continuity equation
(the OT path's marginal field and density, impl/flows/matching.py), through the family `flows`
(properties/adapters/flows.py); the ODE solver, a tool of the checks, is the family's own
flows.ode_solve (impl/ode.py)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.diffusion import oracle
from impl.flows import cnf
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import floats, seeds
from properties.tolerances import assert_close, assert_within_richardson

F64 = torch.float64
U = 2.0**-53


def std_normal_log_density(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


@claim("FLOW-03")
@settings(max_examples=20)
@given(d=st.integers(1, 3), seed=seeds)
def test_linear_cnf_density_is_the_pushforward(flows, d, seed):
    """v(z) = A z pushes N(0, I) to N(0, e^A e^A^T): the CNF log-density (Heun, order 2) equals it,
    with the solver error estimated from n = 20 vs 40 (e(40) ~ (LL(20) - LL(40))/3; twice that allowed)."""
    gen = seed.torch()
    A = 0.5 * torch.randn(d, d, generator=gen, dtype=F64)
    x = torch.randn(6, d, generator=gen, dtype=F64)
    M = torch.matrix_exp(A)
    exact = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=F64), M @ M.T).log_prob(x)
    v = lambda z, t: z @ A.T  # noqa: E731
    coarse = flows.log_density(v, x, std_normal_log_density, 20)
    fine = flows.log_density(v, x, std_normal_log_density, 40)
    assert_within_richardson(
        coarse, fine, exact, floor=1e-12, what="CNF log-density - exact push-forward"
    )
    current().summary = (
        "d log p/dt = -tr(dv/dz): the CNF density of a linear field is the exact push-forward"
    )


@claim("FLOW-03")
@settings(max_examples=10)
@given(seed=seeds)
def test_nonlinear_cnf_matches_the_change_of_variables_of_its_flow_map(flows, seed):
    """v(z, t) = tanh(W z + b t): log p_1(z_1) from the CNF equals log p_0(z_0) - log|det dz_1/dz_0|
    of the (fine, n = 400) flow map; the CNF's Heun error at n = 50 is estimated by n = 25 vs 50."""
    gen = seed.torch()
    W, b = torch.randn(2, 2, generator=gen, dtype=F64), torch.randn(2, generator=gen, dtype=F64)
    v = lambda z, t: torch.tanh(z @ W.T + b * t)  # noqa: E731
    z0 = torch.randn(4, 2, generator=gen, dtype=F64)
    log_p0 = std_normal_log_density(z0)
    _, coarse = flows.push(v, z0, log_p0, 25)
    _, fine = flows.push(v, z0, log_p0, 50)

    def flow_map(u):
        return flows.ode_solve(v, u[None], 0.0, 1.0, 400)[0]

    logdets = torch.stack(
        [torch.linalg.slogdet(torch.autograd.functional.jacobian(flow_map, row))[1] for row in z0]
    )
    via_map = log_p0 - logdets
    assert_within_richardson(
        coarse, fine, via_map, floor=1e-6, what="CNF log p - change of variables of the map"
    )


def random_mixture(seed, d, k):
    """k components in d dimensions: means in [-2, 2]^d, standard deviations in [0.2, 1],
    weights in proportion to uniform(0.1, 1.1)."""
    gen = seed.torch()
    means = 4 * torch.rand(k, d, generator=gen, dtype=F64) - 2
    std = 0.2 + 0.8 * torch.rand(k, generator=gen, dtype=F64)
    w = 0.1 + torch.rand(k, generator=gen, dtype=F64)
    return oracle.GaussianMixture(
        w / w.sum(), means, std[:, None, None] ** 2 * torch.eye(d, dtype=F64)
    )


@claim("FLOW-04")
@settings(max_examples=30)
@given(seed=seeds, d=st.integers(1, 3), k=st.integers(1, 4), t=floats(0.02, 0.98),
       sigma_min=st.just(0.0) | floats(0.0, 0.5))  # fmt: skip
def test_marginal_field_and_density_satisfy_the_continuity_equation(
    flows, seed, d, k, t, sigma_min
):
    """The OT path's marginal field u_t (flows.ot_marginal_field) and density p_t
    (flows.ot_marginal_log_density) of a random Gaussian mixture satisfy, by autograd in x and
    t, the continuity equation in log form: d log p/dt + div u + u . grad log p = 0.

    Budget: each of the three terms is computed with a relative error of a few tens of u (Cholesky,
    softmax, one autograd pass), amplified in the field by Tweedie's (x + sigma^2 score) / t
    (a cancellation of size (1 + |x|_1) / t) and by the field's 1 / sigma_t: 256 u times the sum of
    the terms' magnitudes times (1 + |x|_1) / (t sigma_t). Measured worst over 200 random cases:
    19 u of that scale (the budget leaves a factor 13)."""
    data = random_mixture(seed, d, k)
    x = (3 * torch.randn(8, d, generator=seed.torch(), dtype=F64)).requires_grad_(True)
    tt = torch.tensor(t, dtype=F64, requires_grad=True)
    given_sigma_min = {"sigma_min": sigma_min} if sigma_min else {}  # 0: the default path
    log_p = flows.ot_marginal_log_density(data, x, tt, **given_sigma_min)
    dlogp_dt = torch.stack(
        [torch.autograd.grad(log_p[i], tt, retain_graph=True)[0] for i in range(len(x))]
    )
    (grad_logp,) = torch.autograd.grad(log_p.sum(), x, retain_graph=True)
    u = flows.ot_marginal_field(data, x, tt, **given_sigma_min)
    div = sum(torch.autograd.grad(u[:, j].sum(), x, retain_graph=True)[0][:, j] for j in range(d))
    transport = u * grad_logp
    residual = (dlogp_dt + div + transport.sum(1)).detach()
    sigma_t = 1 - (1 - sigma_min) * t
    size = (dlogp_dt.abs() + div.abs() + transport.abs().sum(1)).detach()
    scale = size * (1 + x.detach().abs().sum(1)) / (t * sigma_t)
    assert_close(residual, torch.zeros_like(residual), ulps=256, scale=scale,
                 what="d log p_t/dt + div u_t + u_t . grad log p_t")  # fmt: skip
    current().summary = (
        "the OT path's marginal field and density (impl) satisfy dp/dt + div(p u) = 0 "
        "on random Gaussian mixtures"
    )


def mixture_cdf_1d(data, x, t, sigma_min):
    """P(t x_1 + sigma_t x_0 <= x) for 1-D mixture data x_1 and x_0 ~ N(0, 1): the reference."""
    sigma_t = 1 - (1 - sigma_min) * t
    sd = torch.sqrt(t**2 * data.covariances[:, 0, 0] + sigma_t**2)
    return (data.weights * torch.special.ndtr((x - t * data.means[:, 0]) / sd)).sum(1)


@claim("FLOW-04")
@settings(max_examples=10)
@given(seed=seeds, k=st.integers(1, 4), sigma_min=floats(0.0, 0.5), t_end=floats(0.5, 0.95))
def test_marginal_field_transports_the_gaussian_to_the_path(flows, seed, k, sigma_min, t_end):
    """Push N(0, 1) through flows.ode_solve (Heun) with the marginal field of a random 1-D mixture:
    the ODE map is increasing, so if u generates p_t it carries the z-quantile of N(0, 1) to the
    z-quantile of p_t: F_t(X_t(z)) = Phi(z) with F_t the mixture CDF of t x_1 + sigma_t x_0 (exact,
    no sampling). The Heun error at n = 80 steps is estimated by Richardson from n = 40 vs 80
    (assert_within_richardson); with sigma_min >= 0.05 the path runs to t = 1. The density
    flows.ot_marginal_log_density is checked against the same law at the pushed points."""
    data = random_mixture(seed, 1, k)
    t1 = 1.0 if sigma_min >= 0.05 else t_end
    z = torch.linspace(-3, 3, 13, dtype=F64)[:, None]

    def field(x, t):
        return flows.ot_marginal_field(data, x, t, sigma_min)

    coarse = mixture_cdf_1d(data, flows.ode_solve(field, z, 0.0, t1, 40), t1, sigma_min)
    fine = mixture_cdf_1d(data, flows.ode_solve(field, z, 0.0, t1, 80), t1, sigma_min)
    assert_within_richardson(coarse, fine, torch.special.ndtr(z[:, 0]), floor=1e-12,
                             what="F_t(X_t(z)) - Phi(z)")  # fmt: skip
    # the density is the derivative of that law's CDF (autograd; both sums of k Gaussian terms,
    # each with a few u of relative error: 64 u of the density)
    x = flows.ode_solve(field, z, 0.0, t1, 80).requires_grad_(True)
    (pdf,) = torch.autograd.grad(mixture_cdf_1d(data, x, t1, sigma_min).sum(), x)
    density = flows.ot_marginal_log_density(data, x.detach(), t1, sigma_min).exp()
    assert_close(density, pdf[:, 0], ulps=64, scale=pdf[:, 0],
                 what="p_t(x) - dF_t/dx")  # fmt: skip
    current().summary = (
        "the marginal field carries N(0, 1) along the path: quantiles of p_t reached by the ODE"
    )


def test_issue_16_push_refuses_a_log_density_of_the_wrong_shape():
    """Issue 16: cnf.push broadcast a (4, 1) log-density against the (4,) divergence integral to a
    (4, 4) result; log_p0 must have shape (n,), one value per row of z0."""
    import pytest

    z0 = torch.randn(4, 2, dtype=F64)
    v = lambda z, t: -z  # noqa: E731
    for log_p0 in (
        torch.zeros(4, 1, dtype=F64),
        torch.zeros(3, dtype=F64),
        torch.zeros(1, 4, dtype=F64),
    ):
        with pytest.raises(ValueError, match=r"^log_p0: expected shape \(4,\)"):
            cnf.push(v, z0, log_p0, 2)
    z1, log_p1 = cnf.push(v, z0, torch.zeros(4, dtype=F64), 2)
    assert z1.shape == (4, 2) and log_p1.shape == (4,)
    # the same rule for the backward direction: log_p0_fn must give one value per row
    with pytest.raises(ValueError, match=r"^log_p0_fn: "):
        cnf.log_density(v, z0, lambda z: -0.5 * z**2, 2)
