"""FLOW-10..FLOW-15: the flow-matching article's full text (Theorems 1-3 and their proofs, the
push-forward without |det|, the three Gaussian paths, "the OT path is a straight line"), on the
exact marginals of Gaussian-mixture data (impl/flows/marginal.py) and the push-forward formula
(impl/flows/pushforward.py), through the family `flows` (its gaussian_path, psi, ..., and its
ode_solve, the instrument the trajectories are measured with). Time convention of the article:
t = 0 Gaussian, t = 1 data.

Quadrature budgets. Integrals over x1 use the trapezoid rule on X1_NODES (step h = 0.005 on
[-7, 7]). Each integrand is a product of Gaussians in x1 (a component of q, std >= 0.3, and
p_t(x|x1) as a function of x1, std sigma_t/a_t >= 0.02 for the times drawn) times a polynomial
of degree <= 2: a Gaussian of std w >= 0.02 = 4 h. By Poisson summation the trapezoid rule's
relative error on it is <= 2 exp(-2 pi^2 w^2/h^2) (x a polynomial factor) < 1e-100, and the
truncation at [-7, 7] (>= 11 stds of q's components from their means) < 1e-26: what remains is
rounding, <= N u sum|terms| for a sum of N terms each computed to a few ulps, so the budgets are
4 N ulps of sum|terms|.
"""

import math

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.diffusion import oracle
from impl.flows import matching, pushforward
from properties import evidence
from properties.catalogue import claim
from properties.evidence import current, refute
from properties.profiles import costly
from properties.strategies import Seed, floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53

# q in 1-D (two components, std 0.5 and 0.3) and in 2-D (three components, one not isotropic)
Q1 = oracle.GaussianMixture([0.4, 0.6], [[-1.5], [1.0]], [[[0.25]], [[0.09]]])
Q2 = oracle.GaussianMixture(
    [0.5, 0.3, 0.2],
    [[-1.0, 0.0], [1.0, 0.5], [0.0, -1.5]],
    [[[0.09, 0.0], [0.0, 0.09]], [[0.2, 0.05], [0.05, 0.1]], [[0.04, 0.0], [0.0, 0.04]]],
)
# the three paths by name: flows.gaussian_path(**PATHS[name])
PATHS = {"OT": {"kind": "OT", "sigma_min": 0.01}, "VP": {"kind": "VP"}, "VE": {"kind": "VE"}}
NAMES = sorted(PATHS)
X1_NODES = torch.linspace(-7, 7, 2801, dtype=F64)[:, None]  # h = 0.005
X1_H = 14 / 2800
Q1_WEIGHTS = X1_H * torch.exp(Q1.log_density(X1_NODES, 1.0, 0.0))  # h q(x1_j)
N_NODES = X1_NODES.shape[0]
QUADRATURE_ULPS = 4 * N_NODES


def scalar_t(t):
    return torch.tensor(float(t), dtype=F64, requires_grad=True)


def d_dt(f, t):
    """d f(t)/dt by autograd (f returns a scalar tensor)."""
    tt = scalar_t(t)
    (g,) = torch.autograd.grad(f(tt), tt)
    return float(g)


def node_scale(path, x, t):
    """sum_j h q(x1_j) p_t(x|x1_j) (|s'|/s (1 + z^2) + |a'| |x1| |z|/s), z = (x - a x1)/s: a bound
    on sum_j |h q(x1_j) d/dt p_t(x|x1_j)| and on sum_j |h q(x1_j) div(u_t(x|x1_j) p_t(x|x1_j))|,
    the magnitude the quadrature sums' rounding is relative to."""
    a, s = (float(v) for v in path.coefficients(t))
    da, ds = (float(v) for v in path.derivatives(t))
    z = (x - a * X1_NODES[:, 0]) / s
    p = torch.exp(-0.5 * z**2) / (s * math.sqrt(2 * math.pi))
    bound = p * (abs(ds) / s * (1 + z**2) + abs(da) * X1_NODES[:, 0].abs() * z.abs() / s)
    return float((Q1_WEIGHTS * bound).sum())


def chain_members(flows, path, x, t):
    """The five members of Theorem 1's proof at (x, t), for q = Q1:
    A  d/dt p_t(x)                                   (closed form p_t, autograd in t)
    B  int d/dt p_t(x|x1) q(x1) dx1                  (Leibniz; quadrature)
    C  -int div(u_t(x|x1) p_t(x|x1)) q(x1) dx1       (conditional continuity; per-node divergence)
    D  -div int u_t(x|x1) p_t(x|x1) q(x1) dx1        (Leibniz; divergence of the quadrature)
    E  -div(p_t u_t)(x)                              (closed-form marginal pair)"""
    xx = torch.tensor([[x]], dtype=F64)
    A = d_dt(lambda tt: torch.exp(flows.marginal_log_density(path, Q1, xx, tt)).sum(), t)
    B = d_dt(
        lambda tt: (
            Q1_WEIGHTS * torch.exp(flows.conditional_log_density(path, xx, X1_NODES, tt))
        ).sum(),
        t,
    )
    xs = torch.full((N_NODES, 1), x, dtype=F64, requires_grad=True)  # one copy of x per node
    flux = flows.path_conditional_field(path, xs, X1_NODES, t)[:, 0] * torch.exp(
        flows.conditional_log_density(path, xs, X1_NODES, t)
    )
    (div_per_node,) = torch.autograd.grad(flux.sum(), xs)
    C = -float((Q1_WEIGHTS * div_per_node[:, 0]).sum())
    x1 = torch.tensor([[x]], dtype=F64, requires_grad=True)
    xe = x1.expand(N_NODES, 1)
    integral = (
        Q1_WEIGHTS
        * flows.path_conditional_field(path, xe, X1_NODES, t)[:, 0]
        * torch.exp(flows.conditional_log_density(path, xe, X1_NODES, t))
    ).sum()
    D = -float(torch.autograd.grad(integral, x1)[0])
    xm = torch.tensor([[x]], dtype=F64, requires_grad=True)
    pm = torch.exp(flows.marginal_log_density(path, Q1, xm, t))
    E = -float(
        torch.autograd.grad((pm[:, None] * flows.marginal_field(path, Q1, xm, t)).sum(), xm)[0]
    )
    return A, B, C, D, E


def continuity_terms(flows, path, data, x, t, extra=None):
    """(d p_t/dt, [d/dx_j (p_t v_j)]_j) at the points x (n, d), v = u_t (+ extra(x) when given),
    each by autograd; the residual is d p_t/dt + sum_j of the terms."""
    dpdt = []
    for i in range(x.shape[0]):  # one row at a time: d/dt of each p_t(x_i)
        tt = scalar_t(t)
        logp = flows.marginal_log_density(path, data, x[i : i + 1], tt)
        dpdt.append(torch.autograd.grad(torch.exp(logp).sum(), tt)[0])
    dpdt = torch.stack(dpdt)
    xg = x.clone().requires_grad_(True)
    v = flows.marginal_field(path, data, xg, t)
    if extra is not None:
        v = v + extra(xg)
    p = torch.exp(flows.marginal_log_density(path, data, xg, t))
    flux = p[:, None] * v
    d = x.shape[1]
    terms = torch.stack(
        [torch.autograd.grad(flux[:, j].sum(), xg, retain_graph=True)[0][:, j] for j in range(d)],
        dim=1,
    )
    # the product rule's two halves, p d_j v_j and v_j d_j p: the magnitudes rounding is relative to
    (grad_p,) = torch.autograd.grad(p.sum(), xg, retain_graph=True)
    dv = torch.stack(
        [torch.autograd.grad(v[:, j].sum(), xg, retain_graph=True)[0][:, j] for j in range(d)],
        dim=1,
    )
    halves = (p[:, None] * dv).abs().sum(1) + (v * grad_p).abs().sum(1)
    return dpdt.detach(), terms.detach(), (dpdt.abs() + halves).detach()


@claim("FLOW-10.chain")
@given(name=st.sampled_from(NAMES), t=floats(0.05, 0.9), x=floats(-3, 3))
def test_each_equality_of_theorem_1s_chain(flows, name, t, x):
    """A = B = C = D = E (chain_members) within the quadrature budget (module docstring): the
    Leibniz steps, the conditional continuity equation, and u_t's closed form (posterior mean)
    against the quadrature of u_t(x|x1) p_t(x|x1) q(x1); A - E is the marginal pair's residual."""
    path = flows.gaussian_path(**PATHS[name])
    members = chain_members(flows, path, x, t)
    scale = node_scale(path, x, t)
    for k, (left, right) in enumerate(zip(members, members[1:], strict=False)):
        label = "ABCDE"[k : k + 2]
        assert_close(
            left, right, ulps=QUADRATURE_ULPS, scale=scale, what=f"chain {label[0]} - {label[1]}"
        )
    residual = members[0] - members[4]  # A - E = d p_t/dt + div(p_t u_t)
    assert_close(residual, 0.0, ulps=QUADRATURE_ULPS, scale=scale,
                 what="continuity residual d p_t/dt + div(p_t u_t), 1-D")  # fmt: skip
    current().worst("1-D residual |dp/dt + div(p u)| / scale", abs(residual) / scale)
    current().summary = (
        "d/dt p_t = int d/dt p_t(x|x1) q = -int div(u p) q = -div int u p q = -div(p_t u_t) on a "
        "1-D mixture (OT, VP, VE); the 2-D marginal pair's continuity residual is rounding"
    )


def residual_and_budget(flows, path, data, x, t, extra=None):
    """|d p_t/dt + div(p_t v)| per point and its rounding budget: every term comes by autograd
    from closed forms (a few hundred float64 operations: Cholesky solves, a softmax, an exp), so
    its relative error is a few ulps times (8 + |log p_t(x)|) (the exp of a log carries the log's
    absolute error); the budget is 64 ulps of that times the magnitudes the sum is made of
    (|d p_t/dt| and both halves |p d_j v_j|, |v_j d_j p| of each product-rule term)."""
    dpdt, terms, magnitude = continuity_terms(flows, path, data, x, t, extra)
    residual = (dpdt + terms.sum(1)).abs()
    logp = flows.marginal_log_density(path, data, x, t).detach().abs()
    return residual, 64 * U * magnitude * (8 + logp)


@claim("FLOW-10.chain")
@given(name=st.sampled_from(NAMES), t=floats(0.05, 0.9), seed=seeds)
def test_marginal_pair_solves_the_continuity_equation_in_2d(flows, name, t, seed):
    """d p_t/dt + div(p_t u_t) = 0 at 4 random N(0, I) points, q = Q2 (3 components, one not
    isotropic), within the rounding budget of residual_and_budget."""
    x = torch.randn(4, 2, generator=seed.torch(), dtype=F64)
    residual, budget = residual_and_budget(flows, flows.gaussian_path(**PATHS[name]), Q2, x, t)
    assert_close(residual, torch.zeros_like(residual), ulps=0, abs_floor=budget,
                 what="continuity residual d p_t/dt + div(p_t u_t), 2-D")  # fmt: skip


def rotated_score(flows, path, data, t):
    """w(x) = J grad log p_t(x), J the rotation by 90 degrees: div(p_t w) = div(J grad p_t) = 0
    (the curl of a scalar), so u_t + w satisfies the continuity equation too."""

    def w(x):
        logp = flows.marginal_log_density(path, data, x, t)
        (g,) = torch.autograd.grad(logp.sum(), x, create_graph=True)
        return torch.stack([-g[:, 1], g[:, 0]], dim=1)

    return w


@claim(refutes="FLOW-10.must-take")
def test_another_field_generates_the_same_marginals(flows):
    """The proof concludes that u_t "must take" its form from -div(u_t p_t) = -div(J), which
    fixes u_t p_t only up to a field of zero divergence. Counterexample: u_t + J grad log p_t on
    q = Q2 solves the continuity equation (residual within the rounding budget of the 2-D check)
    at 8 N(0, I) points where |w| >= 0.1, for the minimal (path, t)."""
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)

    def unique(case):
        name, t = case
        path = flows.gaussian_path(**PATHS[name])
        w = rotated_score(flows, path, Q2, t)
        residual, budget = residual_and_budget(flows, path, Q2, x, t, extra=w)
        w_norm = w(x.clone().requires_grad_(True)).detach().norm(dim=1)
        solves = bool((residual <= budget).all())
        return not (solves and bool((w_norm >= 0.1).all()))

    name, t = refute(st.tuples(st.sampled_from(NAMES), st.sampled_from([0.5, 0.1, 0.9])), unique,
                     claim="FLOW-10.must-take", max_examples=20,
                     describe=lambda c: f"{c[0]} path, t = {c[1]}, q = 3-component 2-D mixture")  # fmt: skip
    path = flows.gaussian_path(**PATHS[name])
    w = rotated_score(flows, path, Q2, t)
    residual = float(residual_and_budget(flows, path, Q2, x, t, extra=w)[0].max())
    xg = x.clone().requires_grad_(True)
    w_norm = w(xg).detach().norm(dim=1)
    u_norm = flows.marginal_field(path, Q2, x, t).norm(dim=1)
    current().record(residual_with_w=residual, min_w=float(w_norm.min()),
                     max_w_over_u=float((w_norm / u_norm).max()))  # fmt: skip
    current().discrepancy(
        what="fields that generate p_t (the proof's 'u_t must take the stated form')",
        article="only u_t(x) = int u_t(x|x1) p_t(x|x1) q(x1) / p_t(x) dx1",
        computed=f"u_t + J grad log p_t too: residual {residual:.1e}, |w| >= {float(w_norm.min()):.2f}",
        case=f"{name} path, t = {t}, q = 3-component 2-D mixture",
    )
    current().summary = (
        f"{name}, t = {t}: u_t + J grad log p_t also solves the continuity equation (residual "
        f"{residual:.1e}, |w| up to {float((w_norm / u_norm).max()):.1f} |u_t|): not unique"
    )


# FLOW-11: Theorem 2's identities


def outer_grid(path, t):
    """x nodes covering p_t(x) of Q1: +-12 stds beyond the components, step min std / 4."""
    a, s = (float(v) for v in path.coefficients(t))
    stds = [math.sqrt(a * a * float(c[0, 0]) + s * s) for c in Q1.covariances]
    means = [a * float(m[0]) for m in Q1.means]
    lo, hi = min(means) - 12 * max(stds), max(means) + 12 * max(stds)
    h = min(stds) / 4
    n = int(math.ceil((hi - lo) / h)) + 1
    return torch.linspace(lo, hi, n, dtype=F64)[:, None], (hi - lo) / (n - 1)


def random_v(kind, seed, t):
    if kind == "polynomial":
        c = torch.randn(4, generator=seed.torch(), dtype=F64)
        return lambda x: c[0] + c[1] * x + c[2] * x**2 / 4 + c[3] * x**3 / 16
    torch.manual_seed(int(seed))
    net = matching.VelocityMLP(1, width=8)
    return lambda x: net(x, t)


def theorem_2_sums(flows, path, t, v):
    """(E_{p_t} |v|^2, E_{q, p_t(x|x1)} |v|^2, E_{p_t} <v, u_t>, E_{q, p_t(x|x1)} <v, u_t(x|x1)>,
    and each sum of |terms|) by quadrature: the same outer x grid on both sides, the inner x1
    integral on X1_NODES."""
    xo, h = outer_grid(path, t)
    vx = v(xo)[:, 0]  # (n_out,)
    p = torch.exp(flows.marginal_log_density(path, Q1, xo, t))
    u = flows.marginal_field(path, Q1, xo, t)[:, 0]
    x_b = xo[:, None, :].expand(-1, N_NODES, 1)
    x1_b = X1_NODES[None].expand(xo.shape[0], -1, 1)
    weights = h * Q1_WEIGHTS[None, :] * torch.exp(flows.conditional_log_density(path, x_b, x1_b, t))
    u_c = flows.path_conditional_field(path, x_b, x1_b, t)[..., 0]
    sq_marginal = (h * p * vx**2).sum()
    sq_conditional_terms = weights * (vx**2)[:, None]
    dot_marginal = (h * p * vx * u).sum()
    dot_conditional_terms = weights * vx[:, None] * u_c
    return (
        sq_marginal,
        sq_conditional_terms.sum(),
        dot_marginal,
        dot_conditional_terms.sum(),
        float(sq_conditional_terms.abs().sum()),
        float(dot_conditional_terms.abs().sum()),
        p,
        u,
        weights,
        u_c,
        h,
        xo,
    )


@claim("FLOW-11")
@given(name=st.sampled_from(NAMES), t=floats(0.05, 0.9), seed=seeds,
       kind=st.sampled_from(["polynomial", "mlp"]))  # fmt: skip
def test_theorem_2_identities_by_quadrature(flows, name, t, seed, kind):
    """E_{p_t}|v|^2 = E_{q, p_t(x|x1)}|v|^2 and E_{p_t}<v, u_t> = E_{q, p_t(x|x1)}<v, u_t(x|x1)> for a
    random cubic or a random MLP v(x, t), on q = Q1: the outer x sums agree term by term once
    the inner x1 quadrature reproduces p_t(x) and p_t(x) u_t(x), so the budget is the quadrature
    budget (module docstring) with N = inner + outer nodes."""
    path = flows.gaussian_path(**PATHS[name])
    with torch.no_grad():
        sums = theorem_2_sums(flows, path, t, random_v(kind, seed, t))
    n = N_NODES + sums[-1].shape[0]
    assert_close(
        float(sums[0]), float(sums[1]), ulps=4 * n, scale=sums[4], what="E|v|^2: p_t vs q p_t(x|x1)"
    )
    assert_close(
        float(sums[2]),
        float(sums[3]),
        ulps=4 * n,
        scale=sums[5],
        what="E<v, u>: p_t vs q p_t(x|x1)",
    )
    current().summary = (
        "both identities hold to rounding for random cubics and MLPs (OT, VP, VE); L_FM - L_CFM "
        "is the same for two random MLPs"
    )


@claim("FLOW-11")
@costly()
@given(name=st.sampled_from(NAMES), t=floats(0.05, 0.9), seed=seeds)
def test_fm_minus_cfm_loss_does_not_depend_on_the_model(flows, name, t, seed):
    """L_FM(theta) - L_CFM(theta) = E|u_t|^2 - E|u_t(x|x1)|^2 for every theta: equal, within the
    quadrature budget, for two random MLPs; hence grad L_FM = grad L_CFM."""
    path = flows.gaussian_path(**PATHS[name])
    diffs, scale = [], 0.0
    with torch.no_grad():
        for k in range(2):
            v = random_v("mlp", Seed(int(seed) + k), t)
            *_, p, u, weights, u_c, h, xo = theorem_2_sums(flows, path, t, v)
            vx = v(xo)[:, 0]
            fm = h * p * (vx - u) ** 2
            cfm = weights * (vx[:, None] - u_c) ** 2
            diffs.append(float(fm.sum() - cfm.sum()))
            scale += float(fm.sum() + cfm.sum())
    n = N_NODES + xo.shape[0]
    assert_close(
        diffs[0], diffs[1], ulps=8 * n, scale=scale, what="(L_FM - L_CFM)(theta1) - (theta2)"
    )
    current().record(L_FM_minus_L_CFM=diffs[0])


# FLOW-12: Theorem 3's proof

PATHS_12 = {**PATHS, "OT0": {"kind": "OT", "sigma_min": 0.0}}


def members_12(flows, path, y, x1, t):
    """(d/dt psi_t(x) at x = psi_t^{-1}(y) by autograd, psi'_t(psi_t^{-1}(y)), the middle member
    as written, the result sigma'/sigma (y - mu) + mu', and the magnitude for the budget)."""
    yy, xx1 = torch.tensor([y], dtype=F64), torch.tensor([x1], dtype=F64)
    x = flows.psi_inverse(path, yy, xx1, t)
    reference = d_dt(lambda tt: flows.psi(path, x, xx1, tt).sum(), t)
    first = float(flows.psi_dot(path, x, xx1, t)[0])
    middle = float(flows.middle_member_as_written(path, yy, xx1, t)[0])
    result = float(flows.path_conditional_field(path, yy, xx1, t)[0])
    a, s = (float(v) for v in path.coefficients(t))
    da, ds = (float(v) for v in path.derivatives(t))
    scale = abs(ds) * (abs(float(x[0])) + (abs(y) + abs(a * x1)) / s) + abs(da * x1)
    return reference, first, middle, result, scale


@claim("FLOW-12.result")
@given(
    name=st.sampled_from(sorted(PATHS_12)), t=floats(0.0, 0.99), y=floats(-3, 3), x1=floats(-3, 3)
)
def test_theorem_3_result_is_the_flows_velocity(flows, name, t, y, x1):
    """psi'_t(psi_t^{-1}(y)) and sigma'/sigma (y - mu_t) + mu'_t equal d/dt psi_t(x) at
    x = psi_t^{-1}(y) (autograd through psi_t: exact up to rounding, where a finite difference
    would add a truncation error), for the OT (sigma_min 0 and 0.01), VP and VE paths; each is a
    few operations on numbers of size <= scale: 64 ulps of it."""
    path = flows.gaussian_path(**PATHS_12[name])
    reference, first, _, result, scale = members_12(flows, path, y, x1, t)
    # the audit's finite difference, recorded beside the autograd reference (central, h = 1e-6;
    # one-sided at t < h): truncation h^2 |d^3 psi/dt^3| / 6 plus rounding ~ u |psi| / h
    h, yy, xx1 = 1e-6, torch.tensor([y], dtype=F64), torch.tensor([x1], dtype=F64)
    x = flows.psi_inverse(path, yy, xx1, t)
    lo, hi = max(t - h, 0.0), t + h
    fd = float((flows.psi(path, x, xx1, hi) - flows.psi(path, x, xx1, lo))[0]) / (hi - lo)
    current().worst(
        "|finite difference - result| / (1 + |result|)", abs(fd - result) / (1 + abs(result))
    )
    # abs_floor 1e-300: results in the subnormal range, where the relative budget underflows
    assert_close(first, reference, ulps=64, scale=scale, abs_floor=1e-300,
                 what="psi'_t(psi_t^-1(y)) - d psi_t/dt")  # fmt: skip
    assert_close(result, reference, ulps=64, scale=scale, abs_floor=1e-300,
                 what="s'/s (y - mu) + mu' - d psi_t/dt")  # fmt: skip
    current().summary = "psi'_t(psi_t^-1(y)) = s'/s (y - mu_t) + mu'_t = d psi_t/dt (OT, VP, VE)"


@claim(refutes="FLOW-12.middle-step")
def test_the_middle_member_is_evaluated_at_another_point(flows):
    """psi'_t(sigma'_t y + mu'_t) = sigma'_t (sigma'_t y + mu'_t) + mu'_t: psi'_t applied to
    psi'_t's own value at y, not to psi_t^{-1}(y). Minimal (path, t, y, x1) where it differs from
    the result by more than the 64-ulp budget."""

    def equal(case):
        name, t, y, x1 = case
        _, _, middle, result, scale = members_12(
            flows, flows.gaussian_path(**PATHS_12[name]), y, x1, t
        )
        return abs(middle - result) <= 64 * U * scale

    cases = st.tuples(st.sampled_from(sorted(PATHS_12)), st.sampled_from([0.0, 0.5]),
                      st.sampled_from([0.0, 1.0, -1.0]), st.sampled_from([0.0, 1.0]))  # fmt: skip
    name, t, y, x1 = refute(cases, equal, claim="FLOW-12.middle-step",
                            describe=lambda c: f"{c[0]} path, t = {c[1]}, y = {c[2]}, x1 = {c[3]}")  # fmt: skip
    reference, first, middle, result, _ = members_12(
        flows, flows.gaussian_path(**PATHS_12[name]), y, x1, t
    )
    current().record(middle_member=middle, result=result, d_psi_dt=reference)
    current().discrepancy(
        what="u_t(y|x1) by the middle member psi'_t(sigma'_t y + mu'_t)",
        article=middle,
        computed=result,
        case=f"{name} path, t = {t}, y = {y}, x1 = {x1}",
    )
    current().summary = (
        f"{name}, t = {t}, y = {y}, x1 = {x1}: the middle member gives {middle:g}, the result and "
        f"d psi_t/dt give {result:g}"
    )


# FLOW-13: the push-forward without |det|


def std_normal_log_density(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


SMOOTH_1D = oracle.isotropic_mixture(
    [[-1.0], [1.0]], 0.5, weights=torch.tensor([0.3, 0.7], dtype=F64)
)
SMOOTH_2D = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.0]], 0.5)


def flow_inverse(flows, data, n):
    """phi_1^{-1}: the marginal OT flow (sigma_min = 0.01) of `data` integrated back from t = 1
    to 0 by n Heun steps (flows.ode_solve)."""
    path = flows.gaussian_path(**PATHS["OT"])
    return lambda x: flows.ode_solve(
        lambda z, t: flows.marginal_field(path, data, z, t), x, 1.0, 0.0, n
    )


def grid_2d(lo, hi, n):
    g = torch.linspace(lo, hi, n, dtype=F64)
    return torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2), (hi - lo) / (n - 1)


@claim("FLOW-13.ode-flow")
def test_push_forward_of_an_ode_flow_is_a_density(flows):
    """For the (Heun-discretised) flow map of the marginal OT ODE of a two-component 1-D mixture
    (grid of 1201 points) and a three-component 2-D mixture (121^2 points), components of std 0.5,
    p_0(phi^{-1}(x)) det[d phi^{-1}/dx] is >= 0 at every grid point and
    integrates to 1. Budget 1e-6: the integrand is smooth on scales >= 0.5 (the pushed components'
    stds) and the grid step is <= 0.1, so the aliasing error 2 exp(-2 pi^2 (0.5/0.1)^2) < 1e-200
    (exp(-2 pi^2 w^2 / h^2) for a Gaussian-like shape, which the pushed mixture is up to the
    discretisation's smooth change); truncation at +-6 (> 9 stds) < 1e-18."""
    x1, h1 = torch.linspace(-6, 6, 1201, dtype=F64)[:, None], 0.01
    f1 = flows.push_forward_as_written(
        std_normal_log_density, flow_inverse(flows, SMOOTH_1D, 20), x1
    )
    x2, h2 = grid_2d(-6, 6, 121)
    f2 = flows.push_forward_as_written(
        std_normal_log_density, flow_inverse(flows, SMOOTH_2D, 10), x2
    )
    integrals = (float(f1.sum() * h1), float(f2.sum() * h2**2))
    current().record(integral_1d=integrals[0], integral_2d=integrals[1],
                     min_1d=float(f1.min()), min_2d=float(f2.min()))  # fmt: skip
    assert float(f1.min()) >= 0 and float(f2.min()) >= 0, (float(f1.min()), float(f2.min()))
    assert_close(
        np.array(integrals), np.ones(2), ulps=0, abs_floor=1e-6, what="integral of the formula"
    )
    current().summary = (
        f"ODE flow maps: the formula is >= 0 and integrates to {integrals[0]:.9f} (1-D), "
        f"{integrals[1]:.9f} (2-D)"
    )


@claim(refutes="FLOW-13.orientation-reversing")
def test_push_forward_without_abs_is_negative_for_orientation_reversing_maps(flows):
    """A reflection of N(0, I) and the 2-D affine coupling (x1, c x2 + sin x1) with c < 0: the
    formula is negative and integrates to -1 (the same 1e-6 budget, on a 201^2 grid of [-10, 10]^2:
    pushed stds in [0.5, 1.5], truncation beyond 6.6 stds < 1e-10). Minimal map."""
    x, h = grid_2d(-10, 10, 201)

    def formula(case):
        kind, c = case
        inverse = pushforward.reflection if kind == "reflection" else (
            lambda y: pushforward.coupling_inverse(y, c))  # fmt: skip
        f = flows.push_forward_as_written(std_normal_log_density, inverse, x)
        return float(f.min()), float(f.sum() * h**2)

    def is_density(case):
        low, integral = formula(case)
        return low >= 0 and abs(integral - 1) <= 1e-6

    kind, c = refute(st.tuples(st.sampled_from(["reflection", "coupling"]), st.sampled_from([-0.5, -1.5])),
                     is_density, claim="FLOW-13.orientation-reversing", max_examples=10,
                     describe=lambda k: k[0] if k[0] == "reflection" else f"coupling, scale {k[1]}")  # fmt: skip
    low, integral = formula((kind, c))
    _, coupling_integral = formula(("coupling", -0.5))
    current().record(integral=integral, minimum=low, coupling_integral=coupling_integral)
    current().discrepancy(
        what="integral of p_0(phi^-1(x)) det[d phi^-1/dx] (no |.|) over x",
        article=1,
        computed=round(integral, 9),
        case=f"{kind} of N(0, I) in 2-D" if kind == "reflection" else f"coupling with scale {c}",
    )
    current().summary = (
        f"{kind}: the formula without |det| reaches {low:.3f} and integrates to {integral:.6f} "
        f"(coupling with scale -0.5: {coupling_integral:.6f})"
    )


# FLOW-14: the three Gaussian paths


def endpoints(path, x1):
    """(mu_0, sigma_0, mu_1, sigma_1) of a path for a data point x1."""
    a0, s0 = (float(v) for v in path.coefficients(0.0))
    a1, s1 = (float(v) for v in path.coefficients(1.0))
    return a0 * x1, s0, a1 * x1, s1


@claim("FLOW-14.ot")
@given(sigma_min=floats(0.0, 0.5), t=floats(0.0, 1.0), x=floats(-3, 3), x1=floats(-3, 3))
def test_ot_path_meets_the_requirements(flows, sigma_min, t, x, x1):
    """mu_0 = 0, sigma_0 = 1, mu_1 = x1, sigma_1 = sigma_min (1 - (1 - sigma_min) rounds once:
    2 ulps), and the field by Theorem 3 is (x1 - (1 - sigma_min) x) / (1 - (1 - sigma_min) t)
    (a few operations on numbers of size (|x| + |x1|)/sigma_t; both sigma_t = 1 - (1 - s) t as
    written and the module's (1 - t) + s t carry an absolute error <= 3 u, a relative 3 u/sigma_t,
    large when t -> 1 with a small sigma_min: 16 ulps of (|x| + |x1|)/sigma_t (1 + 1/sigma_t))."""
    path = flows.gaussian_path("OT", sigma_min=sigma_min)
    mu0, s0, mu1, s1 = endpoints(path, x1)
    assert_close(np.array([mu0, s0, mu1, s1]), np.array([0.0, 1.0, x1, sigma_min]), ulps=2,
                 scale=np.array([1.0, 1.0, abs(x1), 1.0]), what="OT (mu_0, sigma_0, mu_1, sigma_1)")  # fmt: skip
    sigma = 1 - (1 - sigma_min) * t
    if sigma == 0:  # t = 1 with sigma_min = 0 (or below rounding): the stated field is 0/0
        return
    field = float(flows.path_conditional_field(path, torch.tensor([x], dtype=F64),
                                             torch.tensor([x1], dtype=F64), t)[0])  # fmt: skip
    assert_close(field, (x1 - (1 - sigma_min) * x) / sigma, ulps=16,
                 scale=(abs(x) + abs(x1)) / sigma * (1 + 1 / sigma), abs_floor=1e-300,  # subnormal
                 what="OT field - (x1 - (1 - s) x)/sigma_t")  # fmt: skip
    current().summary = "OT: (mu, sigma) = (0, 1) at t = 0, (x1, sigma_min) at 1; field as stated"


def meets_requirements(flows, name, x1, sigma_min):
    mu0, s0, mu1, s1 = endpoints(flows.gaussian_path(**PATHS[name]), x1)
    tol = 64 * U * (1 + abs(x1))
    return (
        abs(mu0) <= tol
        and abs(s0 - 1) <= tol
        and abs(mu1 - x1) <= tol
        and abs(s1 - sigma_min) <= tol
    )


def refute_requirements(flows, name):
    """The minimal x1 on which the path misses the requirements, read in their most lenient form
    sigma_min = 0 (VE and VP end at sigma_1 = 0, so only sigma_min = 0 could be met at t = 1)."""
    x1 = refute(st.sampled_from([0.0, 1.0]), lambda x1: meets_requirements(flows, name, x1, 0.0),
                claim=f"FLOW-14.{name.lower()}", describe=lambda x1: f"x1 = {x1}, sigma_min = 0")  # fmt: skip
    sigma_min = 0.0
    mu0, s0, mu1, s1 = endpoints(flows.gaussian_path(**PATHS[name]), 1.0)
    current().record(mu_0_for_x1_1=mu0, sigma_0=s0, mu_1_for_x1_1=mu1, sigma_1=s1)
    case = f"{name} path of SDE-02's defaults, x1 = 1"
    current().discrepancy(
        what=f"{name}: mean of p_0(x|x1) (required 0)", article=0, computed=mu0, case=case
    )
    current().discrepancy(
        what=f"{name}: std of p_0(x|x1) (required 1)", article=1, computed=s0, case=case
    )
    current().discrepancy(what=f"{name}: std of p_1(x|x1) (required sigma_min > 0)", article="sigma_min",
                          computed=s1, case=case)  # fmt: skip
    return x1, sigma_min, (mu0, s0, mu1, s1)


@claim(refutes="FLOW-14.ve")
def test_ve_path_misses_the_requirements(flows):
    """VE (SDE-02's VE kernel, sigma in [0.01, 50]): p_0(x|x1) = N(x1, sigma_1^2), sigma_1 ~ 50,
    not N(0, 1); sigma at t = 1 is 0, not sigma_min. Minimal (x1, sigma_min)."""
    x1, sigma_min, (mu0, s0, mu1, s1) = refute_requirements(flows, "VE")
    current().summary = (
        f"x1 = {x1}, sigma_min = {sigma_min} already fails: VE's p_0(x|x1) = N(x1, {s0:.4g}^2); "
        f"sigma_1 = {s1:g}"
    )


@claim(refutes="FLOW-14.vp")
def test_vp_path_misses_the_requirements(flows):
    """VP (SDE-02's beta in [0.1, 20]): mu_0 = alpha_1 x1 with alpha_1 = exp(-B(1)/2) > 0 and
    sigma_0 = sqrt(1 - alpha_1^2) < 1: only approximately N(0, I); sigma_1 = 0, not sigma_min."""
    x1, sigma_min, (mu0, s0, mu1, s1) = refute_requirements(flows, "VP")
    current().summary = (
        f"x1 = {x1}, sigma_min = {sigma_min} already fails: alpha_1 = {mu0:.3e}, "
        f"sigma_0 = 1 - {1 - s0:.2e}, sigma_1 = {s1:g}"
    )


@claim("FLOW-14.vp-is-ddpm")
@given(T=st.integers(50, 20000), frac=floats(0.0, 1.0))
def test_vp_path_is_ddpm_under_reversed_time(flows, diffusion, T, frac):
    """DDPM with beta_i = beta(i/T)/T: abar_n = prod_{i<=n}(1 - beta_i) (diffusion.alphas_cumprod)
    against the VP path's alpha_{1-t}^2 at t = 1 - n/T. Exact bounds: the right Riemann sum of the
    linear beta exceeds B(s) by (beta(s) - b0)/(2T), and x <= -log(1 - x) <= x + x^2/(2(1 - x)), so
    log abar_n + B(s) + (beta(s) - b0)/(2T) lies in [-sum x_i^2/(2(1 - max x)), -sum x_i^2/2]
    (both O(1/T)); rounding of n logs: 4 n ulps of sum|log(1 - x_i)|. Also (alpha, sigma) of the
    path at t equals the VP SDE's kernel (c, s) at s = 1 - t (SDE-02)."""
    n = max(1, round(frac * T))
    path = flows.gaussian_path(**PATHS["VP"])
    vp = path.sde
    i = np.arange(1, T + 1)
    betas = (vp.b0 + i / T * (vp.b1 - vp.b0)) / T  # beta(i/T)/T, the linear beta of sde.VP
    abar = diffusion.alphas_cumprod(betas)[n - 1].item()
    s = n / T
    a_t, sig_t = (float(v) for v in path.coefficients(1 - s))
    gap = math.log(abar) - math.log(a_t**2)  # log abar + B(s)
    shift = (vp.beta(s) - vp.b0) / (2 * T)
    x = betas[:n]
    lo = -shift - (x**2).sum() / (2 * (1 - x.max()))
    hi = -shift - (x**2).sum() / 2
    rounding = 4 * n * U * (-np.log1p(-x)).sum() + 8 * U * (1 + vp.integral(s))
    assert lo - rounding <= gap <= hi + rounding, (gap, lo, hi)
    current().worst("T |log abar - log alpha^2|", T * abs(gap))
    c, s2 = vp.kernel(s)
    assert_close(np.array([a_t, sig_t]), np.array([c, math.sqrt(s2)]), ulps=32,
                 scale=np.array([1.0, 1.0 / max(math.sqrt(s2), 1e-300)]),
                 what="VP path (alpha, sigma) - VP SDE kernel (c, s)")  # fmt: skip
    current().summary = (
        "DDPM's abar (beta_i = beta(i/T)/T) lies within exact O(1/T) bounds of alpha_{1-t}^2; the "
        "VP path is the VP SDE's kernel at s = 1 - t"
    )


# FLOW-15: "the OT path is a straight line"


@claim("FLOW-15.conditional-straight")
@given(seed=seeds, sigma_min=floats(0.0, 0.5), t=floats(0.0, 0.99))
def test_conditional_ot_trajectories_are_straight(flows, seed, sigma_min, t):
    """psi_t(x0) = (1 - (1 - s) t) x0 + t x1 has zero second difference, its velocity is the
    constant x1 - (1 - s) x0, and one Euler step of u_t(x|x1) from t = 0 lands on psi_1(x0)
    (a few roundings of numbers of size |x0| + |x1|, divided by sigma_t for the field)."""
    gen = seed.torch()
    x0, x1 = torch.randn(2, 6, 2, generator=gen, dtype=F64)
    path = flows.gaussian_path("OT", sigma_min=sigma_min)
    scale = (x0.abs() + x1.abs()).numpy()
    one_step = flows.euler_t(lambda x, tt: flows.path_conditional_field(path, x, x1, tt), x0, 1)
    assert_close(one_step.numpy(), flows.psi(path, x0, x1, 1.0).numpy(), ulps=8, scale=scale,
                 what="one Euler step - psi_1(x0)")  # fmt: skip
    second = (
        flows.psi(path, x0, x1, 0.0)
        - 2 * flows.psi(path, x0, x1, 0.5)
        + flows.psi(path, x0, x1, 1.0)
    )
    assert_close(
        second.numpy(),
        np.zeros_like(scale),
        ulps=16,
        scale=scale,
        what="second difference of psi_t(x0)",
    )
    sigma = 1 - (1 - sigma_min) * t
    field = flows.path_conditional_field(path, flows.psi(path, x0, x1, t), x1, t)
    assert_close(field.numpy(), (x1 - (1 - sigma_min) * x0).numpy(), ulps=32, scale=scale / sigma,
                 what="u_t(psi_t(x0)|x1) - (x1 - (1 - s) x0)")  # fmt: skip
    current().summary = "psi_t(x0) is straight: constant velocity, one Euler step exact"


TWO_POINTS = oracle.isotropic_mixture([[-1.0], [1.0]], 0.05)  # q: two near-point masses in 1-D


def marginal_velocity(flows, data):
    path = flows.gaussian_path(**PATHS["OT"])
    return lambda x, t: flows.marginal_field(path, data, x, t)


@claim(refutes="FLOW-15.marginal-straight")
def test_marginal_ot_flow_is_curved_and_euler_is_not_exact(flows):
    """On the two-point q the marginal field of the OT path bends its trajectories: N Euler steps
    from x0 miss the endpoint (reference: 500 Heun steps, within 1e-4 of 1000 Heun steps, so its
    own error is ~ 1/3 of that) by more than 1e-3. Minimal (N, x0). The field is not straight
    although every conditional path is."""
    x0s = torch.tensor([[0.0], [0.5], [1.0], [-1.5]], dtype=F64)
    v = marginal_velocity(flows, TWO_POINTS)
    reference = flows.ode_solve(v, x0s, 0.0, 1.0, 500)
    finer = flows.ode_solve(v, x0s, 0.0, 1.0, 1000)
    assert float((reference - finer).abs().max()) <= 1e-4, "the reference has not converged"
    ref = {float(x): float(r) for x, r in zip(x0s[:, 0], reference[:, 0], strict=True)}

    def euler_error(N, x0):
        out = flows.ode_solve(v, torch.tensor([[x0]], dtype=F64), 0.0, 1.0, N, method="euler")
        return abs(float(out[0, 0]) - ref[x0])

    N, x0 = refute(st.tuples(st.sampled_from([1, 2, 4, 8]), st.sampled_from(sorted(ref, key=abs))),
                   lambda c: euler_error(*c) <= 1e-3, claim="FLOW-15.marginal-straight", max_examples=20,
                   describe=lambda c: f"N = {c[0]} Euler steps from x0 = {c[1]}")  # fmt: skip
    errors = {n: euler_error(n, x0) for n in (1, 2, 4, 8, 16, 32, 64, 128, 256)}
    # curvature |d^2 x/dt^2| = |du/dt + u du/dx| along the reference trajectory from x0
    ts = torch.linspace(0.0, 0.98, 50, dtype=F64).tolist()
    x, curvature, path = torch.tensor([[x0]], dtype=F64), 0.0, flows.gaussian_path(**PATHS["OT"])
    for t, t_next in zip(ts, ts[1:], strict=False):
        tt, xx = scalar_t(t), x.clone().requires_grad_(True)
        u = flows.marginal_field(path, TWO_POINTS, xx, tt)
        du_dt, du_dx = torch.autograd.grad(u.sum(), (tt, xx))
        curvature = max(curvature, abs(float(du_dt + u.detach()[0, 0] * du_dx[0, 0])))
        x = flows.ode_solve(v, x, t, t_next, 10)
    current().record(max_curvature=curvature, **{f"euler_error_N{n}": e for n, e in errors.items()})
    current().discrepancy(
        what=f"endpoint error of {N} Euler step(s) of the marginal OT flow (straight lines: 0)",
        article=0,
        computed=errors[N],
        case=f"q = (delta_-1 + delta_1)/2 (std 0.05), sigma_min = 0.01, x0 = {x0}",
    )
    current().summary = (
        f"x0 = {x0}: max curvature {curvature:.2f}; Euler endpoint error "
        + ", ".join(f"N={n}: {e:.1e}" for n, e in errors.items())
    )
    evidence.figure(
        "flow15_trajectories", lambda fig: draw_trajectories(flows, fig, errors, x0), size=(11, 4)
    )


def draw_trajectories(flows, fig, errors, x0_case):
    path, v = flows.gaussian_path(**PATHS["OT"]), marginal_velocity(flows, TWO_POINTS)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    fig.suptitle("FLOW-15: OT path, two-point q in 1-D (sigma_min = 0.01)")
    ts = np.linspace(0, 1, 101)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(12, 1, generator=gen, dtype=F64)
    x1 = torch.where(torch.rand(12, 1, generator=gen, dtype=F64) < 0.5, -1.0, 1.0).to(F64)
    for i in range(12):
        ax1.plot(ts, [float(flows.psi(path, x0[i], x1[i], t)[0]) for t in ts], lw=0.8)
    ax1.set(title="conditional: straight", xlabel="t", ylabel="x")
    grid = torch.linspace(-2.5, 2.5, 15, dtype=F64)[:, None]
    xs, x = [grid[:, 0].numpy()], grid
    for t, t_next in zip(ts, ts[1:], strict=False):
        x = flows.ode_solve(v, x, float(t), float(t_next), 2)
        xs.append(x[:, 0].numpy())
    ax2.plot(ts, np.array(xs), lw=0.8)
    ax2.set(title="marginal: curved", xlabel="t")
    ax3.loglog(list(errors), list(errors.values()), "o-")
    ax3.set(title=f"Euler error from x0 = {x0_case}", xlabel="Euler steps N")


def mixture_quantile(data, sigma_min, probabilities):
    """The quantile function of p_1 = q * N(0, sigma_min^2) (1-D mixture) by bisection (200
    halvings of [-20, 20]: exact to rounding)."""
    means = data.means[:, 0]
    stds = torch.sqrt(data.covariances[:, 0, 0] + sigma_min**2)
    lo = torch.full_like(probabilities, -20.0)
    hi = torch.full_like(probabilities, 20.0)
    for _ in range(200):
        mid = (lo + hi) / 2
        cdf = (data.weights * torch.special.ndtr((mid[:, None] - means) / stds)).sum(1)
        below = cdf < probabilities
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


@claim("FLOW-15.endpoint-ot-1d")
def test_1d_endpoint_map_is_the_monotone_rearrangement(flows):
    """1-D, q = Q1, OT path with sigma_min = 0.01: the endpoint map x0 -> x_1 of the marginal ODE
    is strictly increasing on sorted inputs and equals the quantile map F_{p_1}^{-1}(Phi(x0))
    (p_1 = q * N(0, sigma_min^2), the law the ODE transports N(0, 1) to), the optimal monotone
    rearrangement. Budget 1e-4: Heun with 400 steps, within 1e-4 of 200 steps (order 2, so its own
    error is ~ 1/3 of the difference)."""
    x0 = torch.linspace(-3, 3, 41, dtype=F64)[:, None]
    v = marginal_velocity(flows, Q1)
    coarse = flows.ode_solve(v, x0, 0.0, 1.0, 200)
    endpoint = flows.ode_solve(v, x0, 0.0, 1.0, 400)
    assert float((coarse - endpoint).abs().max()) <= 1e-4, "the ODE solution has not converged"
    steps = endpoint[1:, 0] - endpoint[:-1, 0]
    assert bool((steps > 0).all()), f"the endpoint map is not increasing: {steps.min():.3e}"
    quantile = mixture_quantile(Q1, 0.01, torch.special.ndtr(x0[:, 0]))
    assert_close(endpoint[:, 0].numpy(), quantile.numpy(), ulps=0, abs_floor=1e-4,
                 what="endpoint map - quantile map")  # fmt: skip
    current().record(max_gap_to_quantile_map=float((endpoint[:, 0] - quantile).abs().max()))
    current().summary = (
        "1-D endpoint map increasing, within "
        f"{float((endpoint[:, 0] - quantile).abs().max()):.1e} of the quantile map"
    )


THREE_POINTS = oracle.isotropic_mixture(
    [[-1.0, 0.0], [1.0, 0.3], [0.2, 1.5]], 0.05, weights=torch.tensor([0.5, 0.3, 0.2], dtype=F64)
)


@claim(refutes="FLOW-15.endpoint-ot-2d")
def test_2d_endpoint_map_is_not_cyclically_monotone(flows):
    """2-D, q = three near-points with weights 0.5, 0.3, 0.2, OT path with sigma_min = 0.01: an
    optimal map is cyclically monotone, in particular <z_i - z_j, T(z_i) - T(z_j)> >= 0 for every
    pair (else swapping the two endpoints lowers the total squared cost). The marginal flow's
    endpoint map T (Heun, 200 steps; the error bound per point is |T_100 - T_200|, ~3x the Richardson
    estimate) breaks it: the closest pair of a 41 x 41 grid on [-2.5, 2.5]^2 whose inner product is
    below -|z_i - z_j| (err_i + err_j)."""
    z, _ = grid_2d(-2.5, 2.5, 41)
    v = marginal_velocity(flows, THREE_POINTS)
    coarse = flows.ode_solve(v, z, 0.0, 1.0, 100)
    T = flows.ode_solve(v, z, 0.0, 1.0, 200)
    err = (coarse - T).norm(dim=1)
    dz, dT = z[:, None] - z[None], T[:, None] - T[None]
    margin = dz.norm(dim=2) * (err[:, None] + err[None])
    broken = ((dz * dT).sum(2) < -margin).nonzero().tolist()  # pairs (i, j), i and j both ways
    if not broken:
        raise evidence.ClaimNotRefuted("FLOW-15.endpoint-ot-2d: every pair of the grid is monotone")
    # the minimal case: the closest such pair (then the first in grid order)
    i, j = min(broken, key=lambda p: (float(dz[p[0], p[1]].norm()), p))
    current().counterexample = f"z_i = {z[i].tolist()}, z_j = {z[j].tolist()}"
    current().record(broken_pairs=len(broken) // 2, grid_pairs=z.shape[0] * (z.shape[0] - 1) // 2)
    # the exact discrete plan on 400 N(0, I) samples and their endpoints (scipy's assignment)
    from scipy.optimize import linear_sum_assignment

    zs = torch.randn(400, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    Ts = flows.ode_solve(v, zs, 0.0, 1.0, 200)
    C = ((zs[:, None] - Ts[None]) ** 2).sum(2).numpy()
    rows, cols = linear_sum_assignment(C)
    flow_cost, optimal_cost = float(C.trace()) / 400, float(C[rows, cols].sum()) / 400
    current().record(flow_cost_per_sample=flow_cost, optimal_cost_per_sample=optimal_cost,
                     samples_moved_by_the_optimal_plan=int((cols != rows).sum()))  # fmt: skip
    cost = float(((z[i] - T[i]) ** 2).sum() + ((z[j] - T[j]) ** 2).sum())
    swapped = float(((z[i] - T[j]) ** 2).sum() + ((z[j] - T[i]) ** 2).sum())
    current().record(inner_product=float((z[i] - z[j]) @ (T[i] - T[j])), pair_cost=cost,
                     swapped_cost=swapped, T_i=T[i].tolist(), T_j=T[j].tolist())  # fmt: skip
    current().discrepancy(
        what="squared transport cost of two inputs' endpoints under the marginal flow vs swapped",
        article="optimal (no swap lowers it)",
        computed=f"{cost:.4f} vs {swapped:.4f} swapped",
        case=f"z_i = {z[i].tolist()}, z_j = {z[j].tolist()}; q = 3 points, weights 0.5/0.3/0.2",
    )
    current().summary = (
        f"z_i = {z[i].tolist()} -> {np.round(T[i].numpy(), 3).tolist()}, z_j = {z[j].tolist()} -> "
        f"{np.round(T[j].numpy(), 3).tolist()}: swapping lowers the cost from {cost:.3f} to {swapped:.3f}; "
        f"on 400 samples the flow's coupling costs {flow_cost:.4f}/sample, the optimal plan {optimal_cost:.4f}"
    )
