"""FLOW-01, FLOW-02: change of variables and affine coupling layers (impl/flows/coupling.py)."""

import math

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from impl.flows import coupling
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53


@st.composite
def flows(draw, max_d=6):
    d = draw(st.integers(1, max_d))
    n_layers = draw(st.integers(1, 4))
    width = draw(st.sampled_from([4, 16, 64]))
    seed = draw(seeds)
    flow = coupling.realnvp(d, n_layers, width, seed.torch())
    scale = draw(floats(0.1, 2.0))
    for layer in flow.layers:
        if isinstance(layer, coupling.AffineCoupling):
            layer.scale = scale
            for (
                p
            ) in layer.parameters():  # random, not trained: larger weights than the default init
                p.data.mul_(draw(floats(0.5, 3.0)))
    return flow, d, seed


def jacobian_logdet(f, x):
    """log |det df/dx| per row, from the autograd Jacobian."""
    out = []
    for row in x:
        J = torch.autograd.functional.jacobian(lambda v: f(v[None])[0][0], row)
        out.append(torch.linalg.slogdet(J)[1])
    return torch.stack(out)


def inverse_budget(flow, x):
    """Each coupling multiplies rounding by at most e^scale (and its inverse by the same):
    8 u (|x| + 1) e^(2 scale L) per layer."""
    couplings = [m for m in flow.layers if isinstance(m, coupling.AffineCoupling)]
    growth = math.exp(2 * sum(c.scale for c in couplings))
    return 8 * U * (x.abs() + 1) * growth * max(1, len(couplings)) * 16


@claim("FLOW-02")
@given(case=flows())
def test_inverse_of_forward_is_the_identity(case):
    flow, d, seed = case
    x = 2 * torch.randn(16, d, generator=seed.torch(), dtype=F64)
    with torch.no_grad():
        z, logdet = flow(x)
        back, logdet_inv = flow.inverse(z)
    assert_close(back, x, ulps=0, abs_floor=inverse_budget(flow, x), what="inverse(forward(x)) - x")
    assert_close(logdet + logdet_inv, torch.zeros(16, dtype=F64), ulps=0, abs_floor=1e-12 * (1 + logdet.abs()),
                 what="log|det| forward + inverse")  # fmt: skip
    current().summary = (
        "inverse(forward(x)) = x on random coupling flows (widths, depths, scales, dimensions)"
    )


@claim("FLOW-02")
@settings(max_examples=30)
@given(case=flows(max_d=5))
def test_analytic_log_det_is_the_autograd_slogdet(case):
    flow, d, seed = case
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    analytic = flow(x)[1].detach()
    # slogdet of a d x d Jacobian: d^2 u relative to the log-det's terms (|sum s| <= scale L d)
    assert_close(analytic, jacobian_logdet(flow, x), ulps=0, abs_floor=1e-10 * (1 + analytic.abs()),
                 what="analytic log|det| - slogdet(autograd Jacobian)")  # fmt: skip
    current().summary = "the analytic log-det (sum of s) equals slogdet of the autograd Jacobian"


class Unmasked(coupling.AffineCoupling):
    """Negative control: s, t computed from the whole x (not b x): the Jacobian is no longer
    triangular, so sum(s) is not its log-det."""

    def forward(self, x):
        s, t = self._st(x)
        return x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t), s.sum(-1)


@claim("FLOW-02")
def test_negative_control_unmasked_conditioner():
    def agrees(seed):
        torch.manual_seed(seed)
        layer = Unmasked(torch.tensor([1.0, 0.0]), 8)
        x = torch.randn(2, 2, dtype=F64)
        return bool(
            torch.allclose(
                layer(x)[1].detach(), jacobian_logdet(layer_as_flow(layer), x), atol=1e-8
            )
        )

    seed = find(st.integers(0, 1000), lambda s: not agrees(s))
    current().record(unmasked_conditioner_rejected_at_seed=seed)


def layer_as_flow(layer):
    return coupling.Flow([layer])


@claim("FLOW-01")
@settings(max_examples=30)
@given(case=flows(max_d=4))
def test_log_prob_is_the_change_of_variables_of_the_whole_map(case):
    """log p(x) (Flow.log_prob) equals log N(f(x); 0, I) + log|det df/dx| with the base density from
    torch.distributions and the log-det from slogdet of the autograd Jacobian of the whole map
    x -> f(x) = f_L(...f_1(x)): the composed log-det (sum over layers) is the log-det of the
    composition. Budget as for the analytic log-det above (1e-10 relative), plus the base
    density's rounding, 8 u (1 + |z|^2)."""
    flow, d, seed = case
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    z = flow(x)[0].detach()
    base = torch.distributions.Normal(torch.zeros(d, dtype=F64), 1.0).log_prob(z).sum(-1)
    whole_map = base + jacobian_logdet(flow, x)
    got = flow.log_prob(x).detach()
    budget = 1e-10 * (1 + got.abs()) + 8 * U * (1 + (z**2).sum(-1))
    assert_close(got, whole_map, ulps=0, abs_floor=budget,
                 what="log p(x) - (log N(f(x)) + slogdet of the whole map's Jacobian)")  # fmt: skip
    current().summary = (
        "log p(x) = log pi(f(x)) + log|det| of the whole map: the layers' log-dets add"
    )


@claim("FLOW-01")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_density_integrates_to_one_in_2d(seed):
    """2-D flow (2 couplings, scale 0.7): the density summed on a grid over the box holding all but
    a measured fraction of 2e5 samples. Budget: the box's missing mass (counted from samples,
    plus 5 binomial standard deviations) plus the grid error, estimated by halving the grid."""
    flow = coupling.realnvp(2, 2, 16, torch.Generator().manual_seed(seed))
    for layer in flow.layers:
        if isinstance(layer, coupling.AffineCoupling):
            layer.scale = 0.7
    with torch.no_grad():
        samples = flow.sample(200_000, 2, torch.Generator().manual_seed(seed + 10))
        lo, hi = samples.min(0).values - 1, samples.max(0).values + 1
        inside = ((samples > lo) & (samples < hi)).all(1).double().mean().item()

        def integral(n):
            xs = [torch.linspace(lo[i].item(), hi[i].item(), n, dtype=F64) for i in range(2)]
            X, Y = torch.meshgrid(*xs, indexing="ij")
            dens = flow.log_prob(torch.stack([X.ravel(), Y.ravel()], 1)).exp()
            cell = (xs[0][1] - xs[0][0]) * (xs[1][1] - xs[1][0])
            return float(dens.sum() * cell)

        fine, coarse = integral(800), integral(400)
    missing = (1 - inside) + 5 * math.sqrt(max(1 - inside, 1e-6) / 2e5)
    tol = missing + 2 * abs(fine - coarse)
    assert abs(fine - 1) <= tol, (fine, coarse, tol)
    current().record(
        **{f"seed {seed}: integral": round(fine, 6), f"seed {seed}: budget": round(tol, 6)}
    )
    current().summary = "2-D flow densities integrate to 1 within the grid and tail budget"


def test_bad_input_names_the_argument():
    for call, argument in [
        (lambda: coupling.realnvp(0), "d"),
        (lambda: coupling.realnvp(2, 0), "n_layers"),
        (lambda: coupling.AffineCoupling(torch.tensor([0.5, 1.0])), "mask"),
        (lambda: coupling.Permutation(torch.tensor([0, 0])), "perm"),
        (lambda: coupling.realnvp(3)(torch.zeros(2, 2, dtype=F64)), "x"),
        (lambda: coupling.realnvp(3).inverse(torch.zeros(4, dtype=F64)), "z"),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()


def test_issue_16_permutation_of_the_wrong_length_or_not_a_permutation():
    """Issue 16: Permutation([1, 0]) applied to 3 columns dropped one silently; a list with a
    duplicate, a missing index or a non-integer is not a permutation."""
    x = torch.randn(4, 3, dtype=F64)
    layer = coupling.Permutation([1, 0])
    for method, argument in ((layer.forward, "x"), (layer.inverse, "y")):
        with pytest.raises(ValueError, match=rf"^{argument}: expected shape \(n, 2\)"):
            method(x)
    for perm in ([0, 0, 1], [1, 2, 3], [-1, 0, 1]):
        with pytest.raises(ValueError, match=r"^perm: not a permutation"):
            coupling.Permutation(perm)
    for perm in ([1.0, 0.0], [True, False], "10", None):
        with pytest.raises(TypeError, match=r"^perm: "):
            coupling.Permutation(perm)
    with pytest.raises(ValueError, match=r"^perm: "):
        coupling.Permutation([])
    # a flow of layers of different dimensions is refused when built, not when used
    with pytest.raises(ValueError, match=r"^layers: "):
        coupling.Flow([coupling.AffineCoupling([1.0, 0.0], 4), coupling.Permutation([2, 0, 1])])
