"""Naive (standard) attention, the specification every other implementation is checked against.

    S = scale * Q K^T            (N_q x N_k; scale = 1/sqrt(d) by default)
    P = softmax(S) row-wise      over the keys a query may see (the mask)
    O = P V,   L = logsumexp(S) per row

Shapes: q (B, H, N_q, d), k (B, H, N_k, d), v (B, H, N_k, d_v); o (B, H, N_q, d_v), L (B, H, N_q).
`mask` is a boolean tensor broadcastable to (B, H, N_q, N_k), True where query i may see key j.
A row that sees no key has O = 0 and L = -inf (not NaN).

Causal alignment, here and in impl.attention.tiled: bottom-right. Query i sees key j iff
j <= i + (N_k - N_q), so the last query sees every key (the convention of decoding with a cache and
of FlashAttention >= 2.1). With N_q = N_k this is the usual lower triangle; with N_q > N_k the first
N_q - N_k queries see nothing. torch's SDPA is_causal=True is top-left (j <= i) instead.

`subtract_max=False` computes softmax without subtracting the row max: the overflow-prone variant
kept as the negative control of FA-05.
"""

import math

import torch


def attention(q, k, v, mask=None, scale=None, subtract_max=True):
    """(O, L) of standard attention, materialising S and P (O(N_q N_k) memory)."""
    check(q, k, v)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * (q @ k.transpose(-2, -1))
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf)
    m = s.amax(-1, keepdim=True) if subtract_max else torch.zeros_like(s[..., :1])
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(s - m)
    l = p.sum(-1, keepdim=True)
    seen = l > 0
    o = torch.where(seen, (p @ v) / torch.where(seen, l, torch.ones_like(l)), torch.zeros_like(l))
    lse = torch.where(seen, m + torch.log(torch.where(seen, l, torch.ones_like(l))), -torch.inf)
    return o, lse[..., 0]


def causal_mask(n_q, n_k, device=None):
    """Bottom-right causal mask (n_q, n_k): key j is visible to query i iff j <= i + n_k - n_q."""
    i = torch.arange(n_q, device=device)[:, None]
    j = torch.arange(n_k, device=device)[None, :]
    return j <= i + (n_k - n_q)


def padding_mask(key_padding_mask):
    """(B, N_k) boolean, True for real keys -> a mask broadcastable to (B, H, N_q, N_k)."""
    return key_padding_mask[:, None, None, :]


def block_diagonal_mask(cu_seqlens_q, cu_seqlens_k, causal=False):
    """Mask (total_q, total_k) of packed sequences: sequence s owns rows cu_q[s]:cu_q[s+1] and
    columns cu_k[s]:cu_k[s+1]; with `causal`, bottom-right causal within each sequence."""
    total_q, total_k = int(cu_seqlens_q[-1]), int(cu_seqlens_k[-1])
    mask = torch.zeros(total_q, total_k, dtype=torch.bool)
    for s in range(len(cu_seqlens_q) - 1):
        q0, q1 = int(cu_seqlens_q[s]), int(cu_seqlens_q[s + 1])
        k0, k1 = int(cu_seqlens_k[s]), int(cu_seqlens_k[s + 1])
        mask[q0:q1, k0:k1] = causal_mask(q1 - q0, k1 - k0) if causal else True
    return mask


def check(q, k, v):
    """Shapes and dtypes shared by every attention implementation here."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ValueError(f"{name}: expected a 4-D tensor (B, H, N, d), got {_shape(t)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name}: expected a floating dtype, got {t.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v: mixed dtypes {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"k: head dim {k.shape[-1]} differs from q's {q.shape[-1]}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"v: shape {tuple(v.shape)} does not match k's {tuple(k.shape)}")
    if q.shape[:2] != k.shape[:2]:
        raise ValueError(f"k: batch and heads {tuple(k.shape[:2])} differ from q's")
    if k.shape[2] == 0:
        raise ValueError("k: N_k = 0; attention needs at least one key")


def _shape(t):
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
