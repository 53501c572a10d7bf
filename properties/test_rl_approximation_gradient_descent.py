"""SA-04, SA-06, SA-07: BGD, MBGD and SGD on the mean objective
(impl/rl/approximation/gradient_descent.py). Exact claims are checked on rationals."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from impl.rl.approximation import gradient_descent as gd
from properties import stats
from properties.catalogue import claim
from properties.evidence import current
from properties.profiles import statistical
from properties.strategies import exact_numbers, floats, seeds
from properties.tolerances import assert_close

samples = st.integers(1, 3).flatmap(
    lambda d: st.lists(st.lists(exact_numbers(), min_size=d, max_size=d), min_size=1, max_size=12)
)


def as_exact(rows):
    return np.array(rows, dtype=object)


def mean_of(x):
    return x.sum(axis=0) / x.shape[0]


# SA-04 (second half): mean estimation is SGD on f(w, x) = 1/2 ||w - x||^2 ------------------


def autograd_grad(w, x):
    """grad_w 1/2 ||w - x||^2 by torch autograd in float64."""
    import torch

    wt = torch.tensor(np.asarray(w, dtype=np.float64), requires_grad=True)
    f = 0.5 * ((wt - torch.as_tensor(np.asarray(x, dtype=np.float64))) ** 2).sum()
    f.backward()
    return wt.grad.numpy()


normal_floats = floats(-1e6, 1e6).filter(lambda v: v == 0 or abs(v) > 1e-300)


@claim("SA-04")
@given(
    x=st.lists(normal_floats, min_size=1, max_size=30),
    w1=normal_floats,
    a=st.one_of(st.none(), st.lists(floats(1e-3, 1.0), min_size=30, max_size=30)),
)
def test_sgd_on_half_squared_distance_is_the_mean_iteration(sa, x, w1, a):
    """Autograd's gradient of 1/2 (w - x)^2 is 0.5 * 2 * (w - x): multiplications by powers of two
    are exact away from overflow and subnormals (excluded), so SGD's iterates equal those of
    w_{k+1} = w_k - a_k (w_k - x_k) bit for bit (tolerance 0); a_k = 1/k gives the incremental
    mean. The same holds for the default gradient a user gets (no `grad` argument): it must be
    the gradient of 1/2 ||w - x||^2, not of ||w - x||^2."""
    x = np.array(x)
    if a is None:
        reference = sa.incremental_mean(x, w1)
    else:
        a = np.array(a[: len(x)])
        reference = sa.weighted_iterate(x, a, w1)
    iterates = sa.sgd(x, np.float64(w1), alpha=a, grad=autograd_grad)
    assert_close(iterates, reference, ulps=0, what="SGD (autograd) iterate - mean iterate")
    default = sa.sgd(x, np.float64(w1), alpha=a)
    assert_close(default, reference, ulps=0, what="SGD (default gradient) iterate - mean iterate")
    current().summary = (
        "SGD with torch autograd gradients reproduces the mean iteration bit for bit"
    )


# SA-06: BGD, MBGD and SGD with alpha_k = 1/k ------------------------------------------------


@claim("SA-06")
@given(x=samples, w1_seed=exact_numbers(), n_iter=st.integers(1, 6))
def test_bgd_gives_the_sample_mean(sa, x, w1_seed, n_iter):
    x = as_exact(x)
    w1 = np.full(x.shape[1], w1_seed, dtype=object)
    w = sa.bgd(x, w1, n_iter)
    for k in range(1, n_iter + 1):
        assert_close(w[k], mean_of(x), ulps=0, what="BGD w_{k+1} - sample mean (exact)")


@claim("SA-06")
@given(x=samples, w1_seed=exact_numbers())
def test_sgd_gives_the_running_mean(sa, x, w1_seed):
    x = as_exact(x)
    w = sa.sgd(x, np.full(x.shape[1], w1_seed, dtype=object))
    for k in range(1, x.shape[0] + 1):
        assert_close(w[k], mean_of(x[:k]), ulps=0, what="SGD w_{k+1} - running mean (exact)")


@claim("SA-06")
@given(data=st.data(), x=samples, w1_seed=exact_numbers())
def test_mbgd_gives_the_average_of_batch_means(sa, data, x, w1_seed):
    x = as_exact(x)
    n = x.shape[0]
    m = data.draw(st.integers(1, 2 * n), label="m")
    batches = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, n - 1), min_size=m, max_size=m), min_size=1, max_size=6
            ),
            label="batches",
        )
    )
    w = sa.mbgd(x, np.full(x.shape[1], w1_seed, dtype=object), batches)
    batch_means = [mean_of(x[b]) for b in batches]
    for k in range(1, len(batches) + 1):
        assert_close(
            w[k], sum(batch_means[:k]) / k, ulps=0, what="MBGD w_{k+1} - average of batch means"
        )
    current().summary = (
        "exact on rationals: BGD -> sample mean, SGD -> running mean, MBGD -> mean of batch means"
    )


@claim("SA-06")
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_mbgd_with_m_equal_n_with_replacement_is_not_bgd(sa, n):
    """x_i = (n+1)^i: a batch of n indices has the sample mean iff it is a permutation (base-(n+1)
    digits are unique), so over all n^n equally likely batches MBGD's first step equals BGD's
    with probability exactly n!/n^n < 1; without replacement (a permutation) always."""
    x = as_exact([[Fraction((n + 1) ** i)] for i in range(n)])
    w1 = np.array([Fraction(0)], dtype=object)
    target = sa.bgd(x, w1, 1)[1]
    same = sum(
        bool(np.all(sa.mbgd(x, w1, np.array([batch]))[1] == target))
        for batch in itertools.product(range(n), repeat=n)
    )
    assert same == math.factorial(n), (
        f"{same} of the {n**n} batches with replacement give BGD's step; only the n! = "
        f"{math.factorial(n)} permutations should"
    )
    for perm in itertools.permutations(range(n)):
        assert np.all(sa.mbgd(x, w1, np.array([perm]))[1] == target)
    current().record(**{f"P(MBGD step = BGD step), n={n}": same / n**n})
    current().summary = (
        "m = n with replacement equals BGD only when the batch is a permutation: n!/n^n"
    )


@claim("SA-06")
def test_minimal_witness_that_resampling_is_not_bgd(sa):
    def differs(case):
        x, batch = case
        x = as_exact([[v] for v in x])
        w1 = np.array([Fraction(0)], dtype=object)
        return not np.all(sa.mbgd(x, w1, np.array([batch[: len(x)]]))[1] == sa.bgd(x, w1, 1)[1])

    strategy = st.tuples(
        st.lists(st.integers(-3, 3).map(Fraction), min_size=2, max_size=4),
        st.lists(st.integers(0, 1), min_size=4, max_size=4),
    )
    x, batch = find(strategy, differs)
    current().record(witness=f"x = {[str(v) for v in x]}, batch = {batch[: len(x)]}")


# SA-07: the relative error of the stochastic gradient ------------------------------------


@claim("SA-07")
@given(
    d=st.integers(1, 3),
    data=st.data(),
)
def test_relative_error_identity_for_the_mean(sa, d, data):
    """delta = |grad f(w,x) - E grad f(w,X)| / |E grad f(w,X)| equals |E X - x| / |w - w*| (so the
    article's <= holds with equality): checked squared, exactly, with E over a finite law."""
    vec = st.lists(exact_numbers(), min_size=d, max_size=d).map(as_exact)
    support = data.draw(st.lists(vec, min_size=1, max_size=5), label="support")
    weights = data.draw(st.lists(st.integers(1, 9), min_size=len(support), max_size=len(support)))
    p = [Fraction(wt, sum(weights)) for wt in weights]
    w_star = sum(pi * v for pi, v in zip(p, support, strict=True))
    w = data.draw(vec.filter(lambda w: any(w != w_star)), label="w")
    x = data.draw(vec, label="x")
    expected_grad = sum(pi * gd.mean_objective_grad(w, v) for pi, v in zip(p, support, strict=True))
    lhs = sum((gd.mean_objective_grad(w, x) - expected_grad) ** 2) / sum(expected_grad**2)
    rhs = sum((w_star - x) ** 2) / sum((w - w_star) ** 2)
    assert lhs == rhs
    # The float64 implementation, against the exact value for the same (float) inputs. Rounding:
    # w - x and w - w* are off by u|.| per component; their difference cancels, adding
    # u (|w - x| + |w - w*|) absolutely; each norm adds (d + 2)u, the division u, and the
    # reference's float sqrt u: |error| <= u [(|w - x| + |w - w*|) / |w - w*| + (2d + 8) delta],
    # to first order (1.01 covers the second).
    wf, xf, mf = (np.array(v, dtype=float) for v in (w, x, w_star))
    if np.any(wf != mf):
        exact = math.sqrt(
            sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(xf, mf, strict=True))
            / sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(wf, mf, strict=True))
        )
        norm = np.linalg.norm
        scale = 1.01 * ((norm(wf - xf) + norm(wf - mf)) / norm(wf - mf) + (2 * d + 8) * exact)
        got = sa.relative_gradient_error(wf, xf, mf)
        assert_close(got, exact, ulps=1, scale=scale, what="relative_gradient_error (float64)")
    current().summary = (
        "identity holds with equality; delta -> 0 far from w* (GD-like), grows near w*"
    )


@claim("SA-07")
@statistical()
@given(seed=seeds)
def test_sgd_is_gd_like_far_and_noisy_near(sa, seed):
    """SGD (alpha_k = 1/k) on N(w*, 1) samples from w_1 - w* = 1e3, 400 independent coordinates.
    Far: delta_1 = |x_1 - w*| / 1e3 <= 1e-2 unless |x_1 - w*| > 10 (P <= 400 * 1.6e-23 for all 400).
    Near: w_k - w* is the mean of k - 1 samples, N(0, 1/(k-1)), independent of x_k, so
    P(delta_k > 1) = P(|Z_2| < sqrt(k-1) |Z_1|) = (2/pi) arctan(sqrt(k-1)) (a Cauchy ratio):
    0.937 at k = 101; the count among 400 coordinates is tested against that binomial law."""
    runs, k = 400, 101
    x = 5.0 + seed.numpy().standard_normal((k, runs))
    w = sa.sgd(x, np.full(runs, 5.0 + 1e3))
    first = [sa.relative_gradient_error(w[0, i], x[0, i], 5.0) for i in range(runs)]
    late = [sa.relative_gradient_error(w[k - 1, i], x[k - 1, i], 5.0) for i in range(runs)]
    assert max(first) <= 1e-2, "far from w*, SGD's gradient is within 1% of the true one"
    noisy = int(np.sum(np.array(late) > 1.0))
    stats.binomial_two_sided(
        noisy, runs, 2 / math.pi * math.atan(math.sqrt(k - 1)), what="delta_101 > 1"
    )
    current().record(max_delta_1=max(first), fraction_delta_101_above_1=noisy / runs)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: gd.bgd([1.0], 0.0, 0), "n_iter"),
        (lambda: gd.bgd([], 0.0, 1), "x"),
        (lambda: gd.mbgd([1.0, 2.0], 0.0, [[0, 2]]), "batches"),
        (lambda: gd.mbgd([1.0, 2.0], 0.0, [[0.5]]), "batches"),
        (lambda: gd.mbgd([1.0, 2.0], 0.0, [[0], [1]], alpha=[1.0]), "alpha"),
        (lambda: gd.sgd([1.0, 2.0], 0.0, alpha=[1.0, 0.0]), "alpha"),
        (lambda: gd.sgd(np.ones((2, 2)), np.zeros(3)), "w1"),
        (lambda: gd.sample_batches(3, 4, 2, np.random.default_rng(0), replace=False), "m"),
        (lambda: gd.relative_gradient_error(1.0, 2.0, 1.0), "w"),
        (lambda: gd.relative_gradient_error([1.0, 2.0], 2.0, 1.0), "x"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


@claim("SA-06")
@statistical()
@given(n=st.integers(2, 4), seed=seeds)
def test_sampled_batches_of_size_n_with_and_without_replacement(sa, n, seed):
    """The batches of MBGD as sample_batches draws them, m = n, x_i = (n+1)^i (base-(n+1) digits:
    a batch's mean is the sample mean iff the batch is a permutation). Without replacement every
    batch is a permutation, so MBGD's iterates are BGD's exactly (rationals, tolerance 0). With
    replacement a batch is n i.i.d. uniform indices, a permutation with probability n!/n^n
    (1/2, 2/9, 3/32 for n = 2, 3, 4): the count of first MBGD steps equal to BGD's among K = 2000
    sampled batches is tested against Binomial(K, n!/n^n), two-sided, alpha = 1e-7."""
    rng, K = seed.numpy(), 2000
    x = as_exact([[Fraction((n + 1) ** i)] for i in range(n)])
    w1 = np.array([Fraction(0)], dtype=object)
    without = gd.sample_batches(n, n, 20, rng, replace=False)
    assert_close(sa.mbgd(x, w1, without), sa.bgd(x, w1, 20), ulps=0,
                 what="MBGD (m = n, without replacement) - BGD")  # fmt: skip
    batches = gd.sample_batches(n, n, K, rng, replace=True)
    assert batches.shape == (K, n) and batches.min() >= 0 and batches.max() < n
    target = mean_of(x)
    same = sum(bool(np.all(sa.mbgd(x, w1, batch[None])[1] == target)) for batch in batches)
    p = math.factorial(n) / n**n
    stats.binomial_two_sided(
        same, K, p, what=f"MBGD step = BGD step, m = n = {n}, with replacement"
    )
    current().record(**{f"fraction of BGD-equal steps, n = {n}": same / K})
    current().summary = (
        "with replacement, m = n equals BGD in n!/n^n of the batches; without, always"
    )


def test_sample_batches_shapes_and_replacement():
    rng = np.random.default_rng(0)
    b = gd.sample_batches(5, 5, 3, rng, replace=False)
    assert b.shape == (3, 5) and all(sorted(row) == list(range(5)) for row in b)
    assert gd.sample_batches(2, 7, 4, rng, replace=True).shape == (4, 7)


def test_explicit_step_sizes_are_the_ones_used():
    """With explicit alpha_1..alpha_K, every method is w_{k+1} = w_k - alpha_k g_k(w_k) with its
    own gradient estimate g_k (all samples, the k-th batch, the k-th sample); same floating-point
    operations as the recursion written out here, so equal exactly."""
    rng = np.random.default_rng(2)
    x, w1 = rng.standard_normal((5, 2)), np.array([1.0, -2.0])
    alpha = np.array([0.5, 0.25, 0.3, 0.1, 0.2])
    batches = np.array([[0, 1], [2, 3], [4, 0], [1, 1], [3, 2]])

    def recursion(index):
        w, out = w1, [w1]
        for k, i in enumerate(index):
            w = w - alpha[k] * gd.mean_objective_grad(w, x[i]).mean(axis=0)
            out.append(w)
        return np.stack(out)

    everything = [np.arange(5)] * 5
    np.testing.assert_array_equal(gd.bgd(x, w1, 5, alpha=alpha), recursion(everything))
    np.testing.assert_array_equal(gd.mbgd(x, w1, batches, alpha=alpha), recursion(batches))
    np.testing.assert_array_equal(gd.sgd(x, w1, alpha=alpha), recursion([[k] for k in range(5)]))
    for bad in (np.array([0, 1, 2]), np.array([[0.0, 1.0]]), np.zeros((0, 2), dtype=int)):
        with pytest.raises(ValueError, match="^batches: expected a non-empty"):
            gd.mbgd(x, w1, bad)


def test_relative_error_computes_in_float64_whatever_the_input():
    """float32 inputs are widened before any arithmetic: the result equals the float64 one."""
    rng = np.random.default_rng(3)
    w, x, m = (rng.standard_normal(7).astype(np.float32) for _ in range(3))
    wide = gd.relative_gradient_error(w.astype(float), x.astype(float), m.astype(float))
    assert gd.relative_gradient_error(w, x, m) == wide


def test_issue_16_numpy_integer_counts_are_accepted_and_others_refused():
    """Issue 16: numpy integer counts were accepted by some functions and refused by others.
    n_iter, n and m take Python and numpy integers alike and refuse bool, float and str; batch
    indices may be any integer dtype."""
    x, rng = np.array([1.0, 2.0, 4.0]), np.random.default_rng(0)
    for k in (2, np.int64(2), np.int32(2), np.uint8(2)):
        np.testing.assert_array_equal(gd.bgd(x, 0.0, k), [0.0, 7 / 3, 7 / 3])
        assert gd.sample_batches(np.int64(3), k, k, rng, replace=np.bool_(False)).shape == (2, 2)
    for dtype in (np.int8, np.uint16, np.int64):
        batches = np.array([[0, 1], [2, 2]], dtype=dtype)
        np.testing.assert_array_equal(gd.mbgd(x, 0.0, batches), [0.0, 1.5, 2.75])
    for bad in (True, 2.0, "2", np.float32(2.0), None):
        with pytest.raises(ValueError, match="^n_iter: must be a positive integer"):
            gd.bgd(x, 0.0, bad)
        for name, args in (("n", (bad, 2, 2)), ("m", (3, bad, 2)), ("n_iter", (3, 2, bad))):
            with pytest.raises(ValueError, match=f"^{name}: must be a positive integer"):
                gd.sample_batches(*args, rng, replace=True)


@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda: gd.sgd([1.0, np.nan], 0.0), ValueError, "x"),
        (lambda: gd.sgd([1.0, 2.0], None), TypeError, "w1"),
        (lambda: gd.sgd([1.0, 2.0], 0.0, grad=None), TypeError, "grad"),
        (lambda: gd.bgd([1.0, 2.0], 0.0, 1, alpha=[[1.0], [1.0, 2.0]]), ValueError, "alpha"),
        (lambda: gd.mbgd([1.0, 2.0], 0.0, [[0, 1], [1]]), ValueError, "batches"),
        (lambda: gd.sample_batches(3, 2, 2, None, replace=True), TypeError, "rng"),
        (lambda: gd.sample_batches(3, 2, 2, np.random.default_rng(0), "no"), TypeError, "replace"),
        (lambda: gd.mean_objective_grad(np.zeros(2), np.zeros((4, 3))), ValueError, "x"),
        (lambda: gd.mean_objective_grad(np.array([1.0, np.inf]), np.zeros(2)), ValueError, "w"),
        (lambda: gd.relative_gradient_error([1.0, 2.0], [1.0, 0.0], [0.0]), ValueError, "mean"),
        (lambda: gd.relative_gradient_error([1.0, None], [1.0, 0.0], [0.0, 0.0]), TypeError, "w"),
    ],
)
def test_wrong_types_and_values_name_the_argument(call, error, argument):
    with pytest.raises(error, match=rf"^{argument}: "):
        call()


def test_scalar_start_broadcasts_to_vector_samples():
    """w_1 may be one number for vector samples (it broadcasts to the sample shape)."""
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    for w in (gd.sgd(x, 0.0), gd.bgd(x, 0.0, 2), gd.mbgd(x, 0.0, [[0, 1]])):
        assert w.shape[1:] == (2,) and np.all(w[0] == 0.0)
