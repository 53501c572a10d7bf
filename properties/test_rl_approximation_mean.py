"""SA-01: the incremental mean (impl/rl/approximation/mean.py), exactly and in float64."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from impl.rl.approximation import mean
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import exact_numbers, floats
from properties.tolerances import assert_close, unit_roundoff

U = unit_roundoff(np.float64)
TINY = 2.0**-1074  # the absolute error of one rounding into the subnormal range


def prefix_means(x):
    """Exact batch means (1/k) sum_{i<=k} x_i, k = 1..n, as Fractions."""
    total, means = Fraction(0), []
    for k, xk in enumerate(x, start=1):
        total += Fraction(xk)
        means.append(total / k)
    return np.array(means, dtype=object)


@claim("SA-01")
@given(x=st.lists(exact_numbers(), min_size=1, max_size=40), w1=exact_numbers(10**12))
def test_incremental_mean_is_the_batch_mean_exactly(sa, x, w1):
    # In exact arithmetic the claim is an identity: no tolerance.
    w = sa.incremental_mean(np.array(x, dtype=object), w1)
    assert len(w) == len(x) + 1 and w[0] == w1
    assert_close(w[1:], prefix_means(x), ulps=0, what="w_{k+1} - batch mean (exact)")
    current().summary = "exact identity on rationals, any w_1 and the default w_1 = 0"


@claim("SA-01")
@given(x=st.lists(exact_numbers(), min_size=1, max_size=40))
def test_default_start_keeps_the_mean_exact(sa, x):
    """The default path a user gets (no w_1): w_1 = 0, and rational samples stay exact."""
    w = sa.incremental_mean(np.array(x, dtype=object))
    assert len(w) == len(x) + 1 and w[0] == 0
    assert_close(w[1:], prefix_means(x), ulps=0, what="w_{k+1} - batch mean (exact, default w_1)")


@claim("SA-01")
@given(x=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=40), default=st.booleans())
def test_integer_samples_average_to_fractions(sa, x, default):
    """Integer samples (and an integer w_1 = 0, or the default) give the batch means, which are
    fractions: the iterates must be floating, within the float64 budget of float64_budget."""
    x = np.array(x, dtype=np.int64)
    w = sa.incremental_mean(x) if default else sa.incremental_mean(x, 0)
    assert w.dtype.kind == "f", f"integer samples give iterates of dtype {w.dtype}"
    scale, floor = float64_budget(x.astype(float), 0.0)
    assert_close(w[1:], prefix_means(x.tolist()), ulps=1, scale=scale, abs_floor=floor,
                 what="w_{k+1} - batch mean (integer samples)")  # fmt: skip


def float64_budget(x, w1):
    """Per-prefix error budget of the float64 recursion w <- w - (w - x_k)/k.

    The recursion is affine in w with factor (1 - 1/k), so the rounding error e of the iterate
    obeys e_{k+1} = (1 - 1/k) e_k + delta_k, e_2 = delta_1, hence e_{n+1} = sum_k (k/n) delta_k.
    Each step rounds three times (u = 2^-53):
        |delta_k| <= (2u + u^2) |w_k - x_k| / k + u |w_{k+1}| / (1 - u).
    With M_n = max_{i<=n} |x_i| (so |w_k| <= M_n for k >= 2, up to O(n u)), and the first
    step carrying |w_1 - x_1|:
        |e_{n+1}| <= u [2.01 |w_1 - x_1| / n + (0.51 (n + 1) + 4.1) M_n] + 2 n 2^-1074.
    The last term covers results that round into the subnormal range.
    """
    x = np.asarray(x, dtype=float)
    n = np.arange(1, x.shape[0] + 1).reshape((-1,) + (1,) * (x.ndim - 1))
    m = np.maximum.accumulate(np.abs(x).reshape(x.shape[0], -1).max(axis=1)).reshape(n.shape)
    first = np.abs(np.asarray(w1, dtype=float) - x[0])
    scale = 2.01 * first / n + (0.51 * (n + 1) + 4.1) * m
    return np.broadcast_to(scale, x.shape), 2 * n * TINY


@claim("SA-01")
@given(
    x=st.integers(1, 3).flatmap(
        lambda d: arrays(
            np.float64, st.tuples(st.integers(1, 60), st.just(d)), elements=floats(-1e150, 1e150)
        )
    ),
    w1=floats(-1e150, 1e150),
    vector=st.booleans(),
)
@example(x=np.array([[1.0]]), w1=0.0, vector=False)
def test_incremental_mean_float64_within_error_budget(sa, x, w1, vector):
    x = x if vector else x[:, 0]
    start = np.full(x.shape[1:], w1) if vector else w1
    w = np.asarray(sa.incremental_mean(x, start), dtype=float)
    assert w.shape == (x.shape[0] + 1, *x.shape[1:])
    scale, floor = float64_budget(x, w1)
    reference = np.stack(
        [prefix_means(col) for col in x.reshape(x.shape[0], -1).T], axis=1
    ).reshape(x.shape)
    assert_close(
        w[1:],
        reference,
        ulps=1,
        scale=scale,
        abs_floor=floor,
        what="w_{k+1} - batch mean (float64)",
    )
    current().summary = (
        "float64 iterates within the derived rounding budget of the exact batch mean"
    )


@claim("SA-01")
@given(
    sizes=st.lists(st.integers(0, 50), min_size=1, max_size=12).filter(lambda s: sum(s) > 0),
    data=st.data(),
)
def test_streaming_block_form_is_the_batch_mean(sa, sizes, data):
    # Block form w <- w + m/(k+m) (xbar - w). Budget: a chunk mean of m samples is off by at most
    # 1.01 m u M (recursive summation, M = max |x|); the update's four roundings add 7 u M; every
    # later update multiplies the error by k/(k+m) <= 1. Total <= u M (1.01 N + 7 B) for N samples
    # in B chunks, plus one subnormal rounding per operation.
    chunks = [data.draw(arrays(np.float64, (m,), elements=floats(-1e100, 1e100))) for m in sizes]
    w, count = sa.streaming_mean(iter(chunks))
    x = np.concatenate(chunks)
    assert count == x.size
    big = float(np.abs(x).max())
    budget = big * (1.01 * x.size + 7 * len(chunks))
    assert_close(
        w,
        prefix_means(x)[-1],
        ulps=1,
        scale=budget,
        abs_floor=8 * len(chunks) * TINY,
        what="streaming mean - batch mean",
    )
    current().summary = "block (chunked) form equals the batch mean within its rounding budget"


def test_negative_control_off_by_one_step_is_rejected():
    """The exact SA-01 comparison rejects the tempting a_k = 1/(k+1) (it treats w_1 as data)."""
    from properties.adapters.sa import OffByOneMean

    x = np.array([Fraction(1)], dtype=object)
    w = OffByOneMean.incremental_mean(x, Fraction(0))
    with pytest.raises(AssertionError, match="batch mean"):
        assert_close(w[1:], prefix_means(x), ulps=0, what="w_{k+1} - batch mean (exact)")


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: mean.incremental_mean([]), "x"),
        (lambda: mean.incremental_mean(3.0), "x"),
        (lambda: mean.incremental_mean(np.ones((3, 2)), np.zeros(3)), "w1"),
        (lambda: mean.incremental_mean([1.0], np.nan), "w1"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5, 0.0]), "a"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5, -1.0]), "a"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5, np.inf]), "a"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5, np.nan]), "a"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5]), "a"),
        (lambda: mean.streaming_mean([]), "chunks"),
        (lambda: mean.streaming_mean([np.zeros(0)]), "chunks"),
        (lambda: mean.streaming_mean([np.ones((2, 3)), np.ones((2, 2))]), "chunks"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


def test_weighted_iterate_with_harmonic_steps_is_the_incremental_mean():
    x = np.array([Fraction(3), Fraction(-1, 2), Fraction(7, 3)], dtype=object)
    a = np.array([Fraction(1, k) for k in (1, 2, 3)], dtype=object)
    assert list(mean.weighted_iterate(x, a, Fraction(9))) == list(
        mean.incremental_mean(x, Fraction(9))
    )


def test_contract_vector_samples_dtypes_default_start_and_empty_chunks():
    """Beyond the value: w_1 defaults to 0; vector samples keep their shape; the iterates take
    the common dtype of x, w_1 and a (float32 stays float32); an empty chunk anywhere in the
    stream is skipped, not the end of it."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3))
    a = 1 / np.arange(1, 7)
    running = np.cumsum(x, axis=0) / np.arange(1, 7)[:, None]
    for w in (mean.incremental_mean(x), mean.weighted_iterate(x, a)):
        assert w.shape == (7, 3) and np.all(w[0] == 0.0)
        # 6 steps of one rounding each on values below max|x|: 16 ulps of max|x| is ample
        assert_close(w[1:], running, ulps=16, scale=np.abs(x).max(), what="vector running mean")
    x32, a32, w32 = x.astype(np.float32), a.astype(np.float32), np.float32(0)
    for xs, w1, steps, dtype in [
        (x32, w32, a32, np.float32),
        (x, w32, a32, np.float64),
        (x32, np.zeros(3), a32, np.float64),
        (x32, w32, a, np.float64),
    ]:
        assert mean.weighted_iterate(xs, steps, w1=w1).dtype == dtype
        if steps.dtype == np.float32:
            assert mean.incremental_mean(xs, w1=w1).dtype == dtype
    w, n = mean.streaming_mean([x[:2], x[2:2], x[2:5], x[5:5], x[5:]])
    assert n == 6
    assert_close(w, x.mean(axis=0), ulps=16, scale=np.abs(x).max(), what="streaming mean")


def test_issue_16_integer_samples_give_float_means_and_fractions_stay_exact():
    """Issue 16: incremental_mean([1, 2], w1=0) returned the integers [0, 1, 1]. Integer samples
    (Python or numpy, with an integer w_1) average in floating point; Fractions stay exact."""
    w = mean.incremental_mean([1, 2], w1=0)
    assert w.dtype.kind == "f" and w.tolist() == [0.0, 1.0, 1.5]
    w = mean.incremental_mean(np.array([1, 2], dtype=np.int32), w1=np.int64(0))
    assert w.dtype.kind == "f" and w.tolist() == [0.0, 1.0, 1.5]
    w = mean.weighted_iterate([1, 2], [1, 1], w1=0)
    assert w.dtype.kind == "f" and w.tolist() == [0.0, 1.0, 2.0]
    exact = mean.incremental_mean(np.array([Fraction(1), Fraction(2)], dtype=object), Fraction(0))
    assert exact.tolist() == [0, 1, Fraction(3, 2)]
    assert all(isinstance(v, Fraction) for v in exact)


@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda: mean.incremental_mean([1.0, np.nan]), ValueError, "x"),
        (lambda: mean.incremental_mean([True, False]), TypeError, "x"),
        (lambda: mean.incremental_mean([None, 1.0]), TypeError, "x"),
        (lambda: mean.incremental_mean([[1.0], [1.0, 2.0]]), ValueError, "x"),
        (lambda: mean.incremental_mean([1.0, 2.0], w1={"x": 1}), TypeError, "w1"),
        (lambda: mean.weighted_iterate([1.0, 2.0], [0.5, None]), TypeError, "a"),
        (lambda: mean.streaming_mean(None), TypeError, "chunks"),
        (lambda: mean.streaming_mean([np.array([1.0, np.inf])]), ValueError, "chunks"),
    ],
)
def test_wrong_types_and_non_finite_samples_name_the_argument(call, error, argument):
    with pytest.raises(error, match=rf"^{argument}(\[\d+\])?: "):
        call()
