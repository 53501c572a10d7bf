"""Family `flows` (normalizing flows, CNFs, flow matching; seed article 5): the functions its
properties call.

Interface. Coupling flows (FLOW-01, FLOW-02), in the article's direction: f maps data x to the
latent z = f(x), log p(x) = log N(f(x); 0, I) + log|det df/dx|; batches are finite float64 (n, d):
    build(layers) -> flow           the flow of the given parameters: `layers` is a list of
                                    Coupling and Permutation records (below), applied in order
    realnvp(d, n_layers, width, generator) -> flow
                                    the implementation's own RealNVP, randomly initialised (the
                                    global torch RNG seeded from `generator`)
    forward(flow, x) -> (z, log|det dz/dx|)       inverse(flow, z) -> (x, log|det dx/dz|)
    log_prob(flow, x) -> log p(x)                 sample(flow, n, d, generator) -> x = f^-1(z)
Continuous flows and flow matching (FLOW-03..FLOW-08; impl/flows/cnf.py and matching.py for the
arguments): push(v, z0, log_p0, n), log_density(v, x, log_p0_fn, n), ot_path, conditional_field,
ot_conditional_field, ot_marginal_field, ot_marginal_log_density, rectified_flow_pair, euler_t,
euler_sigma, t_velocity_as_sigma, shift.
Training and the ODE solver the flows properties measure with (FLOW-03, FLOW-09, FLOW-13, FLOW-15):
    train(flow, sample_data, steps, generator) -> losses     maximum likelihood of a coupling flow
                                    (impl/flows/coupling.py: Adam, batches of sample_data(n, gen))
    train_rectified_flow(model, sample_data, steps, generator) -> losses
                                    rectified-flow regression of a velocity model (impl/flows/matching.py)
    ode_solve(drift, x, t_start, t_end, n, method) -> x(t_end)
                                    n equal "euler" or "heun" steps of dx/dt = drift(x, t)
                                    (impl/ode.py). A tool of the checks (a flow map to compare a CNF
                                    with, the trajectories FLOW-13/15 measure), not what a flows claim
                                    is about; the family carries it itself rather than taking it from
                                    the `sde` family, so that --target sde=... (which swaps the solver
                                    SDE-05 audits) leaves the flows properties' instrument unchanged.
The flow-matching article's full text (FLOW-10..FLOW-15; impl/flows/marginal.py and
pushforward.py for the equations; t = 0 Gaussian, t = 1 data; `path` a GaussianPath of
gaussian_path; `data` an impl.diffusion.oracle.GaussianMixture):
    gaussian_path(kind, **params) -> path   the article's Gaussian conditional path: kind "OT"
                                    (sigma_min), "VP" (beta_min, beta_max) or "VE" (sigma_lo,
                                    sigma_hi); .coefficients(t) -> (a_t, sigma_t) with mu_t = a_t x1,
                                    .derivatives(t) -> (a'_t, sigma'_t)
    psi(path, x, x1, t) = sigma_t x + mu_t(x1)        psi_inverse(path, y, x1, t) = (y - mu_t)/sigma_t
    psi_dot(path, x, x1, t) = sigma'_t x + mu'_t(x1)  (Theorem 3's psi'_t)
    path_conditional_field(path, y, x1, t) = sigma'_t/sigma_t (y - mu_t(x1)) + mu'_t(x1)
                                    (Theorem 3's result, u_t(y|x1))
    middle_member_as_written(path, y, x1, t) = psi'_t(sigma'_t y + mu'_t)   (the proof's middle
                                    member as the article writes it)
    conditional_log_density(path, x, x1, t) = log N(x; mu_t(x1), sigma_t^2 I)
    marginal_log_density(path, data, x, t) = log p_t(x)     marginal_field(path, data, x, t) = u_t(x)
                                    (Theorem 1's marginals of mixture data q)
    push_forward_as_written(log_p0, inverse, x) = p_0(phi^-1(x)) det[d phi^-1/dx] per row, without
                                    an absolute value (the article's push-forward, FLOW-13)

A Coupling(mask, weights, scale) is the affine coupling of impl/flows/coupling.py with these
parameters: mask a (d,) tensor of zeros and ones (1: the coordinate conditions, 0: it is
transformed); weights [(W1, b1), (W2, b2), (W3, b3)], float64, of the conditioner
a(u) = W3 tanh(W2 tanh(W1 u + b1) + b2) + b3 applied to u = mask * x, W3 of 2d rows; on the free
coordinates the log-scale is s = scale * tanh(a[:d]) and the shift t = a[d:]:
    y = mask x + (1 - mask) (x exp(s) + t),   log|det dy/dx| = sum over free coordinates of s.
A Permutation(perm) maps x to x[:, perm].

Adapters: `reference` (impl/flows), and the peers `zuko` (zuko's GeneralCouplingTransform / RealNVP,
PermutationTransform, lazy Flow with a DiagNormal base) and `normflows` (normflows'
MaskedAffineFlow, Permute, NormalizingFlow with a DiagGaussian base). Both peers get the same
function from the same parameters (the mapping is in their `build`; test_flows_peers.py checks
it against the reference, to rounding); their conventions where they differ from ours:
- zuko's MonotonicAffineTransform takes an unconstrained a and uses the log-scale
  a / (1 + |a| / 6.908) (a soft clamp to (-log 1e3, log 1e3)), not scale * tanh(a): its hyper
  network is followed by the inverse of that clamp applied to scale * tanh(a), so its own clamp
  gives back s (to rounding). zuko's MLP takes the conditioning coordinates only (W1's columns of
  the free coordinates, which multiply zeros, are dropped) and emits (shift, scale) interleaved
  per free coordinate. A coupling without conditioning coordinates (d = 1) is zuko's
  ElementWiseTransform with the constant parameters of our conditioner at u = 0.
- normflows' layers run from the base to the data: NormalizingFlow.log_prob applies each layer's
  `inverse`, and MaskedAffineFlow's inverse is (y - t) exp(-s). Our layer is its inverse with
  s' = -s and t' = -t exp(-s) (two small modules on our conditioner), and the layer list is
  reversed. A Permute layer gets perm = argsort(ours) so that its inverse is our permutation.
Peer libraries are imported inside the methods only. The peers keep the reference's training,
solver and full-text functions (neither library has flow matching or these paths; their flows are
not impl's Flow, which `train` takes): FLOW-09..FLOW-15 are not asked of them.

TOOLS: the impl code the flows properties call directly, as inputs (models, data, maps).
"""

import math
from dataclasses import dataclass

import torch

from impl.flows import cnf, coupling, marginal, matching, pushforward
from properties.adapters import Peer, late

F64 = torch.float64

TOOLS = {
    "impl.flows.matching.VelocityMLP": "the velocity network (an MLP of (x, t)): the model "
    "train_rectified_flow fits and the random fields v of FLOW-05/FLOW-11",
    "impl.flows.toy.two_moons": "the 2-D toy data of FLOW-09",
    "impl.flows.pushforward.reflection": "an orientation-reversing map the push-forward formula "
    "is evaluated on (FLOW-13's input)",
    "impl.flows.pushforward.coupling_inverse": "the inverse of a 2-D affine coupling with a "
    "negative scale, another map the push-forward formula is evaluated on (FLOW-13's input)",
}


@dataclass(frozen=True)
class Coupling:
    """An affine coupling's parameters (see the module docstring)."""

    mask: torch.Tensor
    weights: tuple
    scale: float


@dataclass(frozen=True)
class Permutation:
    """A fixed permutation x -> x[:, perm]."""

    perm: torch.Tensor


def conditioner(weights):
    """The conditioner network a(u) of a Coupling's weights, a float64 torch module."""
    (w1, b1), (w2, b2), (w3, b3) = weights
    net = torch.nn.Sequential(
        torch.nn.Linear(w1.shape[1], w1.shape[0]), torch.nn.Tanh(),
        torch.nn.Linear(w2.shape[1], w2.shape[0]), torch.nn.Tanh(),
        torch.nn.Linear(w3.shape[1], w3.shape[0]),
    ).to(F64)  # fmt: skip
    _load(net, weights)
    return net


def _load(net, weights):
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, (w, b) in zip(linears, weights, strict=True):
            linear.weight.copy_(w)
            linear.bias.copy_(b)


def random_layers(d, n_layers, width, scale, generator, gains=None):
    """Parameters of a RealNVP-shaped flow (as impl.flows.coupling.realnvp): n_layers couplings
    with alternating half masks (the even coordinates condition first; d = 1: all free), a random
    permutation after each when d > 1; weights uniform in +-1/sqrt(fan in) (torch's Linear
    default) times gains[k] for the k-th weight or bias tensor (6 per coupling; None: 1)."""
    layers, k = [], 0
    for i in range(n_layers):
        mask = torch.zeros(d, dtype=F64)
        mask[i % 2 :: 2] = 1 if d > 1 else 0
        weights = []
        for fan_in, fan_out in ((d, width), (width, width), (width, 2 * d)):
            bound = 1 / math.sqrt(fan_in)
            pair = []
            for shape in ((fan_out, fan_in), (fan_out,)):
                u = torch.rand(shape, generator=generator, dtype=F64)
                pair.append((2 * u - 1) * bound * (1.0 if gains is None else gains[k]))
                k += 1
            weights.append(tuple(pair))
        layers.append(Coupling(mask, tuple(weights), float(scale)))
        if d > 1:
            layers.append(Permutation(torch.randperm(d, generator=generator)))
    return layers


def _seeded(generator):
    """A global-RNG seed drawn from generator (None: a fixed one)."""
    if generator is None:
        return 0
    return int(torch.randint(0, 2**31, (1,), generator=generator))


class Reference:
    """The project's implementation, impl/flows (looked up at call time, so that the rejected
    variants that patch impl/flows reach it)."""

    @staticmethod
    def build(layers):
        built = []
        for spec in layers:
            if isinstance(spec, Permutation):
                built.append(coupling.Permutation(spec.perm))
                continue
            layer = coupling.AffineCoupling(spec.mask, spec.weights[0][0].shape[0], spec.scale)
            _load(layer.net, spec.weights)
            built.append(layer)
        return coupling.Flow(built)

    @staticmethod
    def realnvp(d, n_layers, width, generator):
        return coupling.realnvp(d, n_layers, width, generator)

    @staticmethod
    def forward(flow, x):
        return flow(x)

    @staticmethod
    def inverse(flow, z):
        return flow.inverse(z)

    @staticmethod
    def log_prob(flow, x):
        return flow.log_prob(x)

    @staticmethod
    def sample(flow, n, d, generator):
        return flow.sample(n, d, generator)

    push = late(cnf, "push")
    log_density = late(cnf, "log_density")
    ot_path = late(matching, "ot_path")
    conditional_field = late(matching, "conditional_field")
    ot_conditional_field = late(matching, "ot_conditional_field")
    ot_marginal_field = late(matching, "ot_marginal_field")
    ot_marginal_log_density = late(matching, "ot_marginal_log_density")
    rectified_flow_pair = late(matching, "rectified_flow_pair")
    euler_t = late(matching, "euler_t")
    euler_sigma = late(matching, "euler_sigma")
    t_velocity_as_sigma = late(matching, "t_velocity_as_sigma")
    shift = late(matching, "shift")
    train = late(coupling, "train")
    train_rectified_flow = late(matching, "train_rectified_flow")
    ode_solve = late("impl.ode", "ode_solve")

    @staticmethod
    def gaussian_path(kind, **params):
        return {"OT": marginal.OT, "VP": marginal.VP, "VE": marginal.VE}[kind](**params)

    psi = late(marginal, "psi")
    psi_inverse = late(marginal, "psi_inverse")
    psi_dot = late(marginal, "psi_dot")
    path_conditional_field = late(marginal, "conditional_field")
    middle_member_as_written = late(marginal, "middle_member_as_written")
    conditional_log_density = late(marginal, "conditional_log_density")
    marginal_log_density = late(marginal, "marginal_log_density")
    marginal_field = late(marginal, "marginal_field")
    push_forward_as_written = late(pushforward, "push_forward_as_written")


# zuko


ZUKO_SLOPE = 1e-3  # MonotonicAffineTransform's default minimum slope: |log-scale| < -log(slope)


class _UnclampZuko(torch.nn.Module):
    """After our conditioner (rows reordered to zuko's interleaved (shift, a) per free
    coordinate): a -> g^-1(scale tanh(a)), g^-1(l) = l / (1 - |l| / L), L = -log(slope), the
    inverse of zuko's soft clamp g(a) = a / (1 + |a| / L)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, phi):
        limit = -math.log(ZUKO_SLOPE)
        log_scale = self.scale * torch.tanh(phi[..., 1::2])
        out = phi.clone()
        out[..., 1::2] = log_scale / (1 - log_scale.abs() / limit)
        return out


class Zuko(Reference):
    """zuko (RealNVP's GeneralCouplingTransform with MonotonicAffineTransform)."""

    @staticmethod
    def _base(d):
        from zuko.distributions import DiagNormal
        from zuko.lazy import UnconditionalDistribution

        return UnconditionalDistribution(
            DiagNormal, loc=torch.zeros(d, dtype=F64), scale=torch.ones(d, dtype=F64), buffer=True
        )

    @staticmethod
    def _coupling(spec):
        from zuko.flows import GeneralCouplingTransform
        from zuko.flows.gaussianization import ElementWiseTransform

        mask = spec.mask.bool()
        a_idx, b_idx = mask.nonzero()[:, 0], (~mask).nonzero()[:, 0]
        d = mask.numel()
        (w1, b1), (w2, b2), (w3, b3) = spec.weights
        if b_idx.numel() == 0:
            return None  # nothing transformed: the identity
        rows = torch.stack([b_idx + d, b_idx], dim=1).reshape(-1)  # (shift, a) per free coordinate
        if a_idx.numel() == 0:
            layer = ElementWiseTransform(d).to(F64)
            phi = _UnclampZuko(spec.scale)(
                conditioner(spec.weights)(torch.zeros(1, d, dtype=F64))[:, rows]
            )
            with torch.no_grad():
                layer.phi[0].copy_(phi[0, 0::2])
                layer.phi[1].copy_(phi[0, 1::2])
            return layer
        width = w1.shape[0]
        layer = GeneralCouplingTransform(
            features=d, mask=mask, hidden_features=(width, width), activation=torch.nn.Tanh
        ).to(F64)
        linears = [m for m in layer.hyper if hasattr(m, "weight")]
        mapped = [(w1[:, a_idx], b1), (w2, b2), (w3[rows], b3[rows])]
        with torch.no_grad():
            for linear, (w, b) in zip(linears, mapped, strict=True):
                linear.weight.copy_(w)
                linear.bias.copy_(b)
        layer.hyper = torch.nn.Sequential(layer.hyper, _UnclampZuko(spec.scale))
        return layer

    @staticmethod
    def build(layers):
        from zuko.lazy import Flow, UnconditionalTransform
        from zuko.transforms import PermutationTransform

        transforms, d = [], None
        for spec in layers:
            if isinstance(spec, Permutation):
                d = spec.perm.numel()
                transforms.append(
                    UnconditionalTransform(PermutationTransform, spec.perm.long(), buffer=True)
                )
                continue
            d = spec.mask.numel()
            layer = Zuko._coupling(spec)
            if layer is not None:
                transforms.append(layer)
        return Flow(transforms, Zuko._base(d))

    @staticmethod
    def realnvp(d, n_layers, width, generator):
        import zuko

        with torch.random.fork_rng():
            torch.manual_seed(_seeded(generator))
            flow = zuko.flows.RealNVP(
                features=d, transforms=n_layers, hidden_features=(width, width)
            )
        return flow.to(F64)

    @staticmethod
    def forward(flow, x):
        return flow().transform.call_and_ladj(x)

    @staticmethod
    def inverse(flow, z):
        return flow().transform.inv.call_and_ladj(z)

    @staticmethod
    def log_prob(flow, x):
        return flow().log_prob(x)

    @staticmethod
    def sample(flow, n, d, generator):
        with torch.random.fork_rng():
            torch.manual_seed(_seeded(generator))
            return flow().sample((n,))


# normflows


class _NegLogScale(torch.nn.Module):
    """s' = -scale tanh(a[:d]) of our conditioner a (normflows' s network)."""

    def __init__(self, net, scale, d):
        super().__init__()
        self.net, self.scale, self.d = net, scale, d

    def forward(self, u):
        return -self.scale * torch.tanh(self.net(u)[:, : self.d])


class _NegShift(torch.nn.Module):
    """t' = -t exp(-s) of our conditioner (normflows' t network)."""

    def __init__(self, net, scale, d):
        super().__init__()
        self.net, self.scale, self.d = net, scale, d

    def forward(self, u):
        a = self.net(u)
        return -a[:, self.d :] * torch.exp(-self.scale * torch.tanh(a[:, : self.d]))


class Normflows(Reference):
    """normflows (MaskedAffineFlow, Permute, NormalizingFlow)."""

    @staticmethod
    def build(layers):
        import normflows as nf

        nf_layers, d = [], None
        for spec in layers:
            if isinstance(spec, Permutation):
                d = spec.perm.numel()
                layer = nf.flows.Permute(d, mode="shuffle")
                layer.perm.copy_(torch.argsort(spec.perm))
                layer.inv_perm.copy_(spec.perm)
            else:
                d = spec.mask.numel()
                net = conditioner(spec.weights)
                layer = nf.flows.MaskedAffineFlow(
                    spec.mask.to(F64),
                    _NegShift(net, spec.scale, d),
                    _NegLogScale(net, spec.scale, d),
                )
            nf_layers.append(layer)
        base = nf.distributions.DiagGaussian(d, trainable=False)
        return nf.NormalizingFlow(base, list(reversed(nf_layers))).to(F64)

    @staticmethod
    def realnvp(d, n_layers, width, generator):
        """normflows' RealNVP example: MaskedAffineFlow with alternating masks b and 1 - b, s and
        t its MLPs [d, width, width, d] (random last layers, not init_zeros: a non-trivial map)."""
        import normflows as nf

        with torch.random.fork_rng():
            torch.manual_seed(_seeded(generator))
            b = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(d)])
            layers = []
            for i in range(n_layers):
                s = nf.nets.MLP([d, width, width, d])
                t = nf.nets.MLP([d, width, width, d])
                layers.append(nf.flows.MaskedAffineFlow(b if i % 2 == 0 else 1 - b, t, s))
            flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(d, trainable=False), layers)
        return flow.to(F64)

    @staticmethod
    def forward(flow, x):
        return flow.inverse_and_log_det(x)

    @staticmethod
    def inverse(flow, z):
        return flow.forward_and_log_det(z)

    @staticmethod
    def log_prob(flow, x):
        return flow.log_prob(x)

    @staticmethod
    def sample(flow, n, d, generator):
        with torch.random.fork_rng():
            torch.manual_seed(_seeded(generator))
            return flow.sample(n)[0]


ADAPTERS = {"reference": Reference, "zuko": Zuko, "normflows": Normflows}

_NO_MATCHING = "the library has no flow-matching code (paths, fields, Euler samplers, shift)"
_ZUKO_CNF = (
    "zuko's CNF (FreeFormJacobianTransform) integrates with an adaptive solver (atol, rtol); "
    "FLOW-03's properties fix the step count n and bound the error by Richardson between n and 2n"
)
_FULL_TEXT = {
    "FLOW-09": "the comparison trains its flow with `train`, impl's maximum-likelihood loop on "
    "impl's Flow (the library has no training loop), against the reference's flow matching",
    **{
        c: "the flow-matching article's Gaussian paths, marginal fields and push-forward formula: "
        "the library has none"
        for c in ("FLOW-10", "FLOW-11", "FLOW-12", "FLOW-13", "FLOW-14", "FLOW-15")
    },
}
_MATCHING = ("FLOW-04", "FLOW-05", "FLOW-06", "FLOW-07", "FLOW-08")
PEERS = {
    "zuko": Peer(
        library="zuko",
        claims=("FLOW-01", "FLOW-02"),
        not_asked={"FLOW-03": _ZUKO_CNF} | {c: _NO_MATCHING for c in _MATCHING} | _FULL_TEXT,
    ),
    "normflows": Peer(
        library="normflows",
        claims=("FLOW-01", "FLOW-02"),
        not_asked={"FLOW-03": "the library has no continuous normalizing flow"}
        | {c: _NO_MATCHING for c in _MATCHING}
        | _FULL_TEXT,
    ),
}
