"""Tiled attention (FlashAttention, Dao et al. 2022; FlashAttention-2, Dao 2023; seed article 11).

Scores are kept in base 2, as FlashAttention's kernels do: with c = scale log2(e) and S = c Q K^T,
softmax(scale Q K^T) = 2^{S - m} / l and L = (m + log2 l) / log2 e (torch's exp2 took about a fifth
of the time of its exp on the project's CPU; the rounding of S is that of scale Q K^T, in units of
log2 e, so the error budgets are unchanged).

Forward, for a block of queries Q_i and each block of keys/values K_j, V_j in turn:
    S = c Q_i K_j^T
    if rowmax S > m + tau in some row:
        m' = max(m, rowmax S),   l <- 2^{m - m'} l,   A <- 2^{m - m'} A,   m <- m'
    P = 2^{S - m},   l <- l + rowsum P,   A <- A + P V_j               (A: unnormalised output)
from m = -inf (a row that has seen no key; 0 where m is subtracted), l = 0, A = 0; at the end
O_i = A / l and L_i = (m + log2 l) / log2 e. The rescaling is lazy (FlashAttention-4, Zadouri et
al.): m is moved only when a row's scores exceed it by more than tau = 8, so P <= 2^8 and
l <= 2^8 N_k stay far from float32's range, and m, a score the row has seen, keeps l >= 1. Any such
offset cancels in A / l: the result is that of rescaling at every block. Only one (B_q x B_k)
block of scores exists at a time: extra memory O(N d + B_q B_k) instead of O(N^2).

Backward by recomputation from (Q, K, V, O, L) and dO, block by block:
    D = rowsum(dO * O),  S = c Q_i K_j^T,  P = 2^{S - L log2 e},  dV_j += P^T dO_i,
    dP = dO_i V_j^T,  dS = P * (dP - D),  dQ_i += scale dS K_j,  dK_j += scale dS^T Q_i.

Shapes and conventions are those of impl.attention.reference (bottom-right causal alignment; a
query that sees no key gets O = 0, L = -inf and zero gradients). Blocks above the causal diagonal
are skipped, only blocks crossing it are masked. float16 and bfloat16 inputs are computed with
float32 blocks and accumulators; O is returned in the input dtype, L in float32, and the backward
keeps the float32 O for D (from the rounded O, D loses the cancellation in dP - D). The loops run
on (B H, N, d) views, so that A += P V_j and the gradients accumulate inside the matmul
(baddbmm with out=, which torch's FlopCounterMode counts, where it misses the in-place baddbmm_).

`varlen_attention` runs packed sequences (cu_seqlens, block-diagonal attention) sequence by
sequence on (total, H, d) tensors, the layout of flash_attn_varlen_func.

Inputs are checked at each public entry: q, k, v as in reference.check (finite: an inf in q would
otherwise give O = 0, L = -inf, a row that reads as masked); causal a bool; key_padding_mask None
or a bool tensor (B, N_k); scale None (1/sqrt(d)) or a finite real number; block sizes positive
integers. backward also takes O (finite), L (finite or -inf for unseen rows) and dO (finite) of
the forward's shapes. rescale and delta, called once per block, check only what they are given.
"""

import math

import torch

from impl._checks import flag, pair, positive_int, tensor
from impl.attention.reference import _cu_seqlens, _same_count, _scale, _tensors, check

BLOCK_Q = 256
BLOCK_K = 256
TAU = 8.0  # lazy rescaling: m moves only when a row's scores exceed it by more than tau (base 2)
LOG2E = math.log2(math.e)


def attention(q, k, v, causal=False, key_padding_mask=None, scale=None, block_q=BLOCK_Q,
              block_k=BLOCK_K):  # fmt: skip
    """(O, L): O differentiable through the recomputing backward, L = logsumexp per row."""
    causal, scale = _check(q, k, v, causal, key_padding_mask, scale, block_q, block_k)
    o, lse = _Tiled.apply(q, k, v, causal, key_padding_mask, scale, block_q, block_k)
    return o, lse


def forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k, io=None):
    """The forward loop; returns (O, L) in the accumulator dtype (float32, or float64).

    io: None, or a dict to which the loop adds, per batch and head, the numbers it moves through
    slow memory (the tensors it was given and returns) as it moves them: io["reads"] (K once for
    the transposed copy; Q_i once per query block; K_j and V_j per visited key block) and
    io["writes"] (the copy K^T; O_i and L_i once per query block). The key-padding mask is not
    counted. io_model.flash2 is the model these counts are checked against (FA-07)."""
    causal, scale = _check(q, k, v, causal, key_padding_mask, scale, block_q, block_k)
    if io is not None and (
        not isinstance(io, dict)
        or any(not isinstance(io.get(c, 0), int) for c in ("reads", "writes"))
    ):
        raise TypeError(
            f"io: expected None or a dict of int counts 'reads', 'writes', got {io!r:.60}"
        )
    B, H, n_q, d = q.shape
    n_k, d_v, acc_dtype = k.shape[2], v.shape[-1], _accumulator(q.dtype)
    io = {} if io is None else io
    io.setdefault("reads", 0)
    io.setdefault("writes", 0)
    o = torch.empty(B * H, n_q, d_v, dtype=acc_dtype)
    lse = torch.empty(B * H, n_q, 1, dtype=acc_dtype)
    q, v = _heads(q, acc_dtype), _heads(v, acc_dtype)
    k_t = _heads(k, acc_dtype).transpose(-2, -1).contiguous()  # K^T once: row-major blocks for S
    io["reads"] += n_k * d
    io["writes"] += n_k * d
    for i0 in range(0, n_q, block_q):
        i1 = min(i0 + block_q, n_q)
        qi = q[:, i0:i1] * (scale * LOG2E)
        io["reads"] += (i1 - i0) * d
        m = torch.full((B * H, i1 - i0, 1), -torch.inf, dtype=acc_dtype)
        m_safe = torch.zeros_like(m)  # m, with 0 for rows that have seen no key yet
        l = torch.zeros_like(m)
        a = torch.zeros(B * H, i1 - i0, d_v, dtype=acc_dtype)
        for j0, j1, mask in _key_blocks(i0, i1, n_q, n_k, block_k, causal, key_padding_mask):
            io["reads"] += (j1 - j0) * (d + d_v)
            s = torch.bmm(qi, k_t[..., j0:j1])
            if mask is not None:
                s.view(B, H, i1 - i0, j1 - j0).masked_fill_(~mask, -torch.inf)
            m_block = s.amax(-1, keepdim=True)
            if not bool((m_block <= m + TAU).all()):
                m_new = torch.maximum(m, m_block)
                m_safe = torch.where(m_new == -torch.inf, 0.0, m_new)
                alpha = rescale(m, m_safe)
                l.mul_(alpha)
                a.mul_(alpha)
                m = m_new
            p = s.sub_(m_safe).exp2_()
            l.add_(p.sum(-1, keepdim=True))
            torch.baddbmm(a, p, v[:, j0:j1], out=a)
        seen = l > 0
        o[:, i0:i1] = torch.where(seen, a / torch.where(seen, l, 1.0), 0.0)
        lse[:, i0:i1] = torch.where(seen, (m + torch.log2(torch.where(seen, l, 1.0))) / LOG2E,
                                    -torch.inf)  # fmt: skip
        io["writes"] += (i1 - i0) * (d_v + 1)
    return o.view(B, H, n_q, d_v), lse.view(B, H, n_q)


def backward(q, k, v, o, lse, do, causal, key_padding_mask, scale, block_q, block_k):
    """(dQ, dK, dV) by recomputing P block by block from L."""
    causal, scale = _check(q, k, v, causal, key_padding_mask, scale, block_q, block_k)
    B, H, n_q, d_v = *q.shape[:3], v.shape[-1]
    for name, t, shape in (("o", o, (B, H, n_q, d_v)), ("lse", lse, (B, H, n_q)),
                           ("do", do, (B, H, n_q, d_v))):  # fmt: skip
        tensor(name, t, finite=name != "lse")
        if tuple(t.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(t.shape)}")
    if not bool((lse < torch.inf).all()):
        raise ValueError("lse: has a nan or +inf entry (-inf marks a row that sees no key)")
    n_q, n_k, dtype, acc_dtype = q.shape[2], k.shape[2], q.dtype, _accumulator(q.dtype)
    q, k, v, o, do = (_heads(t, acc_dtype) for t in (q, k, v, o, do))
    dq = torch.zeros(q.shape, dtype=acc_dtype)
    dk = torch.zeros(k.shape, dtype=acc_dtype)
    dv = torch.zeros(v.shape, dtype=acc_dtype)
    k_t = k.transpose(-2, -1).contiguous()  # K^T, V^T once: row-major blocks
    v_t = v.transpose(-2, -1).contiguous()
    # L in base 2; unseen rows (L = -inf) get +inf, so that P = 2^{S - inf} = 0
    lse2 = torch.where(lse == -torch.inf, torch.inf, lse * LOG2E).reshape(B * H, n_q, 1)
    for i0 in range(0, n_q, block_q):
        i1 = min(i0 + block_q, n_q)
        qi, doi = q[:, i0:i1], do[:, i0:i1]
        qi2 = qi * (scale * LOG2E)
        d_i = delta(doi, o[:, i0:i1])
        for j0, j1, mask in _key_blocks(i0, i1, n_q, n_k, block_k, causal, key_padding_mask):
            s = torch.bmm(qi2, k_t[..., j0:j1])
            if mask is not None:
                s.view(B, H, i1 - i0, j1 - j0).masked_fill_(~mask, -torch.inf)
            p = s.sub_(lse2[:, i0:i1]).exp2_()
            dq_i, dk_j, dv_j = dq[:, i0:i1], dk[:, j0:j1], dv[:, j0:j1]
            torch.baddbmm(dv_j, p.transpose(-2, -1), doi, out=dv_j)
            ds = p.mul_(torch.bmm(doi, v_t[..., j0:j1]).sub_(d_i))
            torch.baddbmm(dq_i, ds, k[:, j0:j1], alpha=scale, out=dq_i)
            torch.baddbmm(dk_j, ds.transpose(-2, -1), qi, alpha=scale, out=dk_j)
    return tuple(t.view(B, H, *t.shape[1:]).to(dtype) for t in (dq, dk, dv))


def rescale(m, m_new):
    """2^{m - m'}: the factor that moves a running sum and accumulator from offset m to m' (base 2).
    m, m_new: tensors of one shape, m_new finite, m <= m_new (m = -inf: nothing seen yet)."""
    pair("m_new", m_new, "m", m, finite=False)
    if not bool(((m <= m_new) & torch.isfinite(m_new)).all()):
        if not torch.isfinite(m_new).all():
            raise ValueError("m_new: must be finite")
        raise ValueError("m: must be <= m_new (a running max only grows) and not nan")
    return torch.exp2(m - m_new)


def delta(do, o):
    """D = rowsum(dO * O) = rowsum(dP * P): the softmax backward's row correction.
    do, o: finite tensors of one shape."""
    pair("o", o, "do", do)
    return (do * o).sum(-1, keepdim=True)


class _Tiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, key_padding_mask, scale, block_q, block_k):
        with torch.no_grad():
            o, lse = forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k)
        ctx.save_for_backward(q, k, v, o, lse)  # O in float32 for low-precision inputs: exact D
        ctx.args = (causal, key_padding_mask, scale, block_q, block_k)
        ctx.mark_non_differentiable(lse)
        return o.to(q.dtype), lse

    @staticmethod
    def backward(ctx, do, _dlse):
        q, k, v, o, lse = ctx.saved_tensors
        with torch.no_grad():
            dq, dk, dv = backward(q, k, v, o, lse, do, *ctx.args)
        return dq, dk, dv, None, None, None, None, None


def _key_blocks(i0, i1, n_q, n_k, block_k, causal, key_padding_mask):
    """(j0, j1, mask or None) for the key blocks the query rows i0:i1 can see.

    Causal (bottom-right): row i sees keys j <= i + n_k - n_q, so blocks with j0 beyond the last
    row's limit are skipped and a mask is built only where the block crosses the diagonal."""
    shift = n_k - n_q
    stop = min(n_k, i1 - 1 + shift + 1) if causal else n_k
    for j0 in range(0, max(stop, 0), block_k):
        j1 = min(j0 + block_k, n_k)
        mask = None
        if causal and j1 - 1 > i0 + shift:
            rows = torch.arange(i0, i1)[:, None] + shift
            mask = torch.arange(j0, j1)[None, :] <= rows
        if key_padding_mask is not None:
            keep = key_padding_mask[:, None, None, j0:j1]
            mask = keep if mask is None else mask & keep
        yield j0, j1, mask


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, causal=False, scale=None,
                     block_q=BLOCK_Q, block_k=BLOCK_K):  # fmt: skip
    """Packed sequences: q (total_q, H, d), k and v (total_k, H, d); sequence s is rows
    cu_seqlens_q[s]:cu_seqlens_q[s+1] of q and cu_seqlens_k[s]:cu_seqlens_k[s+1] of k and v, and
    attends only within itself. Returns (O (total_q, H, d_v), L (H, total_q)). Checks as in
    attention(), on the packed tensors; offsets as in reference.block_diagonal_mask, ending at
    total_q and total_k."""
    _tensors(q, k, v, "(total, H, d)")
    cu_q = _cu_seqlens("cu_seqlens_q", cu_seqlens_q, q.shape[0])
    cu_k = _cu_seqlens("cu_seqlens_k", cu_seqlens_k, k.shape[0])
    _same_count(cu_q, cu_k)
    causal, scale = flag("causal", causal), _scale("scale", scale, q.shape[-1])
    positive_int("block_q", block_q)
    positive_int("block_k", block_k)
    outs, lses = [], []
    for s in range(len(cu_q) - 1):
        (q0, q1), (k0, k1) = cu_q[s : s + 2], cu_k[s : s + 2]
        if q1 == q0:
            continue
        if k1 == k0:
            raise ValueError(f"cu_seqlens_k: sequence {s} has queries but no keys")
        qs, ks, vs = (t[a:b].transpose(0, 1)[None] for t, a, b in ((q, q0, q1), (k, k0, k1),
                                                                     (v, k0, k1)))  # fmt: skip
        o, lse = attention(qs, ks, vs, causal, None, scale, block_q, block_k)
        outs.append(o[0].transpose(0, 1))
        lses.append(lse[0])
    if not outs:
        return q.new_zeros(0, q.shape[1], v.shape[-1]), q.new_zeros(q.shape[1], 0)
    return torch.cat(outs), torch.cat(lses, dim=-1)


def _check(q, k, v, causal, key_padding_mask, scale, block_q, block_k):
    """The arguments of attention, forward and backward; returns (causal, scale as a float)."""
    check(q, k, v)
    causal = flag("causal", causal)
    if key_padding_mask is not None:
        B, n_k = k.shape[0], k.shape[2]
        if not isinstance(key_padding_mask, torch.Tensor):
            raise TypeError(
                f"key_padding_mask: expected a bool tensor of shape ({B}, {n_k}), got "
                f"{type(key_padding_mask).__name__}"
            )
        if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != (B, n_k):
            raise ValueError(
                f"key_padding_mask: expected a bool tensor of shape ({B}, {n_k}), got "
                f"{key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
            )
    scale = _scale("scale", scale, q.shape[-1])
    positive_int("block_q", block_q)
    positive_int("block_k", block_k)
    return causal, scale


def _heads(t, dtype):
    """(B, H, N, d) -> (B H, N, d) in `dtype` (a view when t is contiguous and of that dtype)."""
    return t.to(dtype).flatten(0, 1)


def _accumulator(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32
