"""Normalizing flows with affine coupling layers (RealNVP, Dinh et al. 2017; seed article 5).

(1) change of variables   z = f(x):  log p(x) = log pi(f(x)) + log |det df/dx|,  pi = N(0, I)
(2) composition           f = f_L o ... o f_1:  log |det df/dx| = sum_l log |det df_l/dx_{l-1}|
(3) affine coupling       with a binary mask b and conditioner nets s, t of b * x:
                          y = b x + (1 - b) (x exp(s(b x)) + t(b x)),  log |det| = sum_{b = 0} s(b x)
                          inverse  x = b y + (1 - b) (y - t(b y)) exp(-s(b y))
(4) sampling              x = f^{-1}(z), z ~ pi: one pass through the layers, in reverse

Inputs: a batch is a finite float tensor of shape (n, d), n >= 1, d the layers' dimension (float64
for the coupling networks); counts are Python or numpy integers; a generator is a
torch.Generator or None.
"""

import math

import numpy as np
import torch

from impl import _checks


def _batch(name, x, d=None, dtype=None):
    """`x` as a batch: a finite real floating tensor of shape (n, d), n >= 1 and d >= 1 (d given:
    exactly d columns; dtype given: exactly that dtype)."""
    _checks.batch(name, x, ndim=2)
    if x.shape[1] == 0 or (d is not None and x.shape[1] != d):
        raise ValueError(
            f"{name}: expected shape (n, {d or 'd'}) with n >= 1, got {tuple(x.shape)}"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: expected {dtype} (the network's dtype), got {x.dtype}")
    return x


def _dimension(layer):
    """The number of coordinates a coupling or permutation layer acts on (None: not known)."""
    if isinstance(layer, AffineCoupling):
        return layer.mask.numel()
    if isinstance(layer, Permutation):
        return layer.perm.numel()
    return None


class AffineCoupling(torch.nn.Module):
    """(3); s is bounded by tanh so that exp(s) stays in [e^-scale, e^scale].

    mask: a non-empty 1-D sequence of zeros and ones (1: the coordinate conditions, 0: it is
    transformed); width: a positive integer; scale: a finite number >= 0 (0: additive coupling)."""

    def __init__(self, mask, width=64, scale=2.0):
        super().__init__()
        mask = _checks.vector("mask", mask, "biuf")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask: expected a 1-D tensor of zeros and ones")
        width = _checks.positive_int("width", width)
        scale = float(_checks.scalar("scale", scale, 0))
        mask = torch.as_tensor(mask, dtype=torch.float64)
        self.register_buffer("mask", mask)
        d = mask.numel()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d, width), torch.nn.Tanh(),
            torch.nn.Linear(width, width), torch.nn.Tanh(),
            torch.nn.Linear(width, 2 * d),
        ).to(torch.float64)  # fmt: skip
        self.scale = scale

    def _st(self, x_masked):
        s, t = self.net(x_masked).chunk(2, dim=-1)
        free = 1 - self.mask
        return self.scale * torch.tanh(s) * free, t * free

    def _check(self, x, name="x"):
        _batch(name, x, self.mask.numel(), self.mask.dtype)

    def forward(self, x):
        """x: a finite float64 batch (n, d): (y, log|det dy/dx|)."""
        self._check(x)
        s, t = self._st(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y):
        """y: a finite float64 batch (n, d): (x, log|det dx/dy|)."""
        self._check(y, "y")
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * (y - t) * torch.exp(-s), -s.sum(-1)


class Permutation(torch.nn.Module):
    """A fixed permutation of the coordinates: log |det| = 0. perm: the integers 0..d-1 (d >= 1),
    each once, in a list, tuple, array or integer tensor."""

    def __init__(self, perm):
        super().__init__()
        a = _checks.vector("perm", perm, "biuf")
        if a.dtype.kind not in "iu":
            raise TypeError(f"perm: expected integers, got dtype {a.dtype}")
        if sorted(a.tolist()) != list(range(a.size)):
            raise ValueError(f"perm: not a permutation of 0..{a.size - 1}")
        perm = torch.as_tensor(a, dtype=torch.long)
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x):
        """x: a finite float batch (n, d), d = len(perm)."""
        _batch("x", x, self.perm.numel())
        return x[:, self.perm], torch.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, y):
        """y: a finite float batch (n, d), d = len(perm)."""
        _batch("y", y, self.perm.numel())
        return y[:, self.inv], torch.zeros(y.shape[0], dtype=y.dtype)


class Flow(torch.nn.Module):
    """(1), (2), (4) for a stack of invertible layers (each returns (output, log|det|)).

    layers: a sequence of torch modules with an `inverse`, of one dimension d (no layers: the
    identity map, of any dimension)."""

    def __init__(self, layers):
        super().__init__()
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"layers: expected a sequence of layers, got {type(layers).__name__}")
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, torch.nn.Module) or not callable(
                getattr(layer, "inverse", None)
            ):
                raise TypeError(
                    f"layers[{i}]: expected an invertible torch module (with an inverse), "
                    f"got {type(layer).__name__}"
                )
        dims = {_dimension(m) for m in layers} - {None}
        if len(dims) > 1:
            raise ValueError(f"layers: the layers act on different dimensions {sorted(dims)}")
        self.layers = torch.nn.ModuleList(layers)

    def _check(self, x, name="x"):
        d = next((_dimension(m) for m in self.layers if _dimension(m) is not None), None)
        dtype = next((m.mask.dtype for m in self.layers if isinstance(m, AffineCoupling)), None)
        _batch(name, x, d, dtype)

    def forward(self, x):
        """x: a finite batch (n, d) (float64 with coupling layers): (f(x), log|det df/dx|)."""
        self._check(x)
        logdet = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z):
        """z: a finite batch (n, d) (float64 with coupling layers): (f^-1(z), log|det|)."""
        self._check(z, "z")
        logdet = torch.zeros(z.shape[0], dtype=z.dtype)
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            logdet = logdet + ld
        return z, logdet

    def log_prob(self, x):
        """(1) for a batch x as in forward."""
        z, logdet = self(x)
        d = z.shape[1]
        return -0.5 * (z**2).sum(-1) - 0.5 * d * math.log(2 * math.pi) + logdet

    def sample(self, n, d, generator):
        """(4): n >= 1 samples of dimension d (the layers' dimension), from `generator`."""
        n, d = _checks.positive_int("n", n), _checks.positive_int("d", d)
        flow_d = next((_dimension(m) for m in self.layers if _dimension(m) is not None), d)
        if d != flow_d:
            raise ValueError(f"d: the flow's layers act on {flow_d} dimensions, got {d}")
        _checks.generator("generator", generator)
        return self.inverse(torch.randn(n, d, generator=generator, dtype=torch.float64))[0]


def realnvp(d, n_layers=6, width=64, generator=None):
    """Alternating half masks with a random permutation between couplings (d >= 1,
    n_layers >= 1, width >= 1; generator: a torch.Generator or None)."""
    d = _checks.positive_int("d", d)
    n_layers = _checks.positive_int("n_layers", n_layers)
    width = _checks.positive_int("width", width)
    if _checks.generator("generator", generator) is not None:
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    layers = []
    for i in range(n_layers):
        mask = torch.zeros(d)
        mask[i % 2 :: 2] = 1 if d > 1 else 0
        layers.append(AffineCoupling(mask, width))
        if d > 1:
            layers.append(Permutation(torch.randperm(d, generator=generator)))
    return Flow(layers)


def _data(sample_data, batch, generator, d, dtype=torch.float64):
    """A batch from sample_data(batch, generator), checked: a finite (batch, d) tensor of dtype."""
    x = sample_data(batch, generator)
    try:
        _batch("sample_data", x, d, dtype)
    except (TypeError, ValueError) as e:
        raise type(e)(
            f"{e} (sample_data must return a finite {dtype} tensor (batch, {d}))"
        ) from None
    if x.shape[0] != batch:
        raise ValueError(f"sample_data: returned {x.shape[0]} rows for batch = {batch}")
    return x


def train(flow, sample_data, steps, generator, batch=512, lr=2e-3):
    """Maximum likelihood: minimise -mean log p(x) over batches from sample_data(n, generator).

    flow: a Flow with parameters; sample_data(n, generator): a finite float64 (n, d) tensor;
    steps >= 0; generator: a torch.Generator or None; batch >= 1; lr > 0 (finite)."""
    if not isinstance(flow, Flow):
        raise TypeError(f"flow: expected an impl.flows.coupling.Flow, got {type(flow).__name__}")
    if not any(True for _ in flow.parameters()):
        raise ValueError("flow: has no parameters to train")
    _checks.function("sample_data", sample_data)
    steps = _checks.integer("steps", steps, 0)
    _checks.generator("generator", generator)
    batch = _checks.positive_int("batch", batch)
    lr = float(_checks.scalar("lr", lr, 0, lo_open=True))
    d = next((_dimension(m) for m in flow.layers if _dimension(m) is not None), None)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = -flow.log_prob(_data(sample_data, batch, generator, d)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
