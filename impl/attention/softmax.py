"""Softmax and its running statistics (FlashAttention, seed article 11; Milakov & Gimelshein 2018).

(1) softmax        softmax(x)_i = e^{x_i} / sum_j e^{x_j}           (overflows once x_i > ~88 in fp32)
(2) safe softmax   m = max_j x_j,  softmax(x)_i = e^{x_i - m} / sum_j e^{x_j - m}
(3) statistics     stats(x) = (m(x), l(x)) with l(x) = sum_j e^{x_j - m(x)}
(4) merge          for x = [a, b]:  m = max(m_a, m_b),  l = l_a e^{m_a - m} + l_b e^{m_b - m}
                   so stats([a, b]) = merge(stats(a), stats(b)); merge is associative and
                   commutative, which is what lets attention be computed block by block.
(5) online         one pass over x_1..x_n:  m_j = max(m_{j-1}, x_j),
                   d_j = d_{j-1} e^{m_{j-1} - m_j} + e^{x_j - m_j},  (m_0, d_0) = (-inf, 0)
                   ends with (m_n, d_n) = stats(x).

All functions work on the last axis. The empty set has statistics (-inf, 0), the identity of (4).
"""

import torch


def softmax(x):
    """(1): no max subtraction, the negative control for stability."""
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def safe_softmax(x):
    """(2)."""
    m, l = stats(x)
    return torch.exp(x - m[..., None]) / l[..., None]


def stats(x):
    """(3): (m, l) over the last axis; (-inf, 0) for an empty one."""
    if x.shape[-1] == 0:
        return torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype), x.new_zeros(x.shape[:-1])
    m = x.amax(-1)
    return m, torch.exp(x - _finite(m)[..., None]).sum(-1)


def merge(a, b):
    """(4): statistics of a concatenation from those of its parts; (-inf, 0) is the identity."""
    (m_a, l_a), (m_b, l_b) = a, b
    m = torch.maximum(m_a, m_b)
    m_safe = _finite(m)
    return m, l_a * torch.exp(m_a - m_safe) + l_b * torch.exp(m_b - m_safe)


def online_stats(x):
    """(5): one pass over the last axis with the recurrence of the online normaliser."""
    m = torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype)
    d = torch.zeros(x.shape[:-1], dtype=x.dtype)
    for j in range(x.shape[-1]):
        m_new = torch.maximum(m, x[..., j])
        d = d * torch.exp(m - _finite(m_new)) + torch.exp(x[..., j] - _finite(m_new))
        m = m_new
    return m, d


def online_softmax(x):
    """Softmax from the one-pass statistics (5) and a second pass for the outputs."""
    m, d = online_stats(x)
    return torch.exp(x - m[..., None]) / d[..., None]


def _finite(m):
    """m where finite, else 0: keeps -inf - (-inf) = nan out of the exponents of empty sets."""
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))
