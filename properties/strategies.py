"""Hypothesis strategies shared by the properties."""

from fractions import Fraction

import numpy as np
from hypothesis import strategies as st


class Seed(int):
    """A seed drawn by Hypothesis; it prints as Seed(n) in counterexamples."""

    def __repr__(self):
        return f"Seed({int(self)})"

    def numpy(self):
        return np.random.default_rng(int(self))

    def torch(self):
        import torch

        return torch.Generator().manual_seed(int(self))


seeds = st.integers(0, 2**32 - 1).map(Seed)


def floats(lo, hi, **kw):
    """Finite floats in [lo, hi]."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kw)


def exact_numbers(bound=10**6):
    """Rationals p/q: exact arithmetic references."""
    return st.builds(Fraction, st.integers(-bound, bound), st.integers(1, 1000))
