"""FlashAttention forward as a Triton kernel (Dao et al. 2022; FlashAttention-2, Dao 2023).

One program owns a block Q_i of B_r = BLOCK_M query rows of one (batch, head) and sweeps the key
and value blocks K_j, V_j of B_c = BLOCK_N rows. The scores are kept in base 2, with
log2(e) folded into the scale, so that every exponential is one exp2:

    S = (scale log2 e) Q_i K_j^T                                      (B_r x B_c, float32)
    m' = max(m, rowmax S),   P = 2^(S - m'),   l' = 2^(m - m') l + rowsum P
    A' = 2^(m - m') A + P V_j                                         (A: unnormalised output)

from (m, l, A) = (-inf, 0, 0); at the end O_i = A / l and L_i = ln 2 (m + log2 l), the natural
logsumexp of the row of scale Q_i K^T. Masked scores are -inf, so they add 2^-inf = 0 to l.

Conventions are those of impl.attention.reference and impl.attention.tiled: q (B, H, N_q, d),
k (B, H, N_k, d), v (B, H, N_k, d_v); bottom-right causal alignment (query i sees key j iff
j <= i + N_k - N_q); a row that sees no key gets O = 0 and L = -inf. O is returned in the input
dtype, L in float32. float16 and bfloat16 operands go to tl.dot with a float32 accumulator (P is
rounded to the input dtype for P V_j, as in FlashAttention); float32 uses exact-fp32 ("ieee")
products, not TF32.

Causal: for the query block rows i0..i1 - 1 the key blocks split in three. Keys
j < i0 + N_k - N_q + 1 are seen by every row: those whole blocks run an unmasked loop. Keys
j > i1 - 1 + N_k - N_q are seen by no row: those blocks are skipped. Only the blocks in between
(those crossing the diagonal, about B_r / B_c + 1 of them) and a ragged last block are masked.

The head dims are padded to the next power of two >= 16 (tl.dot's minimum) with masked loads, so
any d, d_v <= 256 work. Tensors on the CPU run only in Triton's interpreter: set
TRITON_INTERPRET=1 before triton (and this module) are imported.

Arguments are checked before anything needs a GPU or the interpreter: q, k, v as in
reference.check (finite), of one of DTYPES and one device, head dims 1 to 256; causal a bool;
scale None (1/sqrt(d)) or a finite real number; block_m, block_n None (the configuration's) or
powers of two in [16, MAX_BLOCK].
"""

import os

import numpy as np
import torch
import triton
import triton.language as tl

from impl._checks import flag
from impl.attention.reference import _scale, check

LOG2_E = 1.4426950408889634
LN_2 = tl.constexpr(0.6931471805599453)  # a global a kernel reads must be constexpr
MAX_HEAD_DIM = 256
MAX_BLOCK = 1024
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Padded head dim <= key -> (block_m, block_n, num_warps, num_stages) on a GPU, picked for Hopper
# and checked by compiling for sm_90 (Triton 3.9): no register spills, <= 128 KiB shared memory.
# float32 uses exact products on the FMA units (no tensor cores), hence the small tiles.
GPU_CONFIGS = {
    "float32": {64: (64, 32, 8, 2), 128: (32, 16, 4, 2), 256: (32, 16, 8, 2)},
    "16-bit": {64: (128, 64, 4, 3), 128: (128, 64, 8, 3), 256: (64, 32, 4, 2)},
}
# triton.jit reads TRITON_INTERPRET when it decorates, so the value at this module's import counts
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def forward(q, k, v, causal=False, scale=None, block_m=None, block_n=None):
    """(O, L): O (B, H, N_q, d_v) in q's dtype, L (B, H, N_q) the logsumexp per row in float32."""
    _check(q, k, v)
    B, H, n_q, d = q.shape
    n_k, d_v = k.shape[2], v.shape[-1]
    causal, scale = flag("causal", causal), _scale("scale", scale, d)
    d_pad, d_v_pad = _padded(d), _padded(d_v)
    cfg = _config(q, max(d_pad, d_v_pad))
    block_m = _block("block_m", cfg["block_m"] if block_m is None else block_m)
    block_n = _block("block_n", cfg["block_n"] if block_n is None else block_n)
    _runnable(q)
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    # Triton's interpreter holds bfloat16 as uint16, its tl.dot multiplies those integers and its
    # float32 -> bfloat16 conversion truncates. There (UPCAST) bfloat16 operands go to tl.dot as
    # float32 (exact: products of 8-bit significands), P is rounded to bfloat16 to nearest even in
    # the kernel, and O is written in float32 and rounded by torch: the GPU's arithmetic.
    upcast = q.device.type == "cpu" and q.dtype == torch.bfloat16
    o_dtype = torch.float32 if upcast else q.dtype
    o = torch.empty(B, H, n_q, d_v, dtype=o_dtype, device=q.device)
    lse = torch.empty(B, H, n_q, dtype=torch.float32, device=q.device)
    if lse.numel() == 0:
        return o.to(q.dtype), lse
    grid = (triton.cdiv(n_q, block_m), B * H)
    _forward_kernel[grid](
        q, k, v, o, lse,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2),
        o.stride(0), o.stride(1), o.stride(2),
        H, n_q, n_k, scale * LOG2_E,
        CAUSAL=causal, D=d, D_V=d_v, D_PAD=d_pad, D_V_PAD=d_v_pad,
        PAD_D=d != d_pad, PAD_D_V=d_v != d_v_pad, BLOCK_M=block_m, BLOCK_N=block_n,
        PRECISION="ieee" if q.dtype == torch.float32 or upcast else "tf32", UPCAST=upcast,
        num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
    )  # fmt: skip
    return o.to(q.dtype), lse


@triton.jit
def _forward_kernel(
    Q, K, V, O, L,
    stride_qb, stride_qh, stride_qm,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_om,
    H, N_q, N_k, qk_scale,
    CAUSAL: tl.constexpr, D: tl.constexpr, D_V: tl.constexpr, D_PAD: tl.constexpr,
    D_V_PAD: tl.constexpr, PAD_D: tl.constexpr, PAD_D_V: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    if CAUSAL:  # the longest rows (last query blocks) first: a shorter tail
        i = tl.num_programs(0) - 1 - tl.program_id(0)
    else:
        i = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = i * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D_PAD)
    offs_dv = tl.arange(0, D_V_PAD)

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :]
    q_i = tl.load(q_ptrs, mask=(offs_m[:, None] < N_q) & (offs_d[None, :] < D), other=0.0)
    if UPCAST:
        q_i = q_i.to(tl.float32)
    kt_ptrs = K + b * stride_kb + h * stride_kh + offs_n[None, :] * stride_kn + offs_d[:, None]
    v_ptrs = V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vn + offs_dv[None, :]

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D_V_PAD], dtype=tl.float32)

    # Key blocks [0, n_full) are seen whole by every row; [n_full, end) need the mask.
    shift = N_k - N_q
    if CAUSAL:
        first = tl.maximum(i * BLOCK_M + shift + 1, 0)  # keys seen by the block's first row
        last = tl.minimum(i * BLOCK_M + BLOCK_M, N_q) + shift  # ... and by its last row
        n_full = tl.minimum(first, N_k) // BLOCK_N * BLOCK_N
        end = tl.minimum(tl.maximum(last, 0), N_k)
    else:
        n_full = N_k // BLOCK_N * BLOCK_N
        end = N_k
    acc, l_i, m_i = _sweep(
        acc, l_i, m_i, q_i, kt_ptrs, v_ptrs, 0, n_full, offs_m, offs_n, offs_d, offs_dv,
        stride_kn, stride_vn, N_k, shift, qk_scale,
        False, CAUSAL, D, D_V, PAD_D, PAD_D_V, BLOCK_N, PRECISION, UPCAST,
    )  # fmt: skip
    acc, l_i, m_i = _sweep(
        acc, l_i, m_i, q_i, kt_ptrs, v_ptrs, n_full, end, offs_m, offs_n, offs_d, offs_dv,
        stride_kn, stride_vn, N_k, shift, qk_scale,
        True, CAUSAL, D, D_V, PAD_D, PAD_D_V, BLOCK_N, PRECISION, UPCAST,
    )  # fmt: skip

    seen = l_i > 0.0
    l_safe = tl.where(seen, l_i, 1.0)
    o_i = acc / l_safe[:, None]  # unseen rows: A = 0, so O = 0
    lse_i = tl.where(seen, (m_i + tl.log2(l_safe)) * LN_2, float("-inf"))
    o_ptrs = O + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_om + offs_dv[None, :]
    tl.store(
        o_ptrs, o_i.to(O.dtype.element_ty), mask=(offs_m[:, None] < N_q) & (offs_dv[None, :] < D_V)
    )
    tl.store(L + bh.to(tl.int64) * N_q + offs_m, lse_i, mask=offs_m < N_q)


@triton.jit
def _sweep(
    acc, l_i, m_i, q_i, kt_ptrs, v_ptrs, start, stop, offs_m, offs_n, offs_d, offs_dv,
    stride_kn, stride_vn, N_k, shift, qk_scale,
    MASKED: tl.constexpr, CAUSAL: tl.constexpr, D: tl.constexpr, D_V: tl.constexpr,
    PAD_D: tl.constexpr, PAD_D_V: tl.constexpr, BLOCK_N: tl.constexpr, PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
):  # fmt: skip
    """The online-softmax update over key blocks j0 = start, start + BLOCK_N, ... < stop."""
    for j0 in range(start, stop, BLOCK_N):
        cols = j0 + offs_n
        if MASKED:
            k_t = tl.load(
                kt_ptrs + j0 * stride_kn,
                mask=(cols[None, :] < N_k) & (offs_d[:, None] < D),
                other=0.0,
            )
            v_j = tl.load(
                v_ptrs + j0 * stride_vn,
                mask=(cols[:, None] < N_k) & (offs_dv[None, :] < D_V),
                other=0.0,
            )
        else:
            k_t = _load(kt_ptrs + j0 * stride_kn, offs_d[:, None] < D, PAD_D)
            v_j = _load(v_ptrs + j0 * stride_vn, offs_dv[None, :] < D_V, PAD_D_V)
        if UPCAST:
            k_t = k_t.to(tl.float32)
        s = tl.dot(q_i, k_t, input_precision=PRECISION) * qk_scale
        if MASKED:
            visible = cols[None, :] < N_k
            if CAUSAL:
                visible = visible & (cols[None, :] <= offs_m[:, None] + shift)
            s = tl.where(visible, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_ref = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing seen yet
        else:
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_ref = m_new
        p = tl.exp2(s - m_ref[:, None])
        alpha = tl.exp2(m_i - m_ref)
        l_i = l_i * alpha + tl.sum(p, 1)
        if UPCAST:
            p_in, v_j = _round_to_bfloat16(p), v_j.to(tl.float32)
        else:
            p_in = p.to(v_j.dtype)  # P rounded to the input dtype, as in FlashAttention
        acc = acc * alpha[:, None] + tl.dot(p_in, v_j, input_precision=PRECISION)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def _round_to_bfloat16(x):
    """float32 x rounded to the nearest bfloat16 (ties to even), as float32; x finite."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _load(ptrs, mask, MASKED: tl.constexpr):
    if MASKED:
        x = tl.load(ptrs, mask=mask, other=0.0)
    else:
        x = tl.load(ptrs)
    return x


def _config(q, d_pad):
    """Hand-picked block sizes, warps and pipeline stages (no autotuning)."""
    if q.device.type != "cuda":
        return dict(block_m=16, block_n=16, num_warps=4, num_stages=1)
    table = GPU_CONFIGS["float32" if q.dtype == torch.float32 else "16-bit"]
    block_m, block_n, warps, stages = table[min(d for d in table if d >= d_pad)]
    return dict(block_m=block_m, block_n=block_n, num_warps=warps, num_stages=stages)


def _padded(d):
    return max(16, triton.next_power_of_2(d))


def _block(name, size):
    if (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16
            or size > MAX_BLOCK or size & (size - 1)):  # fmt: skip
        raise ValueError(
            f"{name}: must be a power of two in [16, {MAX_BLOCK}] (16: tl.dot's minimum), "
            f"got {size!r:.60}"
        )
    return int(size)


def _check(q, k, v):
    check(q, k, v)
    if q.dtype not in DTYPES:
        raise TypeError(
            f"q: dtype {q.dtype} is not supported by the Triton kernel (tl.dot); use one of "
            + ", ".join(str(t) for t in DTYPES)
        )
    for name, t in (("q", q), ("v", v)):
        if not 1 <= t.shape[-1] <= MAX_HEAD_DIM:
            raise ValueError(
                f"{name}: head dim {t.shape[-1]}; the kernel supports 1 to {MAX_HEAD_DIM}"
            )
    for name, t in (("k", k), ("v", v)):
        if t.device != q.device:
            raise ValueError(f"{name}: on device {t.device}, but q is on {q.device}")
    if q.device.type not in ("cpu", "cuda"):
        raise ValueError(f"q: device {q.device} is not supported (cuda, or cpu interpreted)")


def _runnable(q):
    """The one requirement that is not an argument's: a GPU, or Triton's interpreter for CPU
    tensors."""
    if q.device.type == "cpu" and not INTERPRETED:
        raise RuntimeError(
            "q: CPU tensors run only in Triton's interpreter; set TRITON_INTERPRET=1 before "
            "triton and impl.attention.triton_kernel are imported (or move q, k, v to a GPU)"
        )
