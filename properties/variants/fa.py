"""Rejected variants of the FlashAttention claims (FA-*)."""

import math

import torch

from impl.attention import reference, softmax, tiled
from properties.variants import variant


@variant(
    "FA-01",
    name="merge-without-rescale",
    why="merge adds the parts' sums l_a + l_b without the factors e^{m_a - m}, e^{m_b - m}",
)
def _(mp):
    def merge(a, b):
        (m_a, l_a), (m_b, l_b) = a, b
        return torch.maximum(m_a, m_b), l_a + l_b

    mp.setattr(softmax, "merge", merge)


@variant(
    "FA-02",
    name="online-normaliser-not-rescaled",
    why="the online recurrence d_j = d_{j-1} + e^{x_j - m_j}: the old sum is not moved to the "
    "new max",
)
def _(mp):
    def online_stats(x):
        m = torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype)
        d = torch.zeros(x.shape[:-1], dtype=x.dtype)
        for j in range(x.shape[-1]):
            m = torch.maximum(m, x[..., j])
            d = d + torch.exp(x[..., j] - softmax._finite(m))
        return m, d

    mp.setattr(softmax, "online_stats", online_stats)


@variant(
    "FA-03",
    name="accumulator-not-rescaled",
    why="the running sum l and accumulator A keep their old max: no factor e^{m - m'} when a "
    "later key block raises a row's max",
)
def _(mp):
    mp.setattr(tiled, "rescale", lambda m, m_new: torch.ones_like(m))


@variant(
    "FA-04",
    name="backward-without-row-correction",
    why="dS = P * dP, the tempting shortcut that drops D = rowsum(dO * O)",
)
def _(mp):
    mp.setattr(tiled, "delta", lambda do, o: torch.zeros_like(o[..., :1]))


@variant(
    "FA-05",
    name="tiled-without-max-subtraction",
    why="blocks exponentiate the raw scores (running max fixed at 0): exact for moderate logits, "
    "overflows past 88 in float32",
)
def _(mp):
    def forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k, io=None):
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        s = (q.to(acc) @ k.to(acc).transpose(-2, -1)) * scale
        mask = reference.causal_mask(q.shape[2], k.shape[2]) if causal else None
        if key_padding_mask is not None:
            pad = reference.padding_mask(key_padding_mask)
            mask = pad if mask is None else mask & pad
        e = torch.exp(s) if mask is None else torch.exp(s).masked_fill(~mask, 0.0)
        l = e.sum(-1, keepdim=True)
        o = torch.where(l > 0, (e @ v.to(acc)) / torch.where(l > 0, l, 1.0), 0.0)
        return o, torch.log(l)[..., 0]

    mp.setattr(tiled, "forward", forward)


@variant(
    "FA-05",
    name="lazy-rescaling-without-threshold",
    why="the running max is set by the first key block a row sees and never moved (tau = inf): "
    "a later block whose scores exceed it by more than 128 (base 2) overflows float32",
)
def _(mp):
    mp.setattr(tiled, "TAU", math.inf)


@variant(
    "FA-06",
    name="scores-materialised",
    why="one block of all queries and all keys: the whole N x N score matrix at once",
)
def _(mp):
    original = tiled.forward

    def forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k, io=None):
        n_q, n_k = q.shape[2], k.shape[2]
        return original(q, k, v, causal, key_padding_mask, scale, n_q, n_k, io)

    mp.setattr(tiled, "forward", forward)


@variant(
    "FA-07",
    name="query-blocks-ignored",
    why="the loop streams K and V once per query row (block_q unused): Theta(N^2 d) reads, not "
    "Theta(N^2 d^2 / M)",
)
def _(mp):
    original = tiled.forward

    def forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k, io=None):
        return original(q, k, v, causal, key_padding_mask, scale, 1, block_k, io)

    mp.setattr(tiled, "forward", forward)
