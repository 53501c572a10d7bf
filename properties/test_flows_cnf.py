"""FLOW-03, FLOW-04: continuous normalizing flows and the continuity equation (impl/flows/cnf.py)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl import ode
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
def test_linear_cnf_density_is_the_pushforward(d, seed):
    """v(z) = A z pushes N(0, I) to N(0, e^A e^A^T): the CNF log-density (Heun, order 2) equals it,
    with the solver error estimated from n = 20 vs 40 (e(40) ~ (LL(20) - LL(40))/3; twice that allowed)."""
    gen = seed.torch()
    A = 0.5 * torch.randn(d, d, generator=gen, dtype=F64)
    x = torch.randn(6, d, generator=gen, dtype=F64)
    M = torch.matrix_exp(A)
    exact = torch.distributions.MultivariateNormal(torch.zeros(d, dtype=F64), M @ M.T).log_prob(x)
    v = lambda z, t: z @ A.T  # noqa: E731
    coarse = cnf.log_density(v, x, std_normal_log_density, 20)
    fine = cnf.log_density(v, x, std_normal_log_density, 40)
    assert_within_richardson(
        coarse, fine, exact, floor=1e-12, what="CNF log-density - exact push-forward"
    )
    current().summary = (
        "d log p/dt = -tr(dv/dz): the CNF density of a linear field is the exact push-forward"
    )


@claim("FLOW-03")
@settings(max_examples=10)
@given(seed=seeds)
def test_nonlinear_cnf_matches_the_change_of_variables_of_its_flow_map(seed):
    """v(z, t) = tanh(W z + b t): log p_1(z_1) from the CNF equals log p_0(z_0) - log|det dz_1/dz_0|
    of the (fine, n = 400) flow map; the CNF's Heun error at n = 50 is estimated by n = 25 vs 50."""
    gen = seed.torch()
    W, b = torch.randn(2, 2, generator=gen, dtype=F64), torch.randn(2, generator=gen, dtype=F64)
    v = lambda z, t: torch.tanh(z @ W.T + b * t)  # noqa: E731
    z0 = torch.randn(4, 2, generator=gen, dtype=F64)
    log_p0 = std_normal_log_density(z0)
    _, coarse = cnf.push(v, z0, log_p0, 25)
    _, fine = cnf.push(v, z0, log_p0, 50)

    def flow_map(u):
        return ode.ode_solve(v, u[None], 0.0, 1.0, 400)[0]

    logdets = torch.stack(
        [torch.linalg.slogdet(torch.autograd.functional.jacobian(flow_map, row))[1] for row in z0]
    )
    via_map = log_p0 - logdets
    assert_within_richardson(
        coarse, fine, via_map, floor=1e-6, what="CNF log p - change of variables of the map"
    )


def gaussian_path(x, t):
    """p_t = N(m(t), s(t)^2) in 1-D with m = sin(2t) + t, s = 0.5 + t^2, and its exact field."""
    m, s = torch.sin(2 * t) + t, 0.5 + t**2
    dm, ds = 2 * torch.cos(2 * t) + 1, 2 * t
    p = torch.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    return p, ds / s * (x - m) + dm, dm


@claim("FLOW-04")
@given(x=floats(-4, 4), t=floats(0.0, 2.0))
def test_exact_field_satisfies_the_continuity_equation(x, t):
    """dp/dt + d(p u)/dx = 0 for u = (s'/s)(x - m) + m', by autograd; the residual is rounding in
    the chain-rule terms, each at most p (1 + |z|)^2 (|m'| + |s'| + 1) / s with z = (x - m)/s."""
    xt = torch.tensor(x, dtype=F64, requires_grad=True)
    tt = torch.tensor(t, dtype=F64, requires_grad=True)
    p, u, _ = gaussian_path(xt, tt)
    (dp_dt,) = torch.autograd.grad(p, tt, retain_graph=True)
    (dpu_dx,) = torch.autograd.grad(p * u, xt)
    m, sd = math.sin(2 * t) + t, 0.5 + t**2
    z = abs(x - m) / sd
    size = float(p) * (1 + z) ** 2 * (abs(2 * math.cos(2 * t) + 1) + 2 * t + 1) / sd + 1e-300
    assert_close(dp_dt + dpu_dx, 0.0, ulps=64, scale=size, what="dp/dt + d(p u)/dx")
    current().summary = "the Gaussian path's exact field satisfies dp/dt + div(p u) = 0"


@claim("FLOW-04")
def test_negative_control_field_without_the_mean_drift():
    """Dropping m' from u breaks the continuity equation (the residual is p m' != 0)."""
    xt = torch.tensor(0.3, dtype=F64, requires_grad=True)
    tt = torch.tensor(0.4, dtype=F64, requires_grad=True)
    p, u, dm = gaussian_path(xt, tt)
    (dp_dt,) = torch.autograd.grad(p, tt, retain_graph=True)
    (dpu_dx,) = torch.autograd.grad(p * (u - dm), xt)
    assert abs(float(dp_dt + dpu_dx)) > 0.1
