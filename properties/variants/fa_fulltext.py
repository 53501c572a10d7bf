"""Rejected variants of the FlashAttention full-text claims (FA-08 .. FA-13)."""

import math

import numpy as np
import torch

from impl.attention import io_model, passes, precision, recurrence, tiled_matmul
from properties.variants import variant


@variant(
    "FA-08.max-finite",
    name="largest-float16-is-2-to-the-16",
    why="x_max = 2^(e_max + 1) = 2^16 = 65536 (the article's number): forgets that the largest "
    "significand is 2 - 2^-10, not 2",
)
def _(mp):
    original = precision.largest_finite
    mp.setattr(precision, "largest_finite",
               lambda dtype: 2.0**16 if dtype == torch.float16 else original(dtype))  # fmt: skip


@variant(
    "FA-08.threshold",
    name="exp-of-float8-logits",
    why="the logit is rounded to float8 e5m2 (spacing 2 on [8, 16]) before e^x: every x > 11 "
    "becomes 12 or more, and e^x overflows float16 exactly where the article says",
)
def _(mp):
    original = precision.exp_in

    def exp_in(x, dtype, via=None):
        return original(x.to(torch.float8_e5m2).to(dtype), dtype, via)

    mp.setattr(precision, "exp_in", exp_in)


@variant(
    "FA-09",
    name="online-softmax-in-one-pass",
    why="writes y_i = e^{x_i - m_i} / d_i as soon as x_i is read (one pass): the running "
    "statistics of a prefix are not those of the whole row",
)
def _(mp):
    def online_softmax(x):
        log = passes._log()
        xs = passes._Counted(x, log)
        m, d, y = -math.inf, 0.0, passes._Output(len(x), log, x)
        for i in range(len(x)):
            x_i = float(xs[i])
            m_new = max(m, x_i)
            d = d * math.exp(m - m_new) + math.exp(x_i - m_new)
            m = m_new
            y[i] = math.exp(x_i - m) / d
        return y.tensor(), passes._reads(log, x=xs)

    mp.setattr(passes, "online_softmax", online_softmax)


@variant(
    "FA-09",
    name="one-pass-attention-without-rescale",
    why="the one-pass accumulator o_i = o_{i-1} d_{i-1} / d_i + e^{x_i - m_i} / d_i V_i: the "
    "factor e^{m_{i-1} - m_i} dropped from the old terms",
)
def _(mp):
    def one_pass_attention(q, K, V, scale):
        q, K, V, scale, log = passes._attention(q, K, V, scale)
        m, d = -math.inf, 0.0
        acc = torch.zeros(V._rows.shape[-1], dtype=q.dtype)
        for i in range(len(K)):
            x_i = passes._logit(q, K[i], scale)
            m_new = max(m, x_i)
            d_new = d * math.exp(m - m_new) + math.exp(x_i - m_new)
            acc = acc * (d / d_new) + math.exp(x_i - m_new) / d_new * V[i]
            m, d = m_new, d_new
        o = passes._Output(1, log, q)
        o[0] = acc
        return o.tensor()[0], passes._reads(log, K=K, V=V)

    mp.setattr(passes, "one_pass_attention", one_pass_attention)


def _recurrence(rescale_o=True, rescale_d=True, guard=False):
    """recurrence._run with a factor dropped or a guard added (for the variants below)."""

    def run(x, V, b, normalise, history=False):
        recurrence._check(x, V, b)
        m = torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype)
        d = torch.zeros(x.shape[:-1], dtype=x.dtype)
        o = torch.zeros(*x.shape[:-1], V.shape[-1], dtype=x.dtype)
        ms, ds, os_ = [], [], []
        for start in range(0, x.shape[-1], b):
            x_i, V_i = x[..., start : start + b], V[start : start + b]
            m_new = torch.maximum(m, x_i.amax(-1))
            m_ref = torch.where(torch.isfinite(m_new), m_new, 0.0) if guard else m_new
            alpha = torch.exp(m - m_ref)
            p = torch.exp(x_i - m_ref[..., None])
            d_new = d * (alpha if rescale_d else 1.0) + p.sum(-1)
            d_div = torch.where(d_new > 0, d_new, 1.0) if guard else d_new
            a_o = alpha if rescale_o else torch.ones_like(alpha)
            if normalise:
                o = o * (d * a_o / d_div)[..., None] + (p / d_div[..., None]) @ V_i
            else:
                o = o * a_o[..., None] + p @ V_i
            m, d = m_new, d_new
            if history:
                ms.append(m), ds.append(d), os_.append(o)
        if history:
            return torch.stack(ms, -1), torch.stack(ds, -1), torch.stack(os_, -2)
        return m, d, o if normalise else o / d[..., None]

    return run


@variant(
    "FA-10",
    name="normalised-accumulator-without-rescale",
    why="o'_i = o'_{i-1} d'_{i-1} / d'_i + ...: the factor e^{m_{i-1} - m_i} dropped from the "
    "accumulator (kept in d'), in both forms",
)
def _(mp):
    mp.setattr(recurrence, "_run", _recurrence(rescale_o=False))


@variant(
    "FA-11.identities",
    name="surrogate-without-rescale",
    why="d'_i = d'_{i-1} + e^{x_i - m_i}: old terms keep their old max, so d'_i is not "
    "sum_{j<=i} e^{x_j - m_i} once the max moves",
)
def _(mp):
    mp.setattr(recurrence, "_run", _recurrence(rescale_d=False))


@variant(
    "FA-11.masked-logits",
    name="guarded-recurrence",
    why="the recurrence with impl/attention's guard (exponents against m, or 0 while m = -inf; "
    "division only where d' > 0): masked prefixes give d' = 0, o' = 0 instead of nan",
)
def _(mp):
    mp.setattr(recurrence, "_run", _recurrence(guard=True))


def _whole_rows_of_A(A, B, T):
    """The tiled kernel that loads A's whole row panel (T x K) once per output tile."""
    A, B, T = tiled_matmul._check(A, B, T)
    (M, K), N = A.shape, B.shape[1]
    C, chip = np.empty((M, N), dtype=A.dtype), tiled_matmul._Chip()
    for i in range(0, M, T):
        for j in range(0, N, T):
            c = chip.load(tiled_matmul._zeros(A, T, T))
            rows = chip.load(A[i : i + T, :])
            for k in range(0, K, T):
                b = chip.load(B[k : k + T, j : j + T])
                c[...] = tiled_matmul._accumulate(c, rows[:, k : k + T], b)
                chip.free(b)
            C[i : i + T, j : j + T] = c
            chip.free(rows), chip.free(c)
    return C, chip.peak


@variant(
    "FA-12.footprint",
    name="whole-rows-of-A-on-chip",
    why="the kernel keeps A's whole row panel (T x K) on chip for each output tile: T K + 2 T^2 "
    "elements, growing with K",
)
def _(mp):
    mp.setattr(tiled_matmul, "tiled", _whole_rows_of_A)


@variant(
    "FA-12.exact",
    name="accumulator-overwritten",
    why="C_ij = A_ik B_kj for each k instead of C_ij += A_ik B_kj: only the last tile product "
    "survives",
)
def _(mp):
    mp.setattr(tiled_matmul, "_accumulate", lambda c, a, b: tiled_matmul._tile_product(a, b))


@variant(
    "FA-12.float32-bitwise",
    name="products-added-in-place",
    why="every product a_rt b_tc added straight into c_rc (no tile sums formed): the untiled "
    "order (3), so no bit differs -- the tiling then needs no associativity",
)
def _(mp):
    def accumulate(c, a, b):
        for t in range(a.shape[1]):
            c = c + a[:, t, None] * b[None, t, :]
        return c

    mp.setattr(tiled_matmul, "_accumulate", accumulate)


@variant(
    "FA-13",
    name="whole-K-and-V-on-chip",
    why="K and V loaded whole (L x D each) for every query block: the footprint grows with L",
)
def _(mp):
    def sram_footprint(L, B, D):
        rows = min(B, L)
        return 2 * L * D + 2 * rows * D + rows * min(B, L) + 2 * rows

    mp.setattr(io_model, "sram_footprint", sram_footprint)
