"""One comparison helper: actual vs an exact (Fraction) or float64 reference, within a budget.

    |actual - reference| <= ulps * u * scale + abs_floor        (elementwise)

u is the unit round-off of the actual's dtype (2^-53 for float64). The caller derives `ulps` and
`scale` (a problem-specific magnitude) from an error analysis written next to the call, and never
widens them to make a test pass. ulps = 0 asks for exact equality. The observed error / tolerance
is passed to hypothesis.target, so thorough runs hunt for the worst case, and recorded as evidence.
"""

from fractions import Fraction

import numpy as np
from hypothesis import target
from hypothesis.control import current_build_context, currently_in_test_context

from properties import evidence


def unit_roundoff(dtype):
    return float(np.finfo(dtype).eps) / 2


def abs_error(actual, reference):
    """|actual - reference| as float64, exact when the reference holds Fractions."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    if reference.dtype == object or actual.dtype == object:
        a, r = np.broadcast_arrays(actual, reference)
        return np.array(
            [
                float(abs(Fraction(x) - Fraction(y)))
                for x, y in zip(a.ravel(), r.ravel(), strict=True)
            ]
        ).reshape(a.shape)
    return np.abs(actual.astype(np.float64) - reference.astype(np.float64))


def _target(ratio, what):
    if not currently_in_test_context():
        return
    counts = current_build_context().__dict__.setdefault("_tolerance_labels", {})
    n = counts[what] = counts.get(what, 0) + 1
    target(ratio, label=what if n == 1 else f"{what} #{n}")


EXACT_HINT = (
    " -- the reference is exact (Fractions) and the value under test is {dtype}: this property"
    " needs exact arithmetic on Fraction input, as the family's interface states"
    " (properties/adapters/sa.py: inputs that hold Fractions must be computed exactly)"
)


def assert_close(actual, reference, *, ulps, scale=1.0, abs_floor=0.0, what):
    """Assert the budget above; `what` names the quantity in messages and evidence."""
    actual = np.asarray(actual)
    if actual.shape != np.shape(reference):
        raise AssertionError(
            f"{what}: shape {actual.shape} != reference shape {np.shape(reference)}"
        )
    err = abs_error(actual, reference)
    dtype = actual.dtype if actual.dtype.kind == "f" else np.float64
    floor = np.broadcast_to(np.asarray(abs_floor, float), err.shape)
    tol = np.broadcast_to(ulps * unit_roundoff(dtype) * np.asarray(scale, float), err.shape) + floor
    if np.isnan(err).any():
        raise AssertionError(f"{what}: NaN in the result")
    ratio = np.where(tol > 0, err / np.where(tol > 0, tol, 1.0), np.where(err > 0, np.inf, 0.0))
    worst = float(ratio.max()) if ratio.size else 0.0
    _target(min(worst, 1e300), what)
    evidence.current().worst(f"{what}: max error / tolerance", worst)
    if worst > 1.0:
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        exact = np.asarray(reference).dtype == object and actual.dtype.kind == "f"
        raise AssertionError(
            f"{what}: |actual - reference| = {err[i]:.3e} exceeds the tolerance {tol[i]:.3e} "
            f"({ulps} ulp x scale + {floor[i]:.1e}) at index {tuple(int(j) for j in i)}: "
            f"actual {actual[i]!r}, reference {np.asarray(reference)[i]!r}"
            + (EXACT_HINT.format(dtype=actual.dtype) if exact else "")
        )


def assert_within_richardson(coarse, fine, reference, *, floor, what):
    """|fine - reference| <= 2 e + floor, e = max|coarse - fine| / 3: Richardson's estimate of the
    error of a second-order solution at half the step (error ~ h^2, so coarse - fine ~ 3 e), with
    a factor 2 for the estimate's own error."""
    estimate = float(np.abs(np.asarray(coarse) - np.asarray(fine)).max()) / 3
    assert_close(fine, reference, ulps=0, abs_floor=2 * estimate + floor, what=what)
