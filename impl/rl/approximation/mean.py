"""Mean estimation: incremental and streaming (seed article 7; Zhao, ch. 6.1).

Samples x_1, x_2, ... of a random variable X (numbers or vectors). Equations:

(1) batch mean          w_{k+1} = (1/k) sum_{i=1}^{k} x_i
(2) incremental mean    w_{k+1} = w_k - (1/k) (w_k - x_k),        k = 1, 2, ...;  w_1 arbitrary.
    (2) equals (1) for every k >= 1: the first step has weight 1 and discards w_1.
(3) general step sizes  w_{k+1} = w_k - a_k (w_k - x_k)
    = prod_{j<=k} (1 - a_j) w_1 + sum_{i<=k} a_i prod_{i<j<=k} (1 - a_j) x_i,
    a weighted average of w_1 and the samples (weights sum to 1).
(4) block form, for a stream of chunks: after k samples with mean w, a chunk of m samples with
    mean xbar gives  w <- w + (m / (k + m)) (xbar - w),  i.e. (2) applied to m samples at once.
    Its memory is one chunk, whatever the stream's length.

Arrays of Python Fractions (dtype object) are computed exactly; floats in their own precision;
integer samples average in floating point.
Domain: samples and w_1 finite real numbers (no nan or inf, bool, complex or strings); step sizes
a_k finite and > 0, one per sample; w_1 a number or an array of the samples' shape.
"""

import numpy as np

from impl.rl.approximation import _inputs


def _zero_start(x, w1):
    """w_1, by default 0 in the samples' own type (exact 0 for Fractions, float32 for float32,
    float64 for integers)."""
    zero = np.zeros_like(x[0], dtype=np.result_type(x.dtype, np.float16))
    return _inputs.start("w1", zero if w1 is None else w1, x.shape[1:])


def _iterate_dtype(*arrays):
    """The iterates' dtype: the inputs' common type, at least floating (integers average to
    fractions); object (exact Fractions) when any input is."""
    return np.result_type(*(np.asarray(a) for a in arrays), np.float16)


def incremental_mean(x, w1=None):
    """Iterates w_1, ..., w_{n+1} of (2) for samples x of shape (n, ...); shape (n+1, ...).
    w_1 defaults to 0 in the samples' type."""
    x = _inputs.samples("x", x)
    w = _zero_start(x, w1)
    dtype = _iterate_dtype(x, w)
    iterates = np.empty((x.shape[0] + 1, *x.shape[1:]), dtype=dtype)
    iterates[0] = w
    for k in range(1, x.shape[0] + 1):
        w = w - (w - x[k - 1]) / k  # (2)
        iterates[k] = w
    return iterates


def weighted_iterate(x, a, w1=None):
    """Iterates w_1, ..., w_{n+1} of (3) for samples x and step sizes a_1..a_n (positive);
    w_1 defaults to 0 in the samples' type."""
    x = _inputs.samples("x", x)
    a = _inputs.steps("a", a)
    if a.shape[0] != x.shape[0]:
        raise ValueError(
            f"a: {a.shape[0]} step sizes for {x.shape[0]} samples; need one per sample"
        )
    w = _zero_start(x, w1)
    dtype = _iterate_dtype(x, w, a)
    iterates = np.empty((x.shape[0] + 1, *x.shape[1:]), dtype=dtype)
    iterates[0] = w
    for k in range(1, x.shape[0] + 1):
        w = w - a[k - 1] * (w - x[k - 1])  # (3)
        iterates[k] = w
    return iterates


def streaming_mean(chunks):
    """Mean and count of a stream of chunks (arrays of shape (m, ...) of finite real numbers,
    one sample shape throughout; empty chunks are skipped) by the block form (4)."""
    try:
        chunks = iter(chunks)
    except TypeError:
        raise TypeError(
            f"chunks: expected an iterable of arrays of samples, got {type(chunks).__name__}"
        ) from None
    w, k, shape = None, 0, None
    for i, chunk in enumerate(chunks):
        chunk = _inputs.reals(f"chunks[{i}]", chunk)
        if chunk.ndim == 0:
            raise ValueError(f"chunks: chunk {i} is a scalar; expected an array of samples")
        if shape is not None and chunk.shape[1:] != shape:
            raise ValueError(
                f"chunks: chunk {i} has sample shape {chunk.shape[1:]}, expected {shape}"
            )
        shape, m = chunk.shape[1:], chunk.shape[0]
        if m == 0:
            continue
        xbar = chunk.mean(axis=0)
        w = xbar if w is None else w + (m / (k + m)) * (xbar - w)  # (4)
        k += m
    if k == 0:
        raise ValueError("chunks: empty stream; at least one sample is needed")
    return w, k
