"""The note's FlashAttention recurrence with a normalised accumulator (FA-10, FA-11; Z. Ye, "From
Online Softmax to FlashAttention"), for one query row k with logits x = Q[k,:] K^T and values V.

Per element, from m_0 = -inf, d'_0 = 0, o'_0 = 0 (i = 1..N):
(1) m_i  = max(m_{i-1}, x_i)
(2) d'_i = d'_{i-1} e^{m_{i-1} - m_i} + e^{x_i - m_i}
(3) o'_i = o'_{i-1} d'_{i-1} e^{m_{i-1} - m_i} / d'_i + e^{x_i - m_i} / d'_i V[i,:],   O[k,:] = o'_N
so that d'_i = sum_{j<=i} e^{x_j - m_i} (the surrogate of d_i = sum_{j<=i} e^{x_j - m_N}, with
d'_i e^{m_i - m_N} = d_i and d'_N = d_N) and o'_i = sum_{j<=i} e^{x_j - m_i} / d'_i V[j,:], the
softmax of the first i logits applied to the first i rows of V.

Tiled, block size b dividing N, tile i holding x_i[j] = x_{j + (i-1) b} (i = 1..N/b):
(4) m_i  = max(m_{i-1}, max_j x_i[j])
(5) d'_i = d'_{i-1} e^{m_{i-1} - m_i} + sum_{j=1..b} e^{x_i[j] - m_i}
(6) o'_i = o'_{i-1} d'_{i-1} e^{m_{i-1} - m_i} / d'_i
           + sum_{j=1..b} e^{x_i[j] - m_i} / d'_i V[j + (i-1) b, :],          O[k,:] = o'_{N/b}
(7) unnormalised accumulator (FlashAttention-2, impl/attention/tiled.py): a_i = a_{i-1}
    e^{m_{i-1} - m_i} + sum_j e^{x_i[j] - m_i} V[j + (i-1) b, :], O[k,:] = a_{N/b} / d'_{N/b}.

The formulas are computed as written, in the dtype of x, with no guard: e^{m_{i-1} - m_i} with
m_{i-1} = m_i = -inf (a masked prefix, x_1 = -inf) is e^nan = nan, and so is 0 / d'_i with d'_i = 0
(FA-11 records what that returns; impl/attention/softmax.py and tiled.py guard both).

Domain: x a real floating tensor (..., N), N >= 1, entries finite or -inf (masked); V (N, d_v)
finite, of x's dtype; b a positive integer dividing N.
"""

import torch

from impl._checks import positive_int, tensor


def normalised(x, V, b):
    """(4)-(6): O = o'_{N/b}, shape (..., d_v)."""
    return _run(x, V, b, normalise=True)[2]


def unnormalised(x, V, b):
    """(4), (5), (7): O = a_{N/b} / d'_{N/b}, shape (..., d_v)."""
    return _run(x, V, b, normalise=False)[2]


def surrogates(x, V):
    """(1)-(3): the sequences (m_i, d'_i, o'_i) for i = 1..N, shapes (..., N), (..., N) and
    (..., N, d_v)."""
    return _run(x, V, 1, normalise=True, history=True)


def _run(x, V, b, normalise, history=False):
    N = _check(x, V, b)
    m = torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype)
    d = torch.zeros(x.shape[:-1], dtype=x.dtype)
    o = torch.zeros(*x.shape[:-1], V.shape[-1], dtype=x.dtype)
    ms, ds, os_ = [], [], []
    for start in range(0, N, b):
        x_i, V_i = x[..., start : start + b], V[start : start + b]
        m_new = torch.maximum(m, x_i.amax(-1))  # (4)
        alpha = torch.exp(m - m_new)  # e^{m_{i-1} - m_i}
        p = torch.exp(x_i - m_new[..., None])  # e^{x_i[j] - m_i}
        d_new = d * alpha + p.sum(-1)  # (5)
        if normalise:  # (6)
            o = o * (d * alpha / d_new)[..., None] + (p / d_new[..., None]) @ V_i
        else:  # (7)
            o = o * alpha[..., None] + p @ V_i
        m, d = m_new, d_new
        if history:
            ms.append(m), ds.append(d), os_.append(o)
    if history:
        return torch.stack(ms, -1), torch.stack(ds, -1), torch.stack(os_, -2)
    return m, d, o if normalise else o / d[..., None]


def _check(x, V, b):
    tensor("x", x, finite=False)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x: expected a last axis of N >= 1 logits, got shape {tuple(x.shape)}")
    if not bool((x < torch.inf).all()):  # false for nan and +inf
        raise ValueError("x: has a nan or +inf entry (only -inf, a masked logit, is allowed)")
    tensor("V", V, ndim=2)
    if V.dtype != x.dtype:
        raise TypeError(f"V: dtype {V.dtype} differs from x's {x.dtype}")
    N = x.shape[-1]
    if V.shape[0] != N:
        raise ValueError(f"V: expected {N} rows (one per logit), got shape {tuple(V.shape)}")
    b = positive_int("b", b)
    if N % b:
        raise ValueError(f"b: block size {b} does not divide N = {N}")
    return N
