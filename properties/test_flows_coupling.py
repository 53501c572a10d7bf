"""FLOW-01, FLOW-02: change of variables and affine coupling layers, through the family `flows`
(properties/adapters/flows.py; the reference is impl/flows/coupling.py). The flows are given by
their parameters (adapters.flows.Coupling / Permutation records), so every adapter computes the
same function on them."""

import math
from dataclasses import dataclass

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from impl.flows import coupling
from properties.adapters.flows import Coupling, conditioner, random_layers
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import Seed, floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53


@dataclass(frozen=True)
class Drawn:
    """A random coupling flow's recipe (it prints as such in counterexamples): the parameters
    random_layers(d, n_layers, width, scale, seed, gains)."""

    d: int
    n_layers: int
    width: int
    scale: float
    seed: Seed
    gains: tuple

    @property
    def layers(self):
        return random_layers(
            self.d, self.n_layers, self.width, self.scale, self.seed.torch(), self.gains
        )


@st.composite
def coupling_flows(draw, max_d=6):
    """A Drawn recipe: random RealNVP parameters (adapters.flows.random_layers) with larger weights
    than the default init (each weight and bias tensor times a gain in [0.5, 3]; random, not
    trained) and a log-scale bound `scale` in [0.1, 2]."""
    d = draw(st.integers(1, max_d))
    n_layers = draw(st.integers(1, 4))
    width = draw(st.sampled_from([4, 16, 64]))
    seed = draw(seeds)
    scale = draw(floats(0.1, 2.0))
    gains = tuple(draw(floats(0.5, 3.0)) for _ in range(6 * n_layers))
    return Drawn(d, n_layers, width, scale, seed, gains)


def jacobian_logdet(f, x):
    """log |det df/dx| per row, from the autograd Jacobian of x -> f(x)[0]."""
    out = []
    for row in x:
        J = torch.autograd.functional.jacobian(lambda v: f(v[None])[0][0], row)
        out.append(torch.linalg.slogdet(J)[1])
    return torch.stack(out)


def inverse_budget(layers, x):
    """Each coupling multiplies rounding by at most e^scale (and its inverse by the same):
    8 u (|x| + 1) e^(2 scale L) per layer."""
    couplings = [spec for spec in layers if isinstance(spec, Coupling)]
    growth = math.exp(2 * sum(c.scale for c in couplings))
    return 8 * U * (x.abs() + 1) * growth * max(1, len(couplings)) * 16


@claim("FLOW-02")
@given(case=coupling_flows())
def test_inverse_of_forward_is_the_identity(flows, case):
    layers, d, seed = case.layers, case.d, case.seed
    flow = flows.build(layers)
    x = 2 * torch.randn(16, d, generator=seed.torch(), dtype=F64)
    with torch.no_grad():
        z, logdet = flows.forward(flow, x)
        back, logdet_inv = flows.inverse(flow, z)
    assert_close(
        back, x, ulps=0, abs_floor=inverse_budget(layers, x), what="inverse(forward(x)) - x"
    )
    assert_close(logdet + logdet_inv, torch.zeros(16, dtype=F64), ulps=0, abs_floor=1e-12 * (1 + logdet.abs()),
                 what="log|det| forward + inverse")  # fmt: skip
    current().summary = (
        "inverse(forward(x)) = x on random coupling flows (widths, depths, scales, dimensions)"
    )


@claim("FLOW-02")
@settings(max_examples=30)
@given(case=coupling_flows(max_d=5))
def test_analytic_log_det_is_the_autograd_slogdet(flows, case):
    layers, d, seed = case.layers, case.d, case.seed
    flow = flows.build(layers)
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    analytic = flows.forward(flow, x)[1].detach()
    # slogdet of a d x d Jacobian: d^2 u relative to the log-det's terms (|sum s| <= scale L d)
    assert_close(analytic, jacobian_logdet(lambda u: flows.forward(flow, u), x), ulps=0,
                 abs_floor=1e-10 * (1 + analytic.abs()),
                 what="analytic log|det| - slogdet(autograd Jacobian)")  # fmt: skip
    current().summary = "the analytic log-det (sum of s) equals slogdet of the autograd Jacobian"


@claim("FLOW-02")
@settings(max_examples=10)
@given(d=st.integers(1, 5), n_layers=st.integers(1, 4), seed=seeds)
def test_the_implementations_own_realnvp_is_invertible_with_the_autograd_log_det(
    flows, d, n_layers, seed
):
    """The implementation's own RealNVP (flows.realnvp: its architecture and initialisation, for a
    peer the library's): inverse(forward(x)) = x and forward + inverse log-dets cancel, to 1e-10
    relative (default initialisations keep the log-scales small), and the log-det is slogdet of
    the autograd Jacobian (1e-10 relative, as above)."""
    flow = flows.realnvp(d, n_layers, 16, seed.torch())
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    z, logdet = flows.forward(flow, x)
    back, logdet_inv = flows.inverse(flow, z.detach())
    assert_close(
        back.detach(), x, ulps=0, abs_floor=1e-10 * (1 + x.abs()), what="inverse(forward(x)) - x"
    )
    assert_close(
        (logdet + logdet_inv).detach(),
        torch.zeros(4, dtype=F64),
        ulps=0,
        abs_floor=1e-12 * (1 + logdet.detach().abs()),
        what="log|det| forward + inverse",
    )
    autograd = jacobian_logdet(lambda u: flows.forward(flow, u), x)
    assert_close(logdet.detach(), autograd, ulps=0, abs_floor=1e-10 * (1 + autograd.abs()),
                 what="analytic log|det| - slogdet(autograd Jacobian)")  # fmt: skip
    current().summary = (
        "the implementation's own RealNVP is invertible, its log-det the autograd one"
    )


def unmasked(spec):
    """Negative control: the coupling of Coupling record `spec` with s, t computed from the whole x
    (not mask * x), (y, sum of s over the free coordinates): the Jacobian is no longer
    triangular, so sum(s) is not its log-det. Written here (adapters.flows.conditioner), not in
    impl: it is a wrong layer the log-det check must reject, not an implementation under test."""
    net = conditioner(spec.weights)

    def forward(x):
        a, d, free = net(x), x.shape[1], 1 - spec.mask
        s, t = spec.scale * torch.tanh(a[:, :d]) * free, a[:, d:] * free
        return spec.mask * x + free * (x * torch.exp(s) + t), s.sum(-1)

    return forward


@claim("FLOW-02")
def test_negative_control_unmasked_conditioner():
    def agrees(seed):
        gen = torch.Generator().manual_seed(seed)
        layer = unmasked(random_layers(2, 1, 8, 2.0, gen)[0])  # mask (1, 0), width 8, scale 2
        x = torch.randn(2, 2, generator=gen, dtype=F64)
        return bool(torch.allclose(layer(x)[1].detach(), jacobian_logdet(layer, x), atol=1e-8))

    seed = find(st.integers(0, 1000), lambda s: not agrees(s))
    current().record(unmasked_conditioner_rejected_at_seed=seed)


@claim("FLOW-01")
@settings(max_examples=30)
@given(case=coupling_flows(max_d=4))
def test_log_prob_is_the_change_of_variables_of_the_whole_map(flows, case):
    """log p(x) (flows.log_prob) equals log N(f(x); 0, I) + log|det df/dx| with the base density
    from torch.distributions and the log-det from slogdet of the autograd Jacobian of the whole map
    x -> f(x) = f_L(...f_1(x)): the composed log-det (sum over layers) is the log-det of the
    composition. Budget as for the analytic log-det above (1e-10 relative), plus the base
    density's rounding, 8 u (1 + |z|^2)."""
    layers, d, seed = case.layers, case.d, case.seed
    flow = flows.build(layers)
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    z = flows.forward(flow, x)[0].detach()
    base = torch.distributions.Normal(torch.zeros(d, dtype=F64), 1.0).log_prob(z).sum(-1)
    whole_map = base + jacobian_logdet(lambda u: flows.forward(flow, u), x)
    got = flows.log_prob(flow, x).detach()
    budget = 1e-10 * (1 + got.abs()) + 8 * U * (1 + (z**2).sum(-1))
    assert_close(got, whole_map, ulps=0, abs_floor=budget,
                 what="log p(x) - (log N(f(x)) + slogdet of the whole map's Jacobian)")  # fmt: skip
    current().summary = (
        "log p(x) = log pi(f(x)) + log|det| of the whole map: the layers' log-dets add"
    )


@claim("FLOW-01")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_density_integrates_to_one_in_2d(flows, seed):
    """2-D flow (2 couplings of width 16, scale 0.7, random_layers from the seed): the density
    summed on a grid over the box holding all but a measured fraction of 2e5 samples. Budget: the
    box's missing mass (counted from samples, plus 5 binomial standard deviations) plus the grid
    error, estimated by halving the grid."""
    flow = flows.build(random_layers(2, 2, 16, 0.7, torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        samples = flows.sample(flow, 200_000, 2, torch.Generator().manual_seed(seed + 10))
        lo, hi = samples.min(0).values - 1, samples.max(0).values + 1
        inside = ((samples > lo) & (samples < hi)).all(1).double().mean().item()

        def integral(n):
            xs = [torch.linspace(lo[i].item(), hi[i].item(), n, dtype=F64) for i in range(2)]
            X, Y = torch.meshgrid(*xs, indexing="ij")
            dens = flows.log_prob(flow, torch.stack([X.ravel(), Y.ravel()], 1)).exp()
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
