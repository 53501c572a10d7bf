"""Passes over the input of softmax and attention, counted (FA-09; Z. Ye, "From Online Softmax to
FlashAttention"). Each algorithm reads its input through `_Counted`, which counts the reads of
every row, and notes how many reads it had made when it wrote its first output.

Softmax of x_1..x_N:
(1) safe softmax, 3 passes    m = max_i x_i;  d = sum_i e^{x_i - m};  y_i = e^{x_i - m} / d
(2) online softmax, 2 passes  m_i = max(m_{i-1}, x_i), d_i = d_{i-1} e^{m_{i-1} - m_i}
                              + e^{x_i - m_i} (from m_0 = -inf, d_0 = 0);  y_i = e^{x_i - m_N} / d_N
No softmax can write y_1 before it has read x_N: y_1 = e^{x_1} / sum_j e^{x_j} depends on x_N.

Attention of one query q (d) against K (N, d) and V (N, d_v), logits x_i = scale q . K[i,:] that
do not fit in fast memory, so every pass recomputes them from K:
(3) 3 passes    (1) over x, then O = sum_i y_i V[i,:] in the third pass: K read 3 times, V once
(4) 2 passes    (2) over x, then O in the second pass: K read 2 times, V once
(5) 1 pass      the note's FlashAttention (impl/attention/recurrence.py (1)-(3)): K and V once
                o_i = o_{i-1} d_{i-1} e^{m_{i-1} - m_i} / d_i + e^{x_i - m_i} / d_i V[i,:]

Every function returns (output, reads): reads maps each input's name to its list of reads per
row, and "first_write" to the number of reads (all inputs) made before the first output entry was
written. Inputs: x a 1-D real floating tensor of N >= 1 finite entries; q (d,), K (N, d),
V (N, d_v) finite, of one dtype; scale a finite positive number.
"""

import math

import torch

from impl._checks import scalar, tensor


class _Counted:
    """Read-only rows of a tensor (along axis 0), counting the reads of each row."""

    def __init__(self, rows, log):
        self._rows, self.reads, self._log = rows, [0] * len(rows), log

    def __len__(self):
        return len(self.reads)

    def __getitem__(self, i):
        self.reads[i] += 1
        self._log["total"] += 1
        return self._rows[i]


class _Output:
    """The output, written entry by entry; notes the reads made before the first write."""

    def __init__(self, n, log, like):
        self.values, self._log = [None] * n, log
        self._like = like

    def __setitem__(self, i, value):
        if self._log["first_write"] is None:
            self._log["first_write"] = self._log["total"]
        self.values[i] = value

    def tensor(self):
        return torch.stack([torch.as_tensor(v, dtype=self._like.dtype) for v in self.values])


def safe_softmax(x):
    """(1): three passes over x."""
    x, log = _logits(x)
    m = -math.inf
    for i in range(len(x)):  # pass 1: the max
        m = max(m, float(x[i]))
    d = 0.0
    for i in range(len(x)):  # pass 2: the denominator
        d += math.exp(float(x[i]) - m)
    y = _Output(len(x), log, x._rows)
    for i in range(len(x)):  # pass 3: normalise
        y[i] = math.exp(float(x[i]) - m) / d
    return y.tensor(), _reads(log, x=x)


def online_softmax(x):
    """(2): two passes over x."""
    x, log = _logits(x)
    m, d = -math.inf, 0.0
    for i in range(len(x)):  # pass 1: max and denominator together
        x_i = float(x[i])
        m_new = max(m, x_i)
        d = d * math.exp(m - m_new) + math.exp(x_i - m_new)
        m = m_new
    y = _Output(len(x), log, x._rows)
    for i in range(len(x)):  # pass 2: normalise
        y[i] = math.exp(float(x[i]) - m) / d
    return y.tensor(), _reads(log, x=x)


def three_pass_attention(q, K, V, scale):
    """(3): the logits recomputed from K in each of the three passes."""
    q, K, V, scale, log = _attention(q, K, V, scale)
    m = -math.inf
    for i in range(len(K)):
        m = max(m, _logit(q, K[i], scale))
    d = 0.0
    for i in range(len(K)):
        d += math.exp(_logit(q, K[i], scale) - m)
    return _output_pass(q, K, V, scale, m, d, log)


def _output_pass(q, K, V, scale, m, d, log):
    """The last pass of (3) and (4): O = sum_i e^{x_i - m} / d V[i,:], the logits recomputed."""
    o = _Output(1, log, q)
    acc = torch.zeros(V._rows.shape[-1], dtype=q.dtype)
    for i in range(len(K)):
        acc = acc + math.exp(_logit(q, K[i], scale) - m) / d * V[i]
    o[0] = acc
    return o.tensor()[0], _reads(log, K=K, V=V)


def two_pass_attention(q, K, V, scale):
    """(4): the online statistics in pass 1, the output in pass 2."""
    q, K, V, scale, log = _attention(q, K, V, scale)
    m, d = -math.inf, 0.0
    for i in range(len(K)):
        x_i = _logit(q, K[i], scale)
        m_new = max(m, x_i)
        d = d * math.exp(m - m_new) + math.exp(x_i - m_new)
        m = m_new
    return _output_pass(q, K, V, scale, m, d, log)


def one_pass_attention(q, K, V, scale):
    """(5): one pass; K[i,:] and V[i,:] read together, once."""
    q, K, V, scale, log = _attention(q, K, V, scale)
    m, d = -math.inf, 0.0
    acc = torch.zeros(V._rows.shape[-1], dtype=q.dtype)
    for i in range(len(K)):
        x_i = _logit(q, K[i], scale)
        m_new = max(m, x_i)
        alpha = math.exp(m - m_new)
        d_new = d * alpha + math.exp(x_i - m_new)
        acc = acc * (d * alpha / d_new) + math.exp(x_i - m_new) / d_new * V[i]
        m, d = m_new, d_new
    o = _Output(1, log, q)
    o[0] = acc
    return o.tensor()[0], _reads(log, K=K, V=V)


def _logit(q, k, scale):
    return scale * float(q @ k)


def _reads(log, **inputs):
    return {**{name: list(c.reads) for name, c in inputs.items()},
            "first_write": log["first_write"]}  # fmt: skip


def _log():
    return {"total": 0, "first_write": None}


def _logits(x):
    tensor("x", x, ndim=1)
    if x.shape[0] == 0:
        raise ValueError("x: expected N >= 1 logits, got none")
    log = _log()
    return _Counted(x, log), log


def _attention(q, K, V, scale):
    tensor("q", q, ndim=1)
    tensor("K", K, ndim=2)
    tensor("V", V, ndim=2)
    if K.shape[0] == 0:
        raise ValueError("K: expected N >= 1 rows, got none")
    if K.shape[1] != q.shape[0]:
        raise ValueError(f"K: rows of length {K.shape[1]} do not match q's {q.shape[0]}")
    if V.shape[0] != K.shape[0]:
        raise ValueError(f"V: {V.shape[0]} rows, K has {K.shape[0]}")
    for name, t in (("K", K), ("V", V)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name}: dtype {t.dtype} differs from q's {q.dtype}")
    scale = scalar("scale", scale, 0, lo_open=True)
    log = _log()
    return q, _Counted(K, log), _Counted(V, log), scale, log
