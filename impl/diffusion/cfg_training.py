"""One network for classifier-free guidance: training with condition dropout (Ho & Salimans
2022; seed articles 6 and 8).

(1) loss  E_{x_0, y, t, eps} || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, c) ||^2
          with c = y, replaced by the null label (index n_classes) with probability p_uncond
          (`drop_labels`).
Minimising (1) over all networks gives eps_theta(x, t, y) = E[eps | x_t = x, y] and
eps_theta(x, t, null) = E[eps | x_t = x]: one network serves both the conditional and the
unconditional prediction, which classifier-free guidance combines. With p_uncond = 0 the null
label is never trained.
The network is a small MLP on (x, sqrt(abar_t), sqrt(1 - abar_t), label embedding).
"""

import torch

from impl import _checks
from impl.diffusion.schedules import check_abar


def _labels(name, c, n, top):
    """A 1-D integer tensor of labels in [0, top], n of them (any number if n is None)."""
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"{name}: expected a torch tensor of labels, got {type(c).__name__}")
    if c.dtype.is_floating_point or c.dtype.is_complex or c.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer labels, got {c.dtype}")
    if c.ndim != 1 or (n is not None and c.shape[0] != n):
        raise ValueError(
            f"{name}: expected shape ({n if n is not None else 'n'},), got {tuple(c.shape)}"
        )
    if c.numel() and (c.min() < 0 or c.max() > top):
        raise ValueError(
            f"{name}: labels must lie in [0, {top}], got [{int(c.min())}, {int(c.max())}]"
        )
    return c


class EpsMLP(torch.nn.Module):
    def __init__(self, d, n_classes, width=128):
        """d, n_classes and width positive integers."""
        super().__init__()
        d, n_classes = _checks.positive_int("d", d), _checks.positive_int("n_classes", n_classes)
        width = _checks.positive_int("width", width)
        self.n_classes = n_classes
        self.embed = torch.nn.Embedding(n_classes + 1, 16)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 2 + 16, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, d),
        )  # fmt: skip

    def forward(self, x, a, c):
        """x: (n, d), finite; a = abar_t: (n,) in [0, 1] (both in the network's dtype);
        c: integer labels (n,) in 0..n_classes (n_classes = null)."""
        weight = self.net[0].weight
        _checks.tensor("x", x, ndim=2)
        if x.shape[1] != weight.shape[1] - 18:
            raise ValueError(
                f"x: expected {weight.shape[1] - 18} columns, got shape {tuple(x.shape)}"
            )
        if x.dtype != weight.dtype:
            raise ValueError(f"x: dtype {x.dtype} is not the network's {weight.dtype}")
        _checks.tensor("a", a, ndim=1)
        if a.shape != x.shape[:1]:
            raise ValueError(f"a: expected shape ({x.shape[0]},), got {tuple(a.shape)}")
        if a.dtype != weight.dtype:
            raise ValueError(f"a: dtype {a.dtype} is not the network's {weight.dtype}")
        _checks.number("a", a, 0, 1)
        _labels("c", c, x.shape[0], self.n_classes)
        features = torch.cat([x, a.sqrt()[:, None], (1 - a).sqrt()[:, None], self.embed(c)], dim=1)
        return self.net(features)


def drop_labels(y, p_uncond, n_classes, generator):
    """Condition dropout: each label of y becomes the null label n_classes with probability
    p_uncond (one uniform draw per label from `generator`). y: 1-D integer labels in
    0..n_classes - 1; p_uncond in [0, 1]; generator a torch.Generator or None."""
    n_classes = _checks.positive_int("n_classes", n_classes)
    _labels("y", y, None, n_classes - 1)
    _checks.real("p_uncond", p_uncond, 0, 1)
    _checks.generator("generator", generator)
    drop = torch.rand(y.shape[0], generator=generator) < p_uncond
    return torch.where(drop, torch.full_like(y, n_classes), y)


def train(data, abar, p_uncond, steps, generator, batch=512, lr=2e-3):
    """(1) on samples of the oracle mixture `data` (with .d, .n_classes and .sample(n,
    generator)), float32; returns the trained network. abar as in schedules.check_abar;
    p_uncond in [0, 1]; steps and batch positive integers; lr > 0; generator a torch.Generator
    or None."""
    _checks.real("p_uncond", p_uncond, 0, 1)
    if not all(hasattr(data, attr) for attr in ("d", "n_classes", "sample")):
        raise TypeError(
            f"data: expected a data set with .d, .n_classes and .sample(n, generator), "
            f"got {type(data).__name__}"
        )
    check_abar(abar)
    steps, batch = _checks.positive_int("steps", steps), _checks.positive_int("batch", batch)
    _checks.real("lr", lr, 0, lo_open=True)
    _checks.generator("generator", generator)
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    model = EpsMLP(data.d, data.n_classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    abar = torch.as_tensor(abar, dtype=torch.float32)
    for _ in range(steps):
        x0, y = data.sample(batch, generator)
        t = torch.randint(0, abar.numel(), (batch,), generator=generator)
        a = abar[t]
        eps = torch.randn(batch, data.d, generator=generator)
        x_t = a.sqrt()[:, None] * x0.float() + (1 - a).sqrt()[:, None] * eps
        c = drop_labels(y, p_uncond, data.n_classes, generator)
        loss = ((model(x_t, a, c) - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model
