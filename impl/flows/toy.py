"""Toy 2-D data made here (nothing is downloaded): two interleaved half moons."""

import math

import torch

from impl import _checks


def two_moons(n, generator, noise=0.08):
    """n >= 1 points: half on the upper moon (angle in [0, pi]), half on the lower, shifted moon,
    plus N(0, noise^2) jitter (noise >= 0, finite); float64, shape (n, 2), roughly centred and of
    unit scale. generator: a torch.Generator or None."""
    n = _checks.positive_int("n", n)
    _checks.generator("generator", generator)
    noise = float(_checks.scalar("noise", noise, 0))
    upper = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
    angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.5
    return points + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
