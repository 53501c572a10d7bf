"""The shared helpers of impl/: input checks (impl/_checks.py), the first-order recursion
(impl/_recursion.py) and the torch memory probe (impl/_memory.py)."""

import numpy as np
import pytest
import torch

from impl import _checks, _memory, _recursion


def test_checks_accept_and_reject_what_they_say():
    with pytest.raises(ValueError, match=r"^a: step sizes must be finite and > 0; a\[1\] = -1\.0"):
        _checks.steps("a", [0.5, -1.0])
    with pytest.raises(ValueError, match=r"^a: step sizes must be finite and >= 0; a\[2\] = "):
        _checks.steps("a", [0.5, 0.0, -1.0], allow_zero=True)
    with pytest.raises(
        ValueError, match=r"^a: step sizes must be finite and in \[0, 1\]; a\[0\] = 1\.5"
    ):
        _checks.steps("a", [1.5], allow_zero=True, at_most_one=True)
    for bad in (True, 2.0, 0, -3):
        with pytest.raises(ValueError, match="^n: must be a positive integer"):
            _checks.positive_int("n", bad)
    for bad in ([], [[1, 2]], [1.0, 2.0]):
        with pytest.raises(ValueError, match="^keep: expected a non-empty 1-D sequence of integer"):
            _checks.keep_indices("keep", bad, 5)
    np.testing.assert_array_equal(_checks.keep_indices("keep", None, 3), [1, 2, 3])


def test_recursion_keeps_the_chosen_iterates_in_float64():
    """x_1 = x1, x_{k+1} = step(x_k, k); float32 or integer x1 is widened first (so the steps
    compute in float64); `keep` may skip the first iterate or keep only it."""
    x1 = np.float32(1.0)
    out = _recursion.iterate(lambda x, k: x / 3 + k, x1, 3)
    expected = [1.0]
    for k in (1, 2, 3):
        expected.append(expected[-1] / 3 + k)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(_recursion.iterate(lambda x, k: x / 3 + k, 1, 3, keep=[1]), [1.0])
    np.testing.assert_array_equal(
        _recursion.iterate(lambda x, k: x / 3 + k, 1, 3, keep=[1, 4]), [1.0, expected[3]]
    )
    np.testing.assert_array_equal(
        _recursion.iterate(lambda x, k: x / 3 + k, 1, 3, keep=[2, 3]), expected[1:3]
    )


def test_memory_probe_of_a_function_that_allocates_nothing_is_zero():
    extra, result = _memory.peak_extra_bytes(lambda: 7)
    assert (extra, result) == (0, 7)
    extra, _ = _memory.peak_extra_bytes(lambda: torch.empty(1 << 20, dtype=torch.uint8))
    assert extra >= 1 << 20
