"""Bad-input specs: impl/diffusion/ schedules, ddpm, ddim, guidance."""

import torch

from properties.badinput import spec
from properties.badinput.wrong import (
    also,
    mismatched,
    not_a_number,
    not_a_tensor,
    not_finite,
    outside,
)


def randn(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


spec(
    "impl.diffusion.ddpm.q_sample",
    valid=lambda: dict(x0=randn(4, 3), a=0.5, eps=randn(4, 3)),
    wrong=dict(
        x0=[not_finite, not_a_tensor],
        a=[outside(0, 1), not_finite, not_a_number],
        eps=[also("x0")(mismatched()), not_finite, not_a_tensor],
    ),
)
