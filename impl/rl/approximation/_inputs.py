"""Input checks shared by impl/rl/approximation/ (on top of impl/_checks.py, which lacks them).

Every check raises ValueError or TypeError whose message starts with the argument's name. Exact
numbers (Python Fractions and integers in an array of dtype object) pass wherever floats do.
"""

import math
import numbers

import numpy as np

from impl import _checks


def reals(name, v, *, finite=True):
    """`v` as an array of real numbers: floats, integers (Python or numpy) or exact numbers
    (Fractions, dtype object); not bool, complex, strings, None or a ragged nesting. With
    `finite`, no nan or inf either."""
    if v is None or isinstance(v, (str, bytes, dict)):
        raise TypeError(f"{name}: expected real numbers, got {type(v).__name__}")
    try:
        a = np.asarray(v)
    except ValueError:
        raise ValueError(f"{name}: not a rectangular array of numbers (ragged nesting)") from None
    if a.dtype.kind == "O":
        for e in a.flat:
            if isinstance(e, (bool, np.bool_)) or not isinstance(e, numbers.Real):
                raise TypeError(f"{name}: expected real numbers, got an entry {e!r:.40}")
            if finite and not isinstance(e, numbers.Rational) and not math.isfinite(e):
                raise ValueError(f"{name}: has a non-finite entry ({e!r})")
    elif a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    elif finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return a


def vector(name, v):
    """A non-empty 1-D array of finite real numbers, as float64."""
    a = reals(name, v)
    if a.ndim != 1 or a.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence, got shape {a.shape}")
    return a.astype(float)


def steps(name, a, **kwargs):
    """_checks.steps (a non-empty 1-D sequence of finite step sizes), after refusing what is
    not an array of real numbers."""
    return _checks.steps(name, reals(name, a, finite=False), **kwargs)


def samples(name, x):
    """_checks.samples (at least one sample along axis 0), of finite real numbers."""
    return _checks.samples(name, reals(name, x))


def start(name, w1, sample_shape):
    """_checks.start (a number or an array of the samples' shape), of finite real numbers."""
    return _checks.start(name, reals(name, w1), sample_shape)
