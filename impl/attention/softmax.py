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

Domain: x a real floating tensor of at least one dimension, entries finite or -inf (-inf is a
masked logit and contributes e^-inf = 0); nan and +inf are refused. stats and online_stats accept
rows that are all -inf, or empty (the empty set); the softmaxes refuse them (0 / 0). merge takes
two (m, l) pairs of tensors of one shape with m finite or -inf, l finite and >= 0, and l = 0
exactly where m = -inf, as stats returns them.
"""

import torch

from impl._checks import tensor


def softmax(x):
    """(1): no max subtraction, the negative control for stability."""
    _logits(x)
    _some_key(x.amax(-1) if x.shape[-1] else x.new_zeros(()))
    e = torch.exp(x)
    return e / e.sum(-1, keepdim=True)


def safe_softmax(x):
    """(2)."""
    m, l = stats(x)
    _some_key(m if x.shape[-1] else x.new_zeros(()))
    return torch.exp(x - m[..., None]) / l[..., None]


def stats(x):
    """(3): (m, l) over the last axis; (-inf, 0) for an empty one."""
    _logits(x)
    if x.shape[-1] == 0:
        return torch.full(x.shape[:-1], -torch.inf, dtype=x.dtype), x.new_zeros(x.shape[:-1])
    m = x.amax(-1)
    return m, torch.exp(x - _finite(m)[..., None]).sum(-1)


def merge(a, b):
    """(4): statistics of a concatenation from those of its parts; (-inf, 0) is the identity."""
    (m_a, l_a), (m_b, l_b) = _statistics("a", a), _statistics("b", b)
    if m_b.shape != m_a.shape:
        raise ValueError(f"b: shape {tuple(m_b.shape)} does not match a's {tuple(m_a.shape)}")
    m = torch.maximum(m_a, m_b)
    m_safe = _finite(m)
    return m, l_a * torch.exp(m_a - m_safe) + l_b * torch.exp(m_b - m_safe)


def online_stats(x):
    """(5): one pass over the last axis with the recurrence of the online normaliser."""
    _logits(x)
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
    _some_key(m if x.shape[-1] else x.new_zeros(()))
    return torch.exp(x - m[..., None]) / d[..., None]


def _finite(m):
    """m where finite, else 0: keeps -inf - (-inf) = nan out of the exponents of empty sets."""
    return torch.where(torch.isfinite(m), m, torch.zeros_like(m))


def _logits(x):
    """x: a real floating tensor, ndim >= 1, entries finite or -inf (masked)."""
    tensor("x", x, finite=False)
    if x.ndim == 0:
        raise ValueError("x: expected at least one dimension (softmax runs over the last axis)")
    if not bool((x < torch.inf).all()):  # false for nan and +inf
        raise ValueError("x: has a nan or +inf entry (only -inf, a masked logit, is allowed)")


def _some_key(m):
    """m: row maxima; a row whose max is -inf has no softmax (0 / 0)."""
    if not bool((m > -torch.inf).all()):
        raise ValueError("x: a row is all -inf (every entry masked): its softmax is 0 / 0")


def _statistics(name, pair):
    """(m, l) as stats returns it: tensors of one shape, m finite or -inf, l finite and >= 0, and
    l = 0 exactly where m = -inf (the empty set)."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name}: expected a pair (m, l) of tensors, got {type(pair).__name__}")
    m, l = pair
    tensor(f"{name}[0]", m, finite=False)
    tensor(f"{name}[1]", l, finite=False)
    if l.shape != m.shape:
        raise ValueError(f"{name}[1]: shape {tuple(l.shape)} does not match m's {tuple(m.shape)}")
    if not bool((m < torch.inf).all()):
        raise ValueError(f"{name}[0]: m has a nan or +inf entry")
    if not bool((torch.isfinite(l) & (l >= 0)).all()):
        raise ValueError(f"{name}[1]: l must be finite and >= 0")
    if not bool(((l > 0) == (m > -torch.inf)).all()):
        raise ValueError(f"{name}: l must be 0 exactly where m = -inf (the empty set)")
    return m, l
