"""Input validation shared by the public functions of impl/.

Every check raises ValueError (or TypeError) whose message starts with the argument's name and
states the rule that was broken.
"""

import math
import numbers

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
    finite = bool(np.all(np.isfinite(a)))
    below = finite and lo is not None and np.any(a <= lo if lo_open else a < lo)
    above = finite and hi is not None and np.any(a >= hi if hi_open else a > hi)
    if not finite or below or above:
        raise ValueError(_refused(name, v, finite, lo, hi, lo_open, hi_open))
    return v


def _refused(name, v, finite, lo, hi, lo_open, hi_open):
    """The message for a number that is not finite or outside the interval from lo to hi."""
    if lo is not None and hi is not None:
        rule = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        if finite:
            return f"{name}: must lie {rule}, got {v!r:.60}"
    elif lo is not None or hi is not None:
        rule = f"{'>' if lo_open else '>='} {lo}" if lo is not None else ""
        rule = rule or f"{'<' if hi_open else '<='} {hi}"
    else:
        rule = ""
    return f"{name}: must be finite{' and ' if rule else ''}{rule}, got {v!r:.60}"


def scalar(name, v, lo=None, hi=None, *, lo_open=False, hi_open=False, exact=False):
    """One finite real number (a Python or numpy int or float, a 0-d array or tensor; with `exact`
    also a Fraction, compared exactly; not a bool or a list) in the interval as number().
    Returned unchanged, a 0-d array or tensor as its element."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    fraction = exact and isinstance(v, numbers.Rational) and not isinstance(v, (int, np.integer))
    if type(v) is float or fraction:  # plain floats take this fast path: it runs per drift call
        try:
            finite = math.isfinite(float(v))
        except OverflowError:  # a Fraction beyond the float range
            finite = False
        below = finite and lo is not None and (v <= lo if lo_open else v < lo)
        above = finite and hi is not None and (v >= hi if hi_open else v > hi)
        if not finite or below or above:
            raise ValueError(_refused(name, v, finite, lo, hi, lo_open, hi_open))
        return v
    if isinstance(v, (list, tuple)) or getattr(v, "ndim", 0) != 0:
        raise TypeError(f"{name}: must be a single real number, got {v!r:.60}")
    number(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    return v.item() if hasattr(v, "detach") else v


def real(name, v, lo=None, hi=None, *, lo_open=False, hi_open=False, exact=False):
    """scalar(), or a real torch tensor of such numbers (any shape); not a list or an array, which
    the formulas would repeat or concatenate rather than broadcast."""
    if hasattr(v, "detach"):  # a torch tensor (torch is not imported here)
        return number(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    if isinstance(v, np.ndarray):
        raise TypeError(f"{name}: must be a real number or a tensor, got an array")
    return scalar(name, v, lo, hi, lo_open=lo_open, hi_open=hi_open, exact=exact)


def vector(name, v, kinds="fiu"):
    """`v` (a tensor, array, list or tuple) as a non-empty 1-D numpy array of dtype kind in
    `kinds` ("fiu": real numbers, "iu": integers, "biuf": bools too), float entries finite."""
    tensor = hasattr(v, "detach")  # a torch tensor (torch is not imported here)
    if not (tensor or isinstance(v, (np.ndarray, list, tuple))):
        raise TypeError(f"{name}: expected a 1-D tensor or sequence, got {type(v).__name__}")
    try:
        a = np.asarray(v.detach().cpu() if tensor else v)
    except (ValueError, TypeError, RuntimeError) as e:  # a ragged nesting
        raise ValueError(f"{name}: not a 1-D sequence of numbers ({e})") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence, got shape {a.shape}")
    if a.dtype.kind not in kinds:
        what = "integers" if kinds == "iu" else "real numbers"
        raise ValueError(f"{name}: expected {what}, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return a


def flag(name, v):
    """A bool (Python or numpy), returned as bool."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: must be a bool, got {v!r:.60}")
    return bool(v)


def generator(name, g):
    """None (torch's global generator) or a torch.Generator."""
    import torch

    if g is not None and not isinstance(g, torch.Generator):
        raise TypeError(f"{name}: expected a torch.Generator or None, got {type(g).__name__}")
    return g


def rng(name, r, legacy=False):
    """A numpy Generator (or, if `legacy`, also a np.random.RandomState)."""
    kinds = (np.random.Generator, np.random.RandomState) if legacy else np.random.Generator
    if not isinstance(r, kinds):
        raise TypeError(f"{name}: expected a numpy Generator, got {type(r).__name__}")
    return r


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


def batch(name, x, ndim=None):
    """tensor() with at least one row (`ndim` dimensions if given)."""
    tensor(name, x, ndim=ndim)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")
    return x


def same_shape(name, x, other_name, other):
    """x of other's shape (no broadcasting)."""
    if tuple(x.shape) != tuple(other.shape):
        raise ValueError(
            f"{name}: shape {tuple(x.shape)} does not match {other_name}'s {tuple(other.shape)}"
        )
    return x


def pair(name, x, other_name, other, finite=True):
    """tensor() twice, of one shape; a mismatch is reported on `other_name`."""
    tensor(name, x, finite=finite)
    return same_shape(other_name, tensor(other_name, other, finite=finite), name, x)


def broadcasts(name, v, x_name, x):
    """v (a number, or a tensor) broadcasting to x's shape without enlarging it."""
    import torch

    if isinstance(v, torch.Tensor):
        try:
            fits = torch.broadcast_shapes(v.shape, x.shape) == x.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"{name}: shape {tuple(v.shape)} does not broadcast to {x_name}'s {tuple(x.shape)}"
            )
    return v


def choice(name, value, options):
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")
    return value


def function(name, f):
    if not callable(f):
        raise TypeError(f"{name}: expected a callable, got {type(f).__name__}")
    return f


def shape_keeping(name, f, x_name="x"):
    """The callable f(x, t), wrapped to check that it returns a tensor of x's shape (broadcasting
    would hide a wrong one); `x_name` names x in the message."""
    import torch

    function(name, f)

    def checked(x, t):
        out = f(x, t)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{name}: must return a tensor of {x_name}'s shape {tuple(x.shape)}, got {got}"
            )
        return out

    return checked
