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


def integer(name, n, lo=0, hi=None):
    """A Python or numpy integer (not a bool) in [lo, hi]; returned as int."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}: must be an integer, got {n!r}")
    if n < lo or (hi is not None and n > hi):
        rule = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name}: must be an integer {rule}, got {n!r}")
    return int(n)


def number(name, v, lo=None, hi=None, *, lo_open=False, hi_open=False):
    """A finite real number, or an array/tensor of them, in the interval from lo to hi (None:
    unbounded; an open end excluded). Returned unchanged."""
    if isinstance(v, (bool, str, bytes)) or v is None:
        raise TypeError(f"{name}: must be a real number, got {v!r:.60}")
    a = np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: must be a real number, got {type(v).__name__} of {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: must be finite, got {v!r:.60}")
    below = lo is not None and np.any(a <= lo if lo_open else a < lo)
    above = hi is not None and np.any(a >= hi if hi_open else a > hi)
    if below or above:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"{name}: must lie in {interval}, got {v!r:.60}")
    return v


def tensor(name, x, ndim=None, finite=True):
    """A real floating torch tensor with `ndim` dimensions (an int or a tuple of allowed ones)
    and, if `finite`, no nan or inf."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a real floating-point tensor, got {x.dtype}")
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and x.ndim not in allowed:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(x.shape)}")
    # A finite sum has no nan or inf term; only when it is not (or overflows) look at each entry.
    if finite and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return x


def same_shape(name, x, other_name, other):
    if tuple(x.shape) != tuple(other.shape):
        raise ValueError(
            f"{name}: shape {tuple(x.shape)} does not match {other_name}'s {tuple(other.shape)}"
        )
    return x


def choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")
    return value


def function(name, f):
    if not callable(f):
        raise TypeError(f"{name}: expected a callable, got {type(f).__name__}")
    return f
