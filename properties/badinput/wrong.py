"""Wrong-value makers for the bad-input specs.

A maker takes (the valid keyword arguments, the argument's name) and returns a Hypothesis
strategy of wrong values for that argument. Makers that change an array copy the valid one
(torch tensor, numpy array or list) and break one entry or one dimension of it, so the rest of
the call stays valid. `also(*names)` wraps a maker whose error may name another argument too.
"""

import math

import numpy as np
import torch
from hypothesis import strategies as st


def randn(*shape, seed=0, dtype=torch.float64):
    """A seeded standard normal tensor: the valid arrays of the specs, which the makers break."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class Maker:
    def __init__(self, make, label, names=()):
        self.make, self.label, self.names = make, label, tuple(names)

    def __call__(self, kwargs, arg):
        return self.make(kwargs, arg)

    def __repr__(self):
        return self.label


def also(*names):
    """The maker's error may name any of `names` instead of the argument (a mismatch between two
    arguments may be reported on either side)."""

    def wrap(maker):
        return Maker(maker.make, maker.label, maker.names + names)

    return wrap


def _array(value):
    """(numpy copy, back-conversion) for a tensor, array or list; None for a scalar."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy(), (
            lambda a: torch.as_tensor(a, dtype=value.dtype if a.dtype.kind != "c" else None)
        )
    if isinstance(value, np.ndarray):
        return value.copy(), lambda a: a
    if isinstance(value, (list, tuple)):
        return np.asarray(value), lambda a: a.tolist()
    return None


def values(*wrong):
    """These fixed wrong values."""
    return Maker(lambda kwargs, arg: st.sampled_from(wrong), f"values{wrong!r}")


def _at_one_entry(kwargs, arg, entries):
    """A copy of the valid array with one drawn entry set to a drawn value of `entries`."""
    converted = _array(kwargs[arg])
    if converted is None:
        return entries
    a, back = converted
    if a.size == 0:
        raise ValueError(f"{arg}: the valid value is empty; nothing to break")

    @st.composite
    def broken(draw):
        b = a.astype(np.result_type(a.dtype, np.float64)) if a.dtype.kind in "iub" else a.copy()
        k = draw(st.integers(0, b.size - 1))
        with np.errstate(over="ignore"):  # a huge float into float32 becomes inf: still wrong
            b.reshape(-1)[k] = draw(entries)
        return back(b)

    return broken()


not_finite = Maker(
    lambda kwargs, arg: _at_one_entry(
        kwargs, arg, st.sampled_from([math.nan, math.inf, -math.inf])
    ),
    "not_finite",
)


def outside(lo, hi, lo_open=False, hi_open=False, margin=0.0):
    """A number outside [lo, hi] (an open end itself included) by more than `margin` (what the
    function may accept as rounding, e.g. probabilities that sum to 1 within a tolerance); in an
    array, one entry, drawn so that it is still outside once rounded to the array's dtype
    (1 + 1e-9 is 1 in float32)."""
    lo_m = None if lo is None else lo - margin
    hi_m = None if hi is None else hi + margin
    below = st.floats(max_value=lo_m, exclude_max=not lo_open or margin > 0, allow_nan=False,
                      allow_infinity=False)  # fmt: skip
    above = st.floats(min_value=hi_m, exclude_min=not hi_open or margin > 0, allow_nan=False,
                      allow_infinity=False)  # fmt: skip
    parts = st.one_of(([below] if lo is not None else []) + ([above] if hi is not None else []))

    def is_outside(v):
        inside_lo = lo_m is None or (v > lo_m if lo_open and not margin else v >= lo_m)
        inside_hi = hi_m is None or (v < hi_m if hi_open and not margin else v <= hi_m)
        return not (inside_lo and inside_hi)

    def make(kwargs, arg):
        converted = _array(kwargs[arg])
        if converted is None or converted[0].dtype.kind != "f":
            return _at_one_entry(kwargs, arg, parts)
        dtype = converted[0].dtype

        def still_outside(v):
            with np.errstate(over="ignore"):  # a huge float becomes inf in float32: outside
                return is_outside(float(dtype.type(v)))

        return _at_one_entry(kwargs, arg, parts.filter(still_outside))

    return Maker(make, f"outside({lo}, {hi}" + (f", margin={margin})" if margin else ")"))


not_a_number = values(None, "0.5", [1.0, 2.0], {"x": 1})
not_a_tensor = values(None, "x", {"x": 1})
not_callable = values(None, 3, "f")


def bad_int(lo=1, hi=None):
    """Not an integer in [lo, hi]: below or above it, a float, a bool, a string, None."""
    wrong = st.one_of(
        st.integers(max_value=lo - 1),
        st.integers(min_value=hi + 1) if hi is not None else st.nothing(),
        st.floats(allow_nan=True).filter(lambda v: v != int(v) if math.isfinite(v) else True),
        st.sampled_from([True, False, "3", None, 2.0]),
    )
    return Maker(lambda kwargs, arg: wrong, f"bad_int({lo}, {hi})")


def bad_choice(*options):
    """A string not among the options, or a non-string."""
    wrong = st.one_of(
        st.text(max_size=8).filter(lambda s: s not in options), st.sampled_from([None, 1])
    )
    return Maker(lambda kwargs, arg: wrong, f"bad_choice{options!r}")


def _reshape(kwargs, arg):
    a, back = _array(kwargs[arg])
    fewer = a.reshape(-1) if a.ndim >= 2 else a[0]  # flattened, or one entry of a 1-D array
    return st.sampled_from([a[None], fewer]).map(back)  # one more dimension, or fewer


reshaped = Maker(_reshape, "reshaped")


def mismatched(*others, axis=None):
    """One dimension of the array resized by 1 to 3 (grown or cut), so it no longer matches
    `others` (whose names the error may give instead)."""

    def make(kwargs, arg):
        a, back = _array(kwargs[arg])
        axes = [axis] if axis is not None else list(range(a.ndim))

        @st.composite
        def resized(draw):
            ax = draw(st.sampled_from(axes))
            k = draw(st.integers(1, 3))
            if a.shape[ax] > k and draw(st.booleans()):
                return back(np.take(a, range(a.shape[ax] - k), axis=ax))
            extra = np.take(a, [0] * k, axis=ax)
            return back(np.concatenate([a, extra], axis=ax))

        return resized()

    return Maker(make, f"mismatched{others!r}", others)


def _empty(kwargs, arg):
    a, back = _array(kwargs[arg])
    return st.just(back(a[:0]))


empty = Maker(_empty, "empty")


def _complex(kwargs, arg):
    a, back = _array(kwargs[arg])
    return st.just(back(a.astype(np.complex128)))


complex_dtype = Maker(_complex, "complex_dtype")
