"""Normalizing flows with affine coupling layers (RealNVP, Dinh et al. 2017; seed article 5).

(1) change of variables   z = f(x):  log p(x) = log pi(f(x)) + log |det df/dx|,  pi = N(0, I)
(2) composition           f = f_L o ... o f_1:  log |det df/dx| = sum_l log |det df_l/dx_{l-1}|
(3) affine coupling       with a binary mask b and conditioner nets s, t of b * x:
                          y = b x + (1 - b) (x exp(s(b x)) + t(b x)),  log |det| = sum_{b = 0} s(b x)
                          inverse  x = b y + (1 - b) (y - t(b y)) exp(-s(b y))
(4) sampling              x = f^{-1}(z), z ~ pi: one pass through the layers, in reverse
"""

import math

import torch


class AffineCoupling(torch.nn.Module):
    """(3); s is bounded by tanh so that exp(s) stays in [e^-scale, e^scale]."""

    def __init__(self, mask, width=64, scale=2.0):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.float64)
        if mask.ndim != 1 or not torch.all((mask == 0) | (mask == 1)):
            raise ValueError("mask: expected a 1-D tensor of zeros and ones")
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

    def _check(self, x):
        if x.ndim != 2 or x.shape[1] != self.mask.numel():
            raise ValueError(f"x: expected shape (n, {self.mask.numel()}), got {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        s, t = self._st(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t), s.sum(-1)

    def inverse(self, y):
        self._check(y)
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * (y - t) * torch.exp(-s), -s.sum(-1)


class Permutation(torch.nn.Module):
    """A fixed permutation of the coordinates: log |det| = 0."""

    def __init__(self, perm):
        super().__init__()
        perm = torch.as_tensor(perm)
        if sorted(perm.tolist()) != list(range(perm.numel())):
            raise ValueError(f"perm: not a permutation of 0..{perm.numel() - 1}")
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x):
        return x[:, self.perm], torch.zeros(x.shape[0], dtype=x.dtype)

    def inverse(self, y):
        return y[:, self.inv], torch.zeros(y.shape[0], dtype=y.dtype)


class Flow(torch.nn.Module):
    """(1), (2), (4) for a stack of invertible layers (each returns (output, log|det|))."""

    def __init__(self, layers):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)

    def _check(self, x):
        d = next((m.mask.numel() for m in self.layers if isinstance(m, AffineCoupling)), None)
        if x.ndim != 2 or (d is not None and x.shape[1] != d):
            raise ValueError(f"x: expected shape (n, {d}), got {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        logdet = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z):
        self._check(z)
        logdet = torch.zeros(z.shape[0], dtype=z.dtype)
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            logdet = logdet + ld
        return z, logdet

    def log_prob(self, x):
        z, logdet = self(x)
        d = z.shape[1]
        return -0.5 * (z**2).sum(-1) - 0.5 * d * math.log(2 * math.pi) + logdet

    def sample(self, n, d, generator):
        return self.inverse(torch.randn(n, d, generator=generator, dtype=torch.float64))[0]


def realnvp(d, n_layers=6, width=64, generator=None):
    """Alternating half masks with a random permutation between couplings (d >= 1)."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"d: must be a positive integer, got {d!r}")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers: must be a positive integer, got {n_layers!r}")
    if generator is not None:
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    layers = []
    for i in range(n_layers):
        mask = torch.zeros(d)
        mask[i % 2 :: 2] = 1 if d > 1 else 0
        layers.append(AffineCoupling(mask, width))
        if d > 1:
            layers.append(Permutation(torch.randperm(d, generator=generator)))
    return Flow(layers)


def train(flow, sample_data, steps, generator, batch=512, lr=2e-3):
    """Maximum likelihood: minimise -mean log p(x) over batches from sample_data(n, generator)."""
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = -flow.log_prob(sample_data(batch, generator)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses
