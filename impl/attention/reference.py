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

Inputs are checked (check): q, k, v finite real floating tensors of one dtype with N_k >= 1 (a
nan or inf in them would come out as a NaN row, or as a row that reads as masked in the tiled
pass); scale None or a finite real number; flags bool. Errors name the argument as the caller
spelled it (`mask` here, `key_padding_mask` in padding_mask and impl.attention.tiled).
"""

import math

import torch

from impl._checks import flag, integer, scalar, tensor


def attention(q, k, v, mask=None, scale=None, subtract_max=True):
    """(O, L) of standard attention, materialising S and P (O(N_q N_k) memory).

    q, k, v as in check(); mask None or a bool tensor broadcastable to (B, H, N_q, N_k) (and not
    beyond it); scale None (1/sqrt(d)) or a finite real number; subtract_max a bool."""
    check(q, k, v)
    if mask is not None:
        _mask("mask", mask, (*q.shape[:3], k.shape[2]))
    scale = _scale("scale", scale, q.shape[-1])
    subtract_max = flag("subtract_max", subtract_max)
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
    """Bottom-right causal mask (n_q, n_k): key j is visible to query i iff j <= i + n_k - n_q.
    n_q, n_k integers >= 0; device None, a str or a torch.device."""
    n_q, n_k = integer("n_q", n_q), integer("n_k", n_k)
    device = _device("device", device)
    i = torch.arange(n_q, device=device)[:, None]
    j = torch.arange(n_k, device=device)[None, :]
    return j <= i + (n_k - n_q)


def padding_mask(key_padding_mask):
    """(B, N_k) boolean, True for real keys -> a mask broadcastable to (B, H, N_q, N_k)."""
    if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool:
        raise TypeError(
            f"key_padding_mask: expected a bool tensor (B, N_k), got {_kind(key_padding_mask)}"
        )
    if key_padding_mask.ndim != 2:
        raise ValueError(
            f"key_padding_mask: expected shape (B, N_k), got {tuple(key_padding_mask.shape)}"
        )
    return key_padding_mask[:, None, None, :]


def block_diagonal_mask(cu_seqlens_q, cu_seqlens_k, causal=False):
    """Mask (total_q, total_k) of packed sequences: sequence s owns rows cu_q[s]:cu_q[s+1] and
    columns cu_k[s]:cu_k[s+1]; with `causal`, bottom-right causal within each sequence.
    Offsets: 1-D integer, from 0, non-decreasing, as many in cu_seqlens_k as in cu_seqlens_q."""
    cu_q = _cu_seqlens("cu_seqlens_q", cu_seqlens_q)
    cu_k = _cu_seqlens("cu_seqlens_k", cu_seqlens_k)
    _same_count(cu_q, cu_k)
    causal = flag("causal", causal)
    mask = torch.zeros(cu_q[-1], cu_k[-1], dtype=torch.bool)
    for s in range(len(cu_q) - 1):
        (q0, q1), (k0, k1) = cu_q[s : s + 2], cu_k[s : s + 2]
        mask[q0:q1, k0:k1] = causal_mask(q1 - q0, k1 - k0) if causal else True
    return mask


def check(q, k, v):
    """q (B, H, N_q, d), k (B, H, N_k, d), v (B, H, N_k, d_v): finite real floating tensors of one
    dtype, N_k >= 1 (N_q = 0 is allowed). Shared by every attention implementation here."""
    _tensors(q, k, v, "(B, H, N, d)")
    if k.shape[2] == 0:
        raise ValueError("k: N_k = 0; attention needs at least one key")


def _tensors(q, k, v, layout):
    """check() without the N_k >= 1 rule, for the 4-D layout or the packed (total, H, d) one:
    the sequence axis is the one named N or total (free for q), the last one the head dim (free
    for v)."""
    axes = layout.strip("()").split(", ")
    seq = axes.index("N" if "N" in axes else "total")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a {len(axes)}-D tensor {layout}, got {_kind(t)}")
        if t.ndim != len(axes):
            raise ValueError(f"{name}: expected a {len(axes)}-D tensor {layout}, got {_kind(t)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name}: expected a floating dtype, got {t.dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name}: mixed dtypes, {name} is {t.dtype} but q is {q.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"k: head dim {k.shape[-1]} differs from q's {q.shape[-1]}")
    if k.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"v: shape {tuple(v.shape)} does not match k's {tuple(k.shape)}")
    outer = [a for a in range(len(axes) - 1) if a != seq]
    if [q.shape[a] for a in outer] != [k.shape[a] for a in outer]:
        raise ValueError(
            f"k: {', '.join(axes[a] for a in outer)} of shape {tuple(k.shape)} differ from q's "
            f"{tuple(q.shape)}"
        )
    for name, t in (("q", q), ("k", k), ("v", v)):
        tensor(name, t)  # finite


def _kind(t):
    return f"shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


def _scale(name, scale, d):
    """None -> 1/sqrt(d); else a finite real number (a 0-dim tensor or array too), as float."""
    if scale is None:
        return 1 / math.sqrt(d)
    return float(scalar(name, scale))


def _mask(name, mask, shape):
    """A bool tensor broadcastable to `shape` without enlarging it."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(
            f"{name}: expected a bool tensor, got {_kind(mask)} {getattr(mask, 'dtype', '')}"
        )
    try:
        fits = torch.broadcast_shapes(mask.shape, shape) == torch.Size(shape)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: shape {tuple(mask.shape)} does not broadcast to (B, H, N_q, N_k) = {shape}"
        )


def _device(name, device):
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name}: expected None, a str or a torch.device, got {device!r:.60}")
    try:
        return torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"{name}: {e}") from None


def _cu_seqlens(name, cu, total=None):
    """Offsets of packed sequences as a list of ints: a 1-D int32/int64 tensor (or a sequence of
    integers) of at least 2 entries, from 0, non-decreasing, ending at `total` if given."""
    if not isinstance(cu, torch.Tensor):
        try:
            cu = torch.as_tensor(cu)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{name}: expected a 1-D integer tensor of offsets, got {_kind(cu)}"
            ) from None
    if cu.ndim != 1 or cu.numel() < 2 or cu.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"{name}: expected a 1-D integer tensor of at least 2 offsets, got {cu.dtype} "
            f"{tuple(cu.shape)}"
        )
    cu = cu.tolist()
    if cu[0] != 0:
        raise ValueError(f"{name}: must start at 0, got {cu[0]}")
    if any(b < a for a, b in zip(cu, cu[1:], strict=False)):
        raise ValueError(f"{name}: offsets must not decrease, got {cu}")
    if total is not None and cu[-1] != total:
        raise ValueError(f"{name}: ends at {cu[-1]} but there are {total} tokens")
    return cu


def _same_count(cu_q, cu_k):
    if len(cu_q) != len(cu_k):
        raise ValueError(
            f"cu_seqlens_k: {len(cu_k) - 1} sequences, but cu_seqlens_q has {len(cu_q) - 1}"
        )
