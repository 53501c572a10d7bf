"""FLOW-05..FLOW-08: flow matching, Gaussian conditional paths, rectified flow and its two time
conventions, the timestep shift (impl/flows/matching.py, through the family `flows`). Exact fields
of Gaussian-mixture data stand in for a trained network."""

from fractions import Fraction

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st
from torch.func import functional_call, jvp

from impl.diffusion import oracle
from impl.flows import matching
from properties import stats
from properties.catalogue import claim
from properties.evidence import current
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53
DATA_1D = oracle.isotropic_mixture(
    [[-1.5], [1.0]], 0.5, weights=torch.tensor([0.4, 0.6], dtype=F64)
)


@claim("FLOW-05")
@given(t=floats(0.02, 0.98), x=floats(-3, 3))
def test_marginal_field_is_the_posterior_weighted_conditional_field(flows, t, x):
    """u_t(x) = int u_t(x|x1) p_t(x|x1) q(x1) dx1 / int p_t(x|x1) q(x1) dx1, by quadrature over x1 on
    [-8, 8] (16001 points; the integrands are Gaussians of width >= 0.02, so the Riemann sums are
    exact to far below 1e-9), against the closed form through Tweedie's formula."""
    x1 = torch.linspace(-8, 8, 16001, dtype=F64)[:, None]
    sigma = 1 - t
    log_w = DATA_1D.log_density(x1, 1.0, 0.0) - 0.5 * ((x - t * x1[:, 0]) / sigma) ** 2
    w = torch.softmax(log_w, 0)
    u_cond = flows.ot_conditional_field(torch.tensor(x, dtype=F64), x1[:, 0], t)
    quadrature = float((w * u_cond).sum())
    closed = float(flows.ot_marginal_field(DATA_1D, torch.tensor([[x]], dtype=F64), t)[0, 0])
    assert_close(
        closed,
        quadrature,
        ulps=0,
        abs_floor=1e-9 * (1 + abs(quadrature)),
        what="u_t(x) - posterior average",
    )


def two_models(seed):
    models = []
    for k in range(2):
        torch.manual_seed(int(seed) + k)
        models.append(matching.VelocityMLP(2, width=16))
    return models


def fm_cfm_samples(flows, seed, n, with_marginal=True):
    data = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.5]], 0.4)
    gen = seed.torch()
    x1, _ = data.sample(n, gen)
    x0 = torch.randn(n, 2, generator=gen, dtype=F64)
    t = 0.05 + 0.9 * torch.rand(n, 1, generator=gen, dtype=F64)
    x = flows.ot_path(x0, x1, t)
    u_c = flows.ot_conditional_field(x, x1, t)
    u_m = torch.stack(
        [flows.ot_marginal_field(data, x[i : i + 1], float(t[i]))[0] for i in range(n)]
    )
    return x, t, u_c, u_m


@claim("FLOW-05")
@statistical()
@given(seed=seeds)
def test_fm_and_cfm_losses_differ_by_a_model_free_constant_and_share_gradients(flows, seed):
    """On the same samples, L_FM - L_CFM = mean(|u_m|^2 - |u_c|^2) - 2 mean(v . (u_m - u_c)); the
    model enters only through mean(v . (u_m - u_c)), whose expectation is 0 since E[u_c | x] = u_m.
    So for two models the per-sample differences (v_1 - v_2) . (u_m - u_c), and a directional
    derivative of the per-sample gradient difference, have mean 0 (CLT tests, alpha = 1e-7)."""
    x, t, u_c, u_m = fm_cfm_samples(flows, seed, 3000)
    v1, v2 = two_models(seed)
    with torch.no_grad():
        d = ((v1.net(torch.cat([x, t], 1)) - v2.net(torch.cat([x, t], 1))) * (u_m - u_c)).sum(1)
    stats.mean_equals(d.numpy(), 0.0, what="(v1 - v2) . (u_m - u_c)")
    params = dict(v1.net.named_parameters())
    direction = {
        k: torch.randn(p.shape, generator=seed.torch(), dtype=F64) for k, p in params.items()
    }
    _, dv = jvp(
        lambda p: functional_call(v1.net, p, (torch.cat([x, t], 1),)), (params,), (direction,)
    )
    g = -2 * (dv.detach() * (u_m - u_c)).sum(
        1
    )  # directional derivative of |v - u_m|^2 - |v - u_c|^2
    stats.mean_equals(g.numpy(), 0.0, what="gradient of L_FM - L_CFM along a random direction")
    current().summary = (
        "L_FM - L_CFM does not depend on the model and the two gradients agree (statistically)"
    )


@claim("FLOW-05")
def test_negative_control_prior_weighted_average_is_not_the_marginal_field(flows):
    """Averaging the conditional field over x1 ~ q without conditioning on x (prior weights) is the
    tempting wrong marginal: the quadrature check above rejects it."""
    t, x = 0.5, 0.3
    x1 = torch.linspace(-8, 8, 16001, dtype=F64)[:, None]
    sigma = 1 - t
    log_w = DATA_1D.log_density(x1, 1.0, 0.0) - 0.5 * ((x - t * x1[:, 0]) / sigma) ** 2
    u_cond = flows.ot_conditional_field(torch.tensor(x, dtype=F64), x1[:, 0], t)
    posterior = float((torch.softmax(log_w, 0) * u_cond).sum())
    prior = float((torch.softmax(DATA_1D.log_density(x1, 1.0, 0.0), 0) * u_cond).sum())
    assert abs(prior - posterior) > 0.1
    current().record(posterior_weighted=posterior, prior_weighted=prior)


@claim("FLOW-06")
@given(seed=seeds, t=floats(0.0, 0.99), sigma_min=st.just(0.0) | floats(0.0, 0.5))
def test_gaussian_path_field_and_straight_ot_trajectories(flows, seed, t, sigma_min):
    """d psi_t(x0)/dt (autograd) equals u_t(psi_t(x0) | x1); for the OT path it is the constant
    x1 - (1 - sigma_min) x0."""
    gen = seed.torch()
    x0, x1 = torch.randn(2, 8, 3, generator=gen, dtype=F64)
    tt = torch.tensor(t, dtype=F64, requires_grad=True)
    given_sigma_min = {"sigma_min": sigma_min} if sigma_min else {}  # 0: the default path
    psi = flows.ot_path(x0, x1, tt, **given_sigma_min)
    dpsi = torch.stack(
        [
            torch.autograd.grad(psi.flatten()[i], tt, retain_graph=True)[0]
            for i in range(psi.numel())
        ]
    )
    field = flows.ot_conditional_field(psi.detach(), x1, t, **given_sigma_min).flatten()
    constant = (x1 - (1 - sigma_min) * x0).flatten()
    scale = (x0.abs() + x1.abs()).flatten() / (1 - (1 - sigma_min) * t)
    assert_close(
        field, constant, ulps=16, scale=scale, what="u_t(psi_t(x0)|x1) - (x1 - (1 - sigma_min) x0)"
    )
    assert_close(dpsi, constant, ulps=8, scale=scale, what="d psi_t/dt - constant velocity")
    # a VP-like Gaussian path: mu_t = a_t x1, sigma_t = sqrt(1 - a_t^2), a_t = sin(pi t / 2)
    a = torch.sin(torch.pi * tt / 2)
    psi_vp = (1 - a**2) ** 0.5 * x0 + a * x1
    d_vp = torch.stack(
        [
            torch.autograd.grad(psi_vp.flatten()[i], tt, retain_graph=True)[0]
            for i in range(psi.numel())
        ]
    )
    a_value = float(a.detach())
    da = float(torch.pi / 2 * torch.cos(torch.pi * tt.detach() / 2))
    sig = (1 - a_value**2) ** 0.5
    dsig = -a_value * da / max(sig, 1e-300)
    if sig > 1e-3:
        u_vp = flows.conditional_field(
            psi_vp.detach(), x1, t, a_value * x1, da * x1, sig, dsig
        ).flatten()
        assert_close(u_vp, d_vp, ulps=64, scale=(x0.abs() + x1.abs()).flatten() * (1 + abs(dsig) / sig),
                     what="VP-like path: u_t(psi_t|x1) - d psi_t/dt")  # fmt: skip
    current().summary = (
        "u_t(x|x1) = s'/s (x - mu) + mu' is the path's velocity; OT trajectories are straight"
    )


def _velocity_t(flows, data):
    return lambda x, t: flows.ot_marginal_field(data, x, t)


DATA_2D = oracle.isotropic_mixture([[-1.5, 0.0], [1.5, 0.5]], 0.3)


@claim("FLOW-07")
@settings(max_examples=20)
@given(seed=seeds, n=st.integers(1, 50))
def test_the_two_time_conventions_give_the_same_samples(flows, seed, n):
    """Euler in t (0 -> 1) with v_t, and Euler in sigma = 1 - t (1 -> 0) with v_sigma = -v_t at
    t = 1 - sigma, visit the same points: the step sizes agree up to rounding of 1 - k/n."""
    x_noise = torch.randn(32, 2, generator=seed.torch(), dtype=F64)
    v = _velocity_t(flows, DATA_2D)
    by_t = flows.euler_t(v, x_noise, n)
    sigmas = [1 - k / n for k in range(n + 1)]
    by_sigma = flows.euler_sigma(flows.t_velocity_as_sigma(v), x_noise, sigmas)
    scale = 64 * n * (x_noise.abs() + 4)
    assert_close(
        by_sigma, by_t, ulps=1, scale=scale, what="sigma-convention samples - t-convention samples"
    )
    current().summary = "Euler in t with v_t and in sigma = 1 - t with -v_t give the same samples"


@claim("FLOW-07")
def test_negative_control_sign_flip_between_conventions(flows):
    def same(n):
        x_noise = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
        v = _velocity_t(flows, DATA_2D)
        by_t = flows.euler_t(v, x_noise, n)
        wrong = lambda x, sigma: v(x, 1 - sigma)  # noqa: E731  (missing the minus sign)
        by_sigma = flows.euler_sigma(wrong, x_noise, [1 - k / n for k in range(n + 1)])
        return bool(torch.allclose(by_sigma, by_t, atol=1e-6))

    n = find(st.integers(1, 50), lambda n: not same(n))
    current().record(sign_flip_rejected_at_steps=n)


@claim("FLOW-07")
@statistical()
@given(seed=seeds)
def test_rectified_flow_pair_and_euler_sampling_reach_the_data(flows, seed):
    """x_t = (1 - t) x0 + t x1 with target x1 - x0 (exact by construction), and Euler sampling of
    the exact marginal field with 200 steps: 4000 samples pass a KS test per axis (alpha 1e-7)."""
    from scipy import stats as sps

    gen = seed.torch()
    x0, x1 = torch.randn(2, 16, 2, generator=gen, dtype=F64)
    t = torch.rand(16, 1, generator=gen, dtype=F64)
    x_t, target = flows.rectified_flow_pair(x0, x1, t)
    assert torch.equal(target, x1 - x0)
    assert_close(x_t, x0 + t * (x1 - x0), ulps=4, scale=x0.abs() + x1.abs(), what="x_t")
    samples = flows.euler_t(
        _velocity_t(flows, DATA_2D), torch.randn(4000, 2, generator=gen, dtype=F64), 200
    )
    for axis in (0, 1):
        means = DATA_2D.means[:, axis].numpy()

        def cdf(x, m=means):
            return sum(sps.norm.cdf(x, mk, 0.3) for mk in m) / 2

        stats.ks_law(
            samples[:, axis].numpy(), cdf, what=f"Euler samples of the exact field, axis {axis}"
        )


@claim("FLOW-08")
@given(sigma=st.fractions(0, 1, max_denominator=1000), s=st.fractions(Fraction(1, 100), 100, max_denominator=100),
       other=st.fractions(0, 1, max_denominator=1000))  # fmt: skip
def test_timestep_shift_exactly(flows, sigma, s, other):
    f = flows.shift
    assert f(Fraction(0), s) == 0 and f(Fraction(1), s) == 1
    assert f(sigma, Fraction(1)) == sigma
    if s > 1:
        assert f(sigma, s) >= sigma
    lo, hi = sorted((sigma, other))
    if hi > lo:
        assert f(hi, s) > f(lo, s), "increasing"
    current().summary = (
        "exact: fixes 0 and 1, identity at s = 1, increasing, sigma' >= sigma for s > 1"
    )


def test_bad_input_names_the_argument():
    import pytest

    for call, argument in [
        (lambda: matching.shift(0.5, 0.0), "s"),
        (lambda: matching.ot_path(torch.zeros(1), torch.zeros(1), 0.5, sigma_min=1.0), "sigma_min"),
        (
            lambda: matching.conditional_field(
                torch.zeros(1), torch.zeros(1), 0.5, 0.0, 0.0, 0.0, 1.0
            ),
            "sigma",
        ),
        (lambda: matching.ot_marginal_field(DATA_1D, torch.zeros(1, 1), 1.5), "t"),
        (lambda: matching.euler_t(lambda x, t: x, torch.zeros(1), 0), "n"),
        (lambda: matching.euler_sigma(lambda x, s: x, torch.zeros(1), [0.0, 1.0]), "sigmas"),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()


# t = 1 needs sigma_min > 0 (sigma_1 = sigma_min: the path has a density there)
@pytest.mark.parametrize(
    "sigma_min, t", [(0.0, 0.0), (0.0, 0.3), (0.1, 0.0), (0.1, 0.3), (0.1, 1.0)]
)
def test_ot_marginal_field_of_one_gaussian_in_closed_form(flows, sigma_min, t):
    """Data N(m, s^2 I) in d = 2: x_t = t x_1 + sigma_t x_0 (sigma_t = 1 - (1 - sigma_min) t) and
    u = x_1 - (1 - sigma_min) x_0 are jointly Gaussian, so u_t(x) = E[u | x_t = x] =
    m + Cov(u, x_t) / Var(x_t) (x - t m), Cov = t s^2 - (1 - sigma_min) sigma_t,
    Var = t^2 s^2 + sigma_t^2: the field (3) must equal it to rounding (float64)."""
    m, s2 = torch.tensor([0.7, -1.2], dtype=torch.float64), 0.64
    data = oracle.GaussianMixture([1.0], m[None], s2 * torch.eye(2, dtype=torch.float64)[None])
    x = torch.tensor([[0.1, 0.4], [-2.0, 1.5], [3.0, 0.0]], dtype=torch.float64)
    sigma_t = 1 - (1 - sigma_min) * t
    cov, var = t * s2 - (1 - sigma_min) * sigma_t, t**2 * s2 + sigma_t**2
    expected = m + cov / var * (x - t * m)
    got = flows.ot_marginal_field(data, x, t, sigma_min)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_marginal_log_density_bad_input_names_the_argument():
    x = torch.zeros(1, 1, dtype=F64)
    with pytest.raises(TypeError, match="^data: "):
        matching.ot_marginal_log_density(None, x, 0.5)
    with pytest.raises(ValueError, match="^t: "):
        matching.ot_marginal_log_density(DATA_1D, x, 1.5)
    with pytest.raises(ValueError, match="^sigma_min: "):
        matching.ot_marginal_log_density(DATA_1D, x, 0.5, sigma_min=1.0)


def test_sampler_and_network_details():
    """euler_sigma needs strictly decreasing sigmas (a repeated one is an error); VelocityMLP
    feeds t to the network in the dtype of x (float64 here: t = 0.1 exactly as float64)."""
    with pytest.raises(ValueError, match="^sigmas: must be strictly decreasing"):
        matching.euler_sigma(lambda x, s: x, torch.zeros(1, 1), [1.0, 0.5, 0.5, 0.0])
    torch.manual_seed(0)
    net = matching.VelocityMLP(2, width=8)
    x = torch.randn(3, 2, dtype=torch.float64)
    t = torch.full((3, 1), 0.1, dtype=torch.float64)
    assert torch.equal(net(x, 0.1), net.net(torch.cat([x, t], dim=1)))
    # v(x, t) = W3 silu(W2 silu(W1 [x, t] + b1) + b2) + b3, float64
    l1, l2, l3 = (m for m in net.net if isinstance(m, torch.nn.Linear))
    silu = torch.nn.functional.silu
    assert torch.equal(net(x, 0.1), l3(silu(l2(silu(l1(torch.cat([x, t], dim=1)))))))


def test_training_takes_adam_steps_of_the_given_learning_rate():
    """Adam's first step moves each parameter by lr g / (|g| + eps), i.e. by lr wherever the
    gradient is well above eps = 1e-8: one step of train_rectified_flow with lr = 0.01 moves
    the parameters by at most 0.01, and most of them by 0.01 within 1% (|g| > 1e-6)."""
    torch.manual_seed(0)
    model = matching.VelocityMLP(2, width=8)
    before = [p.detach().clone() for p in model.parameters()]
    gen, handed = torch.Generator().manual_seed(1), []

    def sample_data(n, g):
        handed.append(g)
        return torch.randn(n, 2, generator=g, dtype=torch.float64)

    matching.train_rectified_flow(model, sample_data, 1, gen, batch=64, lr=0.01)
    assert handed == [gen], "the data are drawn from the caller's generator"
    moves = torch.cat(
        [(p.detach() - b).abs().ravel() for p, b in zip(model.parameters(), before, strict=True)]
    )
    assert moves.max() <= 0.01 * (1 + 1e-12)
    assert (moves > 0.0099).float().mean() > 0.9


def test_bad_input_a_velocity_of_the_wrong_shape_is_named():
    """A velocity returning one column (or one row) used to broadcast silently against x in the
    Euler step; the samplers now name the velocity, and the times and shapes of the paths."""
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ValueError, match="^velocity: must return a tensor of x's shape"):
        matching.euler_t(lambda y, t: y[:, :1], x, 3)
    with pytest.raises(ValueError, match="^velocity_sigma: "):
        matching.euler_sigma(lambda y, s: y[:1], x, [1.0, 0.0])
    with pytest.raises(ValueError, match="^t: "):
        matching.ot_path(x, x, torch.full((3, 1), 0.5, dtype=F64))
    with pytest.raises(ValueError, match="^x1: "):
        matching.rectified_flow_pair(x, torch.zeros(4, 3, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="^t: "):
        matching.ot_conditional_field(x, x, 1.0)  # sigma_min = 0: no noise left at t = 1
