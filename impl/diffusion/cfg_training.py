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


class EpsMLP(torch.nn.Module):
    def __init__(self, d, n_classes, width=128):
        super().__init__()
        self.n_classes = n_classes
        self.embed = torch.nn.Embedding(n_classes + 1, 16)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 2 + 16, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, d),
        )  # fmt: skip

    def forward(self, x, a, c):
        """x: (n, d); a = abar_t: (n,); c: labels in 0..n_classes (n_classes = null)."""
        features = torch.cat([x, a.sqrt()[:, None], (1 - a).sqrt()[:, None], self.embed(c)], dim=1)
        return self.net(features)


def drop_labels(y, p_uncond, n_classes, generator):
    """Condition dropout: each label of y becomes the null label n_classes with probability
    p_uncond (one uniform draw per label from `generator`)."""
    drop = torch.rand(y.shape[0], generator=generator) < p_uncond
    return torch.where(drop, torch.full_like(y, n_classes), y)


def train(data, abar, p_uncond, steps, generator, batch=512, lr=2e-3):
    """(1) on samples of the oracle mixture `data`, float32; returns the trained network."""
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond: must lie in [0, 1], got {p_uncond!r}")
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
