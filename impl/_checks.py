"""Input validation shared by the public functions of impl/.

Every check raises ValueError (or TypeError) whose message starts with the argument's name and
states the rule that was broken.
"""

import numpy as np


def samples(name, x):
    """`x` as an array of at least one sample along axis 0 (float, or object for exact numbers)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name}: expected a sequence of samples, got a scalar")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: empty sequence; at least one sample is needed")
    if x.dtype.kind not in "fiuO":
        raise TypeError(f"{name}: samples must be numbers, got dtype {x.dtype}")
    return x


def start(name, w1, sample_shape):
    """The starting point `w1`: a number or an array of the samples' shape."""
    w1 = np.asarray(w1)
    if w1.dtype.kind not in "fiuO":
        raise TypeError(f"{name}: must be a number or an array of numbers, got dtype {w1.dtype}")
    if w1.ndim and w1.shape != tuple(sample_shape):
        raise ValueError(
            f"{name}: shape {w1.shape} does not match the sample shape {tuple(sample_shape)}"
        )
    if w1.dtype.kind == "f" and not np.all(np.isfinite(w1)):
        raise ValueError(f"{name}: must be finite")
    return w1[()] if w1.ndim == 0 else w1


def steps(name, a, *, allow_zero=False, at_most_one=False):
    """A 1-D, non-empty sequence of finite step sizes, positive (or >= 0 if `allow_zero`)."""
    a = np.asarray(a)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D sequence of step sizes, got shape {a.shape}"
        )
    if a.dtype.kind not in "fiuO":
        raise TypeError(f"{name}: step sizes must be numbers, got dtype {a.dtype}")
    values = a.astype(float)
    bad = ~np.isfinite(values) | ((values < 0) if allow_zero else (values <= 0))
    if at_most_one:
        bad |= values > 1
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        rule = "in [0, 1]" if at_most_one else (">= 0" if allow_zero else "> 0")
        raise ValueError(f"{name}: step sizes must be finite and {rule}; {name}[{k}] = {a[k]}")
    return a


def positive_int(name, n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: must be a positive integer, got {n!r}")
    return int(n)


def keep_indices(name, keep, last):
    """1-based iterate indices in [1, last], or all of them when `keep` is None."""
    if keep is None:
        return np.arange(1, last + 1)
    keep = np.asarray(keep)
    if keep.ndim != 1 or keep.size == 0 or keep.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected a non-empty 1-D sequence of integer indices")
    if keep.min() < 1 or keep.max() > last:
        raise ValueError(
            f"{name}: indices must lie in [1, {last}], got [{keep.min()}, {keep.max()}]"
        )
    return keep
