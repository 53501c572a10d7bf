"""Peers of the family `flows` (properties/adapters/flows.py): zuko and normflows computing our
coupling flow from the same parameters (the parameter-level mapping, checked against the
reference to a derived rounding budget: the smoke check of each adapter in the default gate; the
claim properties run on them in the peer matrix, `--target flows=zuko|normflows`), and where
their conventions differ from ours; diffusers' FlowMatchEulerDiscreteScheduler (timestep shift
and Euler step) against impl/flows/matching.py. Findings about peers, not evidence for the
article's claims: each is marked @finding(claim id)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.flows import coupling, matching
from properties.adapters import flows as family
from properties.catalogue import finding
from properties.evidence import current, refute
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

zuko = pytest.importorskip("zuko", reason="zuko is a test dependency")
normflows = pytest.importorskip("normflows", reason="normflows is a test dependency")
diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency")
F64 = torch.float64
U = 2.0**-53
PEERS = {"zuko": family.Zuko, "normflows": family.Normflows}


def _norm(w):
    return float(torch.linalg.matrix_norm(w, ord=2))


def rounding_budget(layers, x, inverse=False):
    """Derived bounds on |peer - reference| for the flow of `layers` at x, (outputs (n, d),
    log-dets (n,)), from the reference's pass layer by layer (in reverse for the inverse).

    Each coupling's output y = x e^s + t (or its inverse) is rounded differently by the two
    implementations: a few ulps per operation, 16 u (|x| e^scale + |t|) in all (zuko's log-scale
    goes through its soft clamp and our inverse of it, normflows' through t' = -t e^-s: each a
    few u of s). A difference D in a layer's input reaches its output through e^s (at most
    e^scale) and through the conditioner a = W3 tanh(W2 tanh(W1 u)), whose Lipschitz constant is
    at most Lip = |W3|_2 |W2|_2 |W1|_2: D (e^scale + Lip (scale |x|_max e^scale + 1)); the
    log-det sum_free s moves by d scale Lip D plus its own rounding 16 u d scale. Permutations
    are exact."""
    flow = family.Reference.build(layers)
    mods = list(reversed(flow.layers)) if inverse else list(flow.layers)
    d = x.shape[1]
    out_err = torch.zeros(x.shape[0], dtype=F64)
    ld_err = torch.zeros(x.shape[0], dtype=F64)
    h = x
    with torch.no_grad():
        for mod in mods:
            nxt = (mod.inverse if inverse else mod)(h)[0]
            if isinstance(mod, coupling.AffineCoupling):
                (w1, _), (w2, _), (w3, _) = [
                    (m.weight, m.bias) for m in mod.net if hasattr(m, "weight")
                ]
                lip = _norm(w3) * _norm(w2) * _norm(w1)
                grow = math.exp(mod.scale)
                size = h.abs().amax(1)
                shift = mod.net(h * mod.mask)[:, d:].abs().amax(1)
                ld_err = ld_err + d * mod.scale * lip * out_err + 16 * U * d * (mod.scale + 1)
                out_err = out_err * (grow + lip * (mod.scale * size * grow + 1))
                out_err = out_err + 16 * U * (size * grow + shift + nxt.abs().amax(1))
            h = nxt
    return out_err[:, None].expand_as(x), ld_err


@pytest.mark.parametrize("name", sorted(PEERS))
@settings(max_examples=8)
@given(d=st.integers(1, 5), n_layers=st.integers(1, 3), width=st.sampled_from([4, 16]),
       scale=floats(0.1, 2.0), seed=seeds)  # fmt: skip
def test_peer_computes_our_coupling_flow_from_the_same_parameters(
    name, d, n_layers, width, scale, seed
):
    """The parameter-level mapping (adapters/flows.py): the peer's flow built from our parameters
    gives our forward z = f(x), our inverse, our log-dets and our log p(x), within the derived
    rounding budget (rounding_budget); the peers' log-dets are compared as they come (normflows'
    are float32, see the finding below: each of its len(layers) in-place additions rounds the
    running sum, at most sum over couplings of d scale, to 2^-24 relative)."""
    peer = PEERS[name]
    layers = family.random_layers(d, n_layers, width, scale, seed.torch())
    x = 2 * torch.randn(8, d, generator=seed.torch(), dtype=F64)
    ours, theirs = family.Reference.build(layers), peer.build(layers)
    with torch.no_grad():
        z, ld = family.Reference.forward(ours, x)
        z_p, ld_p = peer.forward(theirs, x)
        back, ld_inv = family.Reference.inverse(ours, z)
        back_p, ld_inv_p = peer.inverse(theirs, z)
        lp, lp_p = family.Reference.log_prob(ours, x), peer.log_prob(theirs, x)
    bound = sum(d * c.scale for c in layers if isinstance(c, family.Coupling))
    f32 = 2.0**-24 * len(layers) * bound if ld_p.dtype == torch.float32 else 0.0
    out_b, ld_b = rounding_budget(layers, x)
    assert_close(z_p, z, ulps=0, abs_floor=out_b, what=f"{name}: f(x) - ours")
    assert_close(
        ld_p.to(F64),
        ld,
        ulps=0,
        abs_floor=ld_b + f32,
        what=f"{name}: log|det df/dx| - ours",
    )
    out_i, ld_i = rounding_budget(layers, z, inverse=True)
    assert_close(back_p, back, ulps=0, abs_floor=out_i, what=f"{name}: f^-1(z) - ours")
    assert_close(ld_inv_p.to(F64), ld_inv, ulps=0, abs_floor=ld_i + f32,
                 what=f"{name}: log|det df^-1/dz| - ours")  # fmt: skip
    # log p = log N(z) + log-det: z's difference moves log N(z) by |z| |dz|
    lp_b = ld_b + (z.abs() * out_b).sum(1) + 8 * U * (1 + (z**2).sum(1))
    assert_close(lp_p, lp, ulps=0, abs_floor=lp_b, what=f"{name}: log p(x) - ours")


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_runs_a_claim_property(name):
    """Smoke check of each peer adapter through a claim's property in the default gate: FLOW-01's
    change of variables of the whole map on one flow (the full claims run in the peer matrix)."""
    from properties.strategies import Seed
    from properties.test_flows_coupling import Drawn, jacobian_logdet

    peer = PEERS[name]
    case = Drawn(3, 2, 4, 1.0, Seed(0), (1.5,) * 12)
    flow = peer.build(case.layers)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    z = peer.forward(flow, x)[0].detach()
    base = torch.distributions.Normal(torch.zeros(3, dtype=F64), 1.0).log_prob(z).sum(-1)
    whole_map = base + jacobian_logdet(lambda u: peer.forward(flow, u), x)
    got = peer.log_prob(flow, x).detach()
    assert_close(got, whole_map, ulps=0, abs_floor=1e-10 * (1 + got.abs()) + 8 * U * (1 + (z**2).sum(-1)),
                 what=f"{name}: log p(x) - (log N(f(x)) + slogdet)")  # fmt: skip
    samples = peer.sample(flow, 16, 3, torch.Generator().manual_seed(2))
    assert samples.shape == (16, 3) and samples.dtype == F64


def test_mask_parity_is_ours_in_both_peers():
    """Not a difference: zuko's RealNVP (mask arange(d) % 2 == i % 2, True conditions) and
    normflows' RealNVP example (b = 1 on the even coordinates, 1 passes through, alternating with
    1 - b) let the even coordinates condition in the first layer, as impl.flows.coupling.realnvp."""
    d = 5
    ours = coupling.realnvp(d, 2, 4, torch.Generator().manual_seed(0))
    ours_masks = [m.mask.bool() for m in ours.layers if isinstance(m, coupling.AffineCoupling)]
    z = family.Zuko.realnvp(d, 2, 4, torch.Generator().manual_seed(0))
    zuko_masks = [t.mask for t in z.transform.transforms]
    nf_flow = family.Normflows.realnvp(d, 2, 4, torch.Generator().manual_seed(0))
    nf_masks = [m.b[0].bool() for m in nf_flow.flows]
    for masks in (zuko_masks, nf_masks):
        assert [m.tolist() for m in masks] == [m.tolist() for m in ours_masks]


@finding("FLOW-02")
def test_finding_zuko_soft_clamps_the_log_scale_rationally_not_by_tanh():
    """zuko 1.6.0's MonotonicAffineTransform (the affine map of its RealNVP) turns the hyper
    network's raw output a into the log-scale a / (1 + |a| / log(1/slope)), slope = 1e-3: a
    rational soft clamp to (-6.908, 6.908) (scales e^s in (1e-3, 1e3)), where ours (impl, and
    RealNVP implementations that bound s) use scale * tanh(a). With the same raw conditioner
    output the two layers differ; the adapter composes its hyper network with the inverse of the
    clamp to compute our function. Minimal case: a = 1 gives zuko s = 0.8736, ours (scale 2)
    2 tanh(1) = 1.5232; a = 100 gives 6.4614 (ours 2)."""
    from zuko.transforms import MonotonicAffineTransform

    a = torch.tensor([1.0, 100.0], dtype=F64)
    got = MonotonicAffineTransform(torch.zeros(2, dtype=F64), a).log_scale
    limit = math.log(1 / family.ZUKO_SLOPE)
    assert_close(got, a / (1 + a.abs() / limit), ulps=4, scale=a.abs(), what="zuko's log-scale")
    assert float(got.abs().max()) < limit
    ours = 2 * torch.tanh(a)
    assert float((got - ours).abs().min()) > 0.5
    # the layer with our raw outputs copied straight (no inverse clamp) is another function
    spec = family.random_layers(2, 1, 4, 2.0, torch.Generator().manual_seed(0), gains=(3.0,) * 6)[0]
    straight = family.Zuko._coupling(spec)
    straight.hyper = straight.hyper[0]  # zuko's own MLP with our weights, without the unclamp
    x = torch.tensor([[0.5, -1.0]], dtype=F64)
    with torch.no_grad():
        ld_zuko = straight().call_and_ladj(x)[1].sum()
        ld_ours = family.Reference.forward(family.Reference.build([spec]), x)[1][0]
    assert abs(float(ld_zuko - ld_ours)) > 1e-3
    current().record(finding=(
        f"zuko {zuko.__version__}: log-scale a / (1 + |a|/6.908) (soft clamp, |s| < log 1e3), not "
        f"scale tanh(a): a = 1 -> {float(got[0]):.4f} (ours, scale 2: {float(ours[0]):.4f}), "
        f"a = 100 -> {float(got[1]):.4f}; one layer with our weights copied straight: log-det "
        f"{float(ld_zuko):.4f} vs ours {float(ld_ours):.4f} at x = (0.5, -1)"))  # fmt: skip
    current().summary = "finding: zuko clamps the log-scale by a / (1 + |a|/6.908), not tanh"


@finding("FLOW-01")
def test_finding_normflows_layers_run_from_the_base_to_the_data():
    """normflows 1.7.3: a flow's layers map the base z to the data x (NormalizingFlow.sample runs
    each layer's forward; log_prob runs each layer's inverse from x back to z), so
    MaskedAffineFlow's formula b z + (1 - b)(z e^s + t) is the generative map x = g(z), where the
    article (RealNVP) and impl/flows write it as the normalizing map z = f(x). The same weights
    copied straight therefore define inverse flows: normflows' log p(x) with our layer's s and t
    is log N(f^-1(x)) + log|det df^-1/dx|, not ours (the adapter maps s' = -s, t' = -t e^-s and
    reverses the layers). Minimal case: one coupling (d = 2, scale 1), x = (0.5, -1)."""
    spec = family.random_layers(2, 1, 4, 1.0, torch.Generator().manual_seed(0), gains=(3.0,) * 6)
    ours = family.Reference.build(spec)
    net = family.conditioner(spec[0].weights)
    s_net = lambda u: torch.tanh(net(u)[:, :2])  # noqa: E731  (scale 1)
    t_net = lambda u: net(u)[:, 2:]  # noqa: E731
    straight = normflows.flows.MaskedAffineFlow(spec[0].mask, _Module(t_net), _Module(s_net))
    model = normflows.NormalizingFlow(
        normflows.distributions.DiagGaussian(2, trainable=False), [straight]
    ).to(F64)
    x = torch.tensor([[0.5, -1.0]], dtype=F64)
    with torch.no_grad():
        assert_close(straight(x)[0], family.Reference.forward(ours, x)[0], ulps=8, scale=1 + x.abs(),
                     what="normflows' layer forward = our f")  # fmt: skip
        theirs = model.log_prob(x)
        ours_lp = family.Reference.log_prob(ours, x)
        xi, ld_inv = family.Reference.inverse(ours, x)
        of_inverse = -0.5 * (xi**2).sum(1) - math.log(2 * math.pi) + ld_inv
    assert_close(theirs, of_inverse, ulps=0, abs_floor=1e-12 * (1 + of_inverse.abs()),
                 what="normflows' log p(x) = the density of f^-1")  # fmt: skip
    assert abs(float(theirs - ours_lp)) > 1e-3
    current().record(finding=(
        f"normflows {normflows.__version__}: layers map base -> data (log_prob applies inverses); "
        f"MaskedAffineFlow with our s, t at x = (0.5, -1): log p = {float(theirs):.6f} = density "
        f"of f^-1 ({float(of_inverse):.6f}), ours {float(ours_lp):.6f}"))  # fmt: skip
    current().summary = "finding: normflows' coupling formula is the generative direction"


class _Module(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, u):
        return self.fn(u)


@finding("FLOW-02")
def test_finding_normflows_log_dets_are_float32_for_a_float64_flow():
    """normflows 1.7.3: NormalizingFlow.forward_and_log_det and inverse_and_log_det start the sum
    of the layers' log-dets from torch.zeros(len(z)), in the default dtype (float32), and add
    the float64 log-dets in place: a float64 flow's log|det| comes back float32, rounded to
    2^-24 relative (log_prob starts from zeros of x's dtype and stays float64). So FLOW-02's
    float64 checks fail under `--target flows=normflows` (the forward and inverse log-dets cancel
    to 3e-8, not 1e-12). Minimal case: one coupling, d = 2."""
    spec = family.random_layers(2, 1, 4, 1.0, torch.Generator().manual_seed(0))
    flow = family.Normflows.build(spec)
    x = torch.tensor([[0.5, -1.0], [1.5, 2.0]], dtype=F64)
    with torch.no_grad():
        z, ld = flow.inverse_and_log_det(x)
        _, ld_back = flow.forward_and_log_det(z)
        ours = family.Reference.forward(family.Reference.build(spec), x)[1]
    assert ld.dtype == torch.float32 and ld_back.dtype == torch.float32
    assert torch.equal(ld, ours.to(torch.float32)), "the float64 log-det rounded to float32"
    assert flow.log_prob(x).dtype == F64
    current().record(finding=(
        f"normflows {normflows.__version__}: forward_and_log_det / inverse_and_log_det return "
        f"float32 log-dets for a float64 flow (sum started from torch.zeros in the default dtype): "
        f"{float(ld[0])!r} for ours {float(ours[0])!r}; forward + inverse = "
        f"{float((ld + ld_back).abs().max()):.2e}"))  # fmt: skip
    current().summary = "finding: normflows returns float32 log-dets for float64 flows"


@finding("FLOW-07")
@given(shift=floats(1.0, 5.0), n=st.integers(2, 50), seed=seeds)
def test_diffusers_flow_match_euler_step_is_the_sigma_euler_step(shift, n, seed):
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(n)
    sigmas = scheduler.sigmas.to(F64)
    x, v = torch.randn(2, 1, 8, generator=seed.torch(), dtype=F64)
    for i, t in enumerate(scheduler.timesteps):
        got = scheduler.step(v, t, x).prev_sample
        want = matching.euler_sigma(lambda y, s: v, x, [float(sigmas[i]), float(sigmas[i + 1])])
        assert_close(
            got, want, ulps=0, abs_floor=4 * 2.0**-24 * (x.abs() + v.abs() + 1), what=f"step {i}"
        )
        x = got
    current().summary = "diffusers' flow-match Euler step is x + (sigma_next - sigma) v"


@finding("FLOW-08")
def test_finding_diffusers_flow_match_shifts_its_smallest_sigma_twice():
    """diffusers builds the training sigmas as shift(t/T) and takes sigma_min = shift(1/T) from them;
    set_timesteps then spaces sigmas linearly from 1 to that (already shifted) sigma_min and shifts
    them again. The schedule is shift(linspace(1, shift(1/T), n)), not shift(linspace(1, 1/T, n)):
    its smallest sigma is shift(shift(1/T))."""

    def single_shift(case):
        s, n = case
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=s)
        scheduler.set_timesteps(n)
        base = torch.linspace(1.0, 1 / 1000, n, dtype=F64)
        return bool(
            torch.allclose(scheduler.sigmas[:-1].to(F64), matching.shift(base, s), atol=1e-6)
        )

    cases = st.tuples(st.sampled_from([3.0, 2.0, 1.5]), st.integers(2, 50))
    s, n = refute(cases, single_shift, claim="diffusers flow-match shift",
                  describe=lambda c: f"shift = {c[0]}, n = {c[1]}")  # fmt: skip
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=s)
    scheduler.set_timesteps(n)
    twice = matching.shift(torch.linspace(1.0, matching.shift(1 / 1000, s), n, dtype=F64), s)
    assert torch.allclose(scheduler.sigmas[:-1].to(F64), twice, atol=1e-6), (
        "the double shift explains it"
    )
    current().record(smallest_sigma=float(scheduler.sigmas[-2]), shift_once=matching.shift(1 / 1000, s),
                     shift_twice=matching.shift(matching.shift(1 / 1000, s), s))  # fmt: skip
    current().summary = (
        f"finding: diffusers FlowMatchEuler (shift = {s}, n = {n}) ends at sigma = "
        f"{float(scheduler.sigmas[-2]):.4f} = shift(shift(1/T)), not {matching.shift(1 / 1000, s):.4f}"
    )
