"""SA-02, SA-03, SA-04: Robbins-Monro (impl/rl/approximation/robbins_monro.py).

Convergence is checked at finite K through the mean-square bound of the RM proof:
E e_K^2 <= V_K (robbins_monro.py, eq. 2), so P(|e_K| > delta) <= V_K / delta^2 (Markov). We run
K = the first index with V_K <= P0 delta^2 and test the count of |e_K| > delta among R replicas
against Binomial(R, P0) (stats.binomial_at_most, alpha = 1e-7). A wrong recursion (a sign,
a missing step size) diverges and fails it. The negative controls run the same check on step
sizes that break the RM conditions and show that it rejects them, with the power computed
exactly from the Gaussian law of the linear case (eq. 3).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from impl.rl.approximation import robbins_monro as rm
from properties import stats
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.profiles import statistical
from properties.strategies import exact_numbers, floats, seeds
from properties.tolerances import assert_close

P0 = 0.25  # Markov bound's exceedance probability at the checked K
R = 200  # replicas per Monte Carlo experiment
SHAPES = {  # h with 0 <= h' <= 1, so g = c1 e + (c2 - c1) h(e) has c1 <= g' <= c2
    "linear": lambda e: e,
    "tanh": np.tanh,
    "sine": lambda e: (e + np.sin(e)) / 2,
}


def first_index_below(v, level):
    """Smallest 1-based k with v_k <= level (v holds v_1, v_2, ...), or None."""
    hit = np.flatnonzero(v <= level)
    return int(hit[0]) + 1 if hit.size else None


def exceed_count(e, delta):
    return int(np.sum(~(np.abs(e) <= delta)))  # nan/inf count as exceeding


@claim("SA-02")
@statistical()
@given(
    c1=floats(0.25, 2.0),
    ratio=floats(1.0, 3.0),
    shape=st.sampled_from(sorted(SHAPES)),
    q=floats(0.6, 1.5),
    p=floats(0.6, 1.0),
    s=floats(0.0, 1.0),
    noise=st.sampled_from(rm.NOISES),
    w_star=floats(-5, 5),
    e1=floats(0.5, 20),
    sign=st.sampled_from([-1, 1]),
    seed=seeds,
)
def test_rm_converges_under_the_rm_conditions(
    sa, c1, ratio, shape, q, p, s, noise, w_star, e1, sign, seed
):
    c2, a, delta = c1 * ratio, q / c1, 0.25
    h = SHAPES[shape]
    g = lambda w: c1 * (w - w_star) + (c2 - c1) * h(w - w_star)  # noqa: E731
    # K from the bound on the steps a / k^p as written here; the run uses the implementation's
    # power_steps, so steps that break the conditions (a summable a / k^2) show as no convergence
    v = rm.mean_square_bound(a / np.arange(1, 200_001, dtype=float) ** p, c1, c2, s, e1**2)
    K = first_index_below(v, P0 * delta**2)
    assert K is not None, "parameter ranges must admit a K with V_K <= P0 delta^2"
    g_tilde = rm.noisy_oracle(g, seed.numpy(), s, noise)
    w = sa.robbins_monro(
        g_tilde, np.full(R, w_star + sign * e1), rm.power_steps(K - 1, a, p), keep=[K]
    )[0]
    count = exceed_count(w - w_star, delta)
    current().worst("largest K", K)
    current().worst("largest exceedance count (of 200)", count)
    stats.binomial_at_most(count, R, P0, what="RM |w_K - w*| > delta")
    current().summary = (
        f"a_k = a/k^p: |w_K - w*| <= {delta} in >= 75% of {R} runs at the K the bound gives"
    )


@claim("SA-02")
@given(n=st.integers(1, 300), a=floats(1e-3, 1e3), p=floats(0.0, 2.0))
def test_power_steps_are_a_over_k_to_the_p_and_default_to_one_over_k(n, a, p):
    """The step sizes the SA properties run: a_k = a / k^p, and by default a = p = 1, the
    article's a_k = 1/k (the default path, which the other properties leave to this check).
    Reference per k in Python floats (math.pow). Each side computes k^p within 1 ulp = 2u of the
    exact power (C pow) and rounds the division once (u): within 3u of a / k^p relative, so
    within 6u of each other, to first order (8u allowed)."""
    k = np.arange(1, n + 1)
    reference = np.array([a / math.pow(float(j), p) for j in k])
    assert_close(rm.power_steps(n, a, p), reference, ulps=8, scale=reference, what="a / k^p")
    default = rm.power_steps(n)
    one_over_k = np.array([1.0 / float(j) for j in k])  # one rounding each, as 1 / k^1
    assert_close(default, one_over_k, ulps=0, what="default steps - 1/k")
    current().summary = "a_k = a / k^p within 8u; the default is a_k = 1/k exactly"


def _linear_runs(sa, a, c, s, e1, seed, keep):
    g_tilde = rm.noisy_oracle(lambda w: c * w, seed.numpy(), s, "normal")
    return sa.robbins_monro(g_tilde, np.full(400, e1), a, keep=keep)


STEPS = {
    "1/k^p": lambda K, x, c: rm.power_steps(K, x / c, 0.75 + 0.25 * (x > 1)),
    "summable": lambda K, x, c: rm.power_steps(K, min(x, 0.9) / c, 2.0),
    "constant": lambda K, x, c: rm.constant_steps(K, min(x, 1.5) / (4 * c)),
}


@claim("SA-02")
@statistical()
@given(
    kind=st.sampled_from(sorted(STEPS)),
    x=floats(0.3, 2.0),
    c=floats(0.2, 3.0),
    s=floats(0.1, 2.0),
    e1=floats(1.0, 10.0),
    seed=seeds,
)
def test_rm_linear_gaussian_iterates_follow_the_exact_law(sa, kind, x, c, s, e1, seed):
    """Linear g, Gaussian noise: e_k ~ N(m_k, v_k) exactly (eq. 3) for every step-size family."""
    a = STEPS[kind](2000, x, c)
    m, v = rm.linear_gaussian_law(a, c, s, e1)
    checkpoints = [10, 100, 1000, 2001]
    w = _linear_runs(sa, a, c, s, e1, seed, checkpoints)
    for row, k in zip(w, checkpoints, strict=True):
        stats.normal_law(row, m[k - 1], v[k - 1], what=f"e_k law, {kind} steps")
    current().summary = (
        "iterates match the exact N(m_k, v_k) law at k = 10..2001 for all three step families"
    )


@claim("SA-02")
@statistical()
@given(x=floats(0.1, 0.9), c=floats(0.2, 3.0), s=floats(0.1, 1.0), e1=floats(2.0, 20.0), seed=seeds)
def test_negative_control_summable_steps_stop_short(sa, x, c, s, e1, seed):
    """a_k = (x/c)/k^2: sum a_k < inf, and w_k stalls at e_1 sin(pi sqrt x)/(pi sqrt x) from w*."""
    K = 20_000
    a = rm.power_steps(K, x / c, 2.0)
    m, v = rm.linear_gaussian_law(a, c, s, e1)
    limit = e1 * math.sin(math.pi * math.sqrt(x)) / (math.pi * math.sqrt(x))  # eq. 4
    # Truncation: prod_(k>K) (1 - x/k^2) = exp(-x/K) (1 + O(1/K^2)), relative gap <= 2x/K;
    # rounding: each of the K factors and products carries <= 3u relative error.
    assert abs(m[-1] - limit) <= (2 * x / K + 3 * K * 2.0**-53) * abs(limit)
    # The convergence check of test_rm_converges_under_the_rm_conditions at delta = |limit| / 2:
    delta = abs(limit) / 2
    p1 = sps.norm.sf(delta, loc=abs(m[-1]), scale=math.sqrt(v[-1])) + sps.norm.cdf(
        -delta, abs(m[-1]), math.sqrt(v[-1])
    )
    assert stats.binomial_power(400, P0, p1) >= 1 - stats.ALPHA, (
        "design: the control must have power"
    )
    e = _linear_runs(sa, a, c, s, e1, seed, [K + 1])[0]
    stats.binomial_exceeds(
        exceed_count(e, delta), 400, P0, what="summable steps: |e_K| > |e_inf|/2"
    )
    current().worst("smallest e_inf / e_1 seen", limit / e1, larger_is_worse=False)
    current().summary = (
        "summable steps stall at e_1 sin(pi sqrt x)/(pi sqrt x); the convergence check rejects them"
    )


@claim("SA-02")
@statistical()
@given(
    ac=floats(0.05, 1.0), c=floats(0.2, 3.0), s=floats(0.1, 2.0), e1=floats(1.0, 10.0), seed=seeds
)
def test_negative_control_constant_step_keeps_fluctuating(sa, ac, c, s, e1, seed):
    """a_k = a: v_k -> a s^2 / (c (2 - a c)), proportional to a for small a c; never 0."""
    for a in (ac / c, ac / (4 * c)):
        K = int(math.ceil(40 / (a * c)))  # (1 - a c)^(2K) <= e^-80: the transient is gone
        steps = rm.constant_steps(2 * K, a)
        m, v = rm.linear_gaussian_law(steps, c, s, e1)
        v_inf = a * s**2 / (c * (2 - a * c))
        # Recursion vs closed form: transient (1 - ac)^(2K) <= e^-80, rounding <= 11u per step
        # (see test_error_vs_k_for_the_three_step_families).
        assert abs(v[K] - v_inf) <= (11 * K * 2.0**-53 + math.exp(-80)) * v_inf
        e = _linear_runs(sa, steps, c, s, e1, seed, [K + 1, 2 * K + 1])
        stats.normal_law(e[0], m[K], v[K], what="constant step: e_K law at K")
        stats.normal_law(e[1], m[2 * K], v[2 * K], what="constant step: e_2K law (no decay)")
        # The convergence check at delta = sqrt(v_inf)/2 rejects: p1 = 2 Phi(-1/2) = 0.617 > P0.
        delta = math.sqrt(v_inf) / 2
        assert stats.binomial_power(400, P0, 2 * sps.norm.sf(0.5)) >= 1 - stats.ALPHA
        stats.binomial_exceeds(
            exceed_count(e[1], delta), 400, P0, what="constant step: |e| > sqrt(v_inf)/2"
        )
    ratio = (2 - ac / 4) / (2 - ac) * 4
    current().worst("largest v_inf(a) / v_inf(a/4) seen", ratio)
    current().summary = (
        "constant step: variance a s^2/(c(2-ac)) at K and 2K; quartering a divides it by ~4"
    )


@claim("SA-02")
def test_error_vs_k_for_the_three_step_families(sa):
    """The report's log-log figure, c = s = 1, e_1 = 10: a_k = 1/k, 0.5/k^2, 0.1 and 0.025."""
    from properties.strategies import Seed

    K = 10_000
    families = {
        "a_k = 1/k": rm.power_steps(K, 1.0, 1.0),
        "a_k = 0.5/k^2 (summable)": rm.power_steps(K, 0.5, 2.0),
        "a_k = 0.1 (constant)": rm.constant_steps(K, 0.1),
        "a_k = 0.025 (constant)": rm.constant_steps(K, 0.025),
    }
    ks = np.unique(np.geomspace(1, K + 1, 60).astype(int))
    curves = {}
    for i, (name, a) in enumerate(families.items()):
        m, v = rm.linear_gaussian_law(a, 1.0, 1.0, 10.0)
        e = _linear_runs(sa, a, 1.0, 1.0, 10.0, Seed(i), ks)
        stats.normal_law(e[-1], m[-1], v[-1], what=f"{name}: e_K law")
        curves[name] = (np.sqrt(np.mean(e**2, axis=1)), np.sqrt(m[ks - 1] ** 2 + v[ks - 1]))
    rms = {name: theory[-1] for name, (_, theory) in curves.items()}
    # Theory at K = 1e4 (exact law): 1/k gives E e^2 = v_{K+1} = 1/K exactly; the others plateau.
    # Budget of the float64 recursion v <- r^2 v + a^2: r = 1 - 1/k carries <= 4u relative error
    # (k >= 2), r^2 v adds 9u + u, a^2 3u, the sum u: the relative error grows by <= 11u a step,
    # so <= 11 K u after K steps.
    assert_close(
        rms["a_k = 1/k"] ** 2, 1 / K, ulps=11 * K, scale=1 / K, what="E e_K^2 for a_k = 1/k"
    )
    assert rms["a_k = 0.5/k^2 (summable)"] > 3.5
    assert rms["a_k = 0.1 (constant)"] ** 2 / rms["a_k = 0.025 (constant)"] ** 2 > 4 * 0.9
    current().record(**{f"rms e_K, {n}": float(r) for n, r in rms.items()})

    def draw(fig):
        ax = fig.subplots()
        for name, (observed, theory) in curves.items():
            (line,) = ax.loglog(ks, observed, label=name)
            ax.loglog(ks, theory, ls=":", color=line.get_color())
        ax.set_xlabel("k")
        ax.set_ylabel("RMS |w_k - w*| over 400 runs (dotted: exact)")
        ax.set_title("Robbins-Monro on g(w) = w - w*, N(0,1) noise, w_1 - w* = 10")
        ax.legend()

    figure("sa02_error_vs_k", draw)
    current().summary = "RMS error: 1/sqrt(k) for 1/k; plateaus for summable and constant steps"


# SA-03: the article's examples --------------------------------------------------------------


def _tanh_run(sa, w1, a):
    return sa.robbins_monro(lambda w, k: np.tanh(w - 1.0), np.array(w1), a)


@claim("SA-03.tanh")
def test_article_tanh_example(sa):
    K = 100_000
    w = _tanh_run(sa, 3.0, rm.power_steps(K))  # the default steps: the article's a_k = 1/k
    assert abs(w[1] - 2.036) <= 5e-4, f"first step {w[1]} is not 2.036 to three decimals"
    e = w - 1.0
    assert np.all(np.diff(w) < 0), "not monotone"
    assert np.all(e > 0), "overshoot below the root"
    # Convergence: for 0 < e <= 2, tanh(e) >= (tanh(2)/2) e, so e_{k+1} <= (1 - c/k) e_k with
    # c = tanh(2)/2: e_k <= 2 prod_{j<k} (1 - c/j) -> 0. Rounding: 1e-12 relative.
    c = math.tanh(2.0) / 2
    bound = 2 * np.concatenate([[1.0], np.cumprod(1 - c / np.arange(1, K + 1))])
    assert np.all(e <= bound * (1 + 1e-12)), "w_k - 1 above the contraction bound: too slow"
    current().record(w2=float(w[1]), w_K=float(w[-1]), K=K)

    def draw(fig):
        ax = fig.subplots()
        ax.plot(np.arange(1, 51), w[:50], marker=".", label="w_k")
        ax.axhline(1.0, color="k", ls=":", label="root w* = 1")
        ax.set_xlabel("k")
        ax.set_ylabel("w_k")
        ax.set_title("RM on g(w) = tanh(w - 1), w_1 = 3, a_k = 1/k, no noise")
        ax.legend()

    figure("sa03_tanh_iterates", draw)
    current().summary = (
        f"w_2 = {w[1]:.4f}; strictly decreasing, never below 1; w_K - 1 = {e[-1]:.1e} at K = 1e5"
    )


@claim("SA-03.tanh")
@given(w1=floats(1.0, 50.0, exclude_min=True), a=floats(0.01, 1.0))
def test_tanh_no_overshoot_for_any_start_and_gain_up_to_one(sa, w1, a):
    # 0 < a_k tanh(e) < e for e > 0 and a_k <= 1: every step moves down and stays above 1.
    w = _tanh_run(sa, w1, rm.power_steps(300, a, 1.0))
    assert np.all(w[1:] <= w[:-1]) and np.all(w >= 1.0)


def test_negative_control_tanh_overshoots_with_gain_three():
    # The no-overshoot argument needs a_k <= 1 (roughly): a_1 = 3 from w_1 = 1.5 lands below 1.
    w = rm.robbins_monro(lambda w, k: np.tanh(w - 1.0), np.array(1.5), rm.power_steps(3, 3.0, 1.0))
    assert w[1] < 1.0


CUBE_ROOT_5 = 5 ** (1 / 3)


def _cubic_runs(sa, steps, s, seed, replicas=1):
    g_tilde = rm.noisy_oracle(lambda w: w**3 - 5, seed.numpy(), s, "normal")
    return sa.robbins_monro(g_tilde, np.zeros(replicas), steps)


@claim(refutes="SA-03.cubic")
def test_article_cubic_example_diverges_with_a_k_one_over_k(sa):
    # the article's a_k = 1/k, as the default of power_steps (a user's default path)
    def converges(case):
        s, seed = case
        w = _cubic_runs(sa, rm.power_steps(1000), s, seed)[:, 0]
        return bool(np.isfinite(w[-1]) and abs(w[-1] - CUBE_ROOT_5) < 0.1)

    s, seed = refute(
        st.tuples(floats(0.0, 1.0), seeds),
        converges,
        claim="SA-03.cubic",
        describe=lambda case: f"noise std s = {case[0]}, {case[1]!r}: |w_1000 - 5^(1/3)| >= 0.1",
    )
    w = _cubic_runs(sa, rm.power_steps(6), s, seed)[:, 0]
    current().record(noise_std=s, first_iterates=[float(x) for x in w[:5]])
    current().summary = (
        f"diverges: w_1..w_5 = {', '.join(f'{x:.4g}' for x in w[:5])} (w_3 = 5 - 60 overshoots; "
        "a_k g'(w) = 75/2 at w = 5)"
    )

    def draw(fig):
        ax1, ax2 = fig.subplots(1, 2)
        ax1.plot(np.arange(1, 6), w[:5], marker="o")
        ax1.set_yscale("symlog")
        ax1.set_yticks([-1e13, -1e9, -1e5, -1e1, 0, 1e1, 1e5])
        ax1.set_title("a_k = 1/k: diverges")
        small = _cubic_runs(sa, rm.power_steps(200, 0.1, 1.0), 1.0, seed, replicas=5)
        ax2.plot(np.arange(1, 202), small)
        ax2.axhline(CUBE_ROOT_5, color="k", ls=":", label="5^(1/3)")
        ax2.set_title("a_k = 0.1/k, N(0,1) noise: converges")
        ax2.legend()
        for ax in (ax1, ax2):
            ax.set_xlabel("k")
        ax1.set_ylabel("w_k")

    figure("sa03_cubic_iterates", draw, size=(9, 3.6))


@claim("SA-03.cubic-small-gain")
@statistical()
@given(s=floats(0.0, 1.0), seed=seeds)
def test_cubic_example_converges_with_gain_a_k_point_one_over_k(sa, s, seed):
    # No theorem covers this g (g' = 3w^2 is unbounded); the finite check is an operational
    # reading of "converges": at K = 20000, |w_K - 5^(1/3)| <= 0.05 in all but P = 1% of runs
    # (locally a g'(w*) = 0.88 > 1/2, so the RMS error there is about 1e-3 * s).
    K, delta, p = 20_000, 0.05, 0.01
    w = _cubic_runs(sa, rm.power_steps(K, 0.1, 1.0), s, seed, replicas=R)[-1]
    count = exceed_count(w - CUBE_ROOT_5, delta)
    current().worst("largest exceedance count (of 200)", count)
    stats.binomial_at_most(count, R, p, what="cubic, a_k = 0.1/k: |w_K - 5^(1/3)| > 0.05")
    current().summary = (
        f"a_k = 0.1/k: within {delta} of 5^(1/3) at K = {K} in all but {count} of {R} runs"
    )


# SA-04: mean estimation is RM --------------------------------------------------------------


@claim("SA-04")
@given(
    values=st.lists(exact_numbers(), min_size=1, max_size=8),
    weights=st.lists(st.integers(1, 20), min_size=8, max_size=8),
    w=exact_numbers(),
)
def test_mean_estimation_is_rm_with_g_w_minus_mean(sa, values, weights, w):
    """X uniform over a finite multiset: E[w - X] = w - E[X] = g(w) exactly, so the observation
    g~(w, x) = w - x is g(w) plus the zero-mean noise eta = E[X] - x; g' = 1 (c1 = c2 = 1).
    On the implementation: one step of the mean iteration (weighted_iterate, exact on
    rationals), averaged over the law of x, is the noise-free RM step w - a g(w)."""
    from fractions import Fraction

    p = [Fraction(wt, sum(weights[: len(values)])) for wt in weights[: len(values)]]
    mean = sum(pi * xi for pi, xi in zip(p, values, strict=True))
    assert sum(pi * (w - xi) for pi, xi in zip(p, values, strict=True)) == w - mean
    assert sum(pi * (mean - xi) for pi, xi in zip(p, values, strict=True)) == 0
    a = Fraction(1, 3)
    steps = [
        sa.weighted_iterate(np.array([xi], dtype=object), np.array([a]), w)[1] for xi in values
    ]
    expected_step = sum(pi * step for pi, step in zip(p, steps, strict=True))
    assert expected_step == w - a * (w - mean), "E[mean-iteration step] is not the RM step"


@claim("SA-04")
@given(
    x=st.lists(floats(-1e6, 1e6), min_size=1, max_size=50),
    w1=floats(-1e6, 1e6),
    a=st.lists(floats(1e-3, 1.0), min_size=50, max_size=50),
)
def test_mean_iteration_equals_rm_iteration_bitwise(sa, x, w1, a):
    """w_{k+1} = w_k - a_k (w_k - x_k) is RM with g~(w_k) = w_k - x_k: the same floating-point
    operations in the same order, so the iterates agree bit for bit (tolerance 0)."""
    x, a = np.array(x), np.array(a[: len(x)])
    direct = sa.weighted_iterate(x, a, w1)
    via_rm = sa.robbins_monro(lambda w, k: w - x[k - 1], np.float64(w1), a)
    assert_close(via_rm, direct, ulps=0, what="RM iterate - mean iterate")


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: rm.robbins_monro(lambda w, k: w, 0.0, []), "a"),
        (lambda: rm.robbins_monro(lambda w, k: w, 0.0, [1.0, -1.0]), "a"),
        (lambda: rm.robbins_monro(lambda w, k: w, 0.0, [1.0, np.nan]), "a"),
        (lambda: rm.robbins_monro(lambda w, k: w, np.inf, [1.0]), "w1"),
        (lambda: rm.robbins_monro(lambda w, k: w, 0.0, [1.0], keep=[3]), "keep"),
        (lambda: rm.power_steps(0), "n"),
        (lambda: rm.power_steps(3, a=0.0), "a"),
        (lambda: rm.power_steps(3, p=np.nan), "p"),
        (lambda: rm.constant_steps(3, a=-0.1), "a"),
        (lambda: rm.noisy_oracle(np.tanh, None, noise="cauchy"), "noise"),
        (lambda: rm.noisy_oracle(np.tanh, None, s=-1.0), "s"),
        (lambda: rm.mean_square_bound([1.0], 2.0, 1.0, 1.0, 1.0), "c1"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


@claim("SA-02")
@given(c1=floats(0.1, 3.0), spread=floats(1.0, 4.0), a=floats(0.01, 0.3), s=floats(0.0, 2.0))
def test_mean_square_bound_is_exact_for_linear_g_with_c1_equal_c2(c1, spread, a, s):
    """The bound (2) that test_rm_converges_under_the_rm_conditions takes its K from. For
    g(w) = c (w - w*), c1 = c2 = c, the bound's rho_k = |1 - a_k c| is the exact factor:
    the bound equals the exact second moment m_k^2 + v_k of the linear Gaussian law (pinned by
    the iterates in test_rm_linear_gaussian_iterates_follow_the_exact_law); for c2 > c1 it is
    at least as large as the law of either end's slope."""
    steps = rm.power_steps(30, a, 0.7)
    e1 = 1.5
    m, v = rm.linear_gaussian_law(steps, c1, s, e1)
    exact = m**2 + v
    assert_close(rm.mean_square_bound(steps, c1, c1, s, e1**2), exact, ulps=64, scale=exact,
                 what="bound with c1 = c2 vs exact second moment")  # fmt: skip
    wide = rm.mean_square_bound(steps, c1, c1 * spread, s, e1**2)
    for c in (c1, c1 * spread):
        m, v = rm.linear_gaussian_law(steps, c, s, e1)
        assert np.all(wide >= (m**2 + v) * (1 - 1e-12)), f"bound below E e_k^2 for slope {c}"


def test_step_size_and_gain_checks():
    with pytest.raises(ValueError, match="^a: "):
        rm.constant_steps(3, 0.0)
    with pytest.raises(ValueError, match="^c1: need 0 < c1 <= c2"):
        rm.mean_square_bound([0.1], 0.0, 1.0, 1.0, 1.0)


@claim("SA-02")
@pytest.mark.parametrize("noise", rm.NOISES)
def test_noisy_oracle_noise_law(noise):
    """The noise of every SA property: its variance s^2 is what the mean-square bounds assume.
    eta has mean 0 and variance 1 (the default s = 1; the default law is the normal one), one
    draw per entry of w: z-tests of the mean of eta and of eta^2 on n = 200000 draws,
    alpha = 1e-7 each (properties/stats.py); uniform noise stays in [-sqrt 3, sqrt 3] and
    reaches beyond +-1.6; Rademacher noise is +-1 with both signs (eta^2 = 1 exactly). The sign
    of eta is not checked: every noise is symmetric, so g - eta has the law of g + eta."""
    g = rm.noisy_oracle(lambda w: 2 * w, np.random.default_rng(11), noise=noise)
    w = np.full((50_000, 4), 0.5)
    eta = g(w, 1) - 1.0
    assert eta.shape == w.shape
    if noise == "normal":  # the default noise a user gets is this one: the same draws
        default = rm.noisy_oracle(lambda w: 2 * w, np.random.default_rng(11))
        assert_close(default(w, 1) - 1.0, eta, ulps=0, what="default noise - normal noise")
    stats.mean_equals(eta.ravel(), 0.0, what=f"{noise} noise: E eta")
    if noise == "rademacher":
        assert set(np.unique(eta)) == {-1.0, 1.0}
    else:
        stats.mean_equals(eta.ravel() ** 2, 1.0, what=f"{noise} noise: E eta^2")
    if noise == "uniform":
        assert np.abs(eta).max() <= np.sqrt(3) and eta.min() < -1.6 and eta.max() > 1.6


def test_power_steps_defaults_and_divergent_runs_stay_quiet():
    """a_k = a / k^p with a = p = 1 by default, p = 0 allowed (constant steps); a divergent run
    (the article's cubic example with a_k = 1/k) overflows to inf/nan without a warning."""
    import warnings

    np.testing.assert_array_equal(rm.power_steps(4), 1 / np.arange(1.0, 5.0))
    np.testing.assert_array_equal(rm.power_steps(3, 2.0, 0.0), [2.0, 2.0, 2.0])
    for p in (-0.5, np.inf, np.nan):
        with pytest.raises(ValueError, match="^p: must be finite and >= 0"):
            rm.power_steps(3, 1.0, p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = rm.robbins_monro(lambda w, k: w**3 - 5, 3.0, rm.power_steps(60))
    assert not np.all(np.isfinite(w))


def test_issue_16_numpy_integer_counts_are_accepted_and_others_refused():
    """Issue 16: numpy integer counts were accepted by some functions and refused by others.
    Every count takes Python and numpy integers alike and refuses bool, float and str."""
    for n in (3, np.int64(3), np.int32(3), np.uint8(3)):
        np.testing.assert_array_equal(rm.power_steps(n), [1.0, 1 / 2, 1 / 3])
        np.testing.assert_array_equal(rm.constant_steps(n, 0.5), [0.5, 0.5, 0.5])
    keep = np.array([1, 3], dtype=np.int32)
    w = rm.robbins_monro(lambda w, k: w, 1.0, [0.5, 0.5], keep=keep)
    np.testing.assert_array_equal(w, [1.0, 0.25])
    for bad in (True, 3.0, "3", np.float64(3.0), None):
        for f, args in ((rm.power_steps, (bad,)), (rm.constant_steps, (bad, 0.5))):
            with pytest.raises(ValueError, match="^n: must be a positive integer"):
                f(*args)
    with pytest.raises(ValueError, match="^keep: "):
        rm.robbins_monro(lambda w, k: w, 1.0, [0.5, 0.5], keep=np.array([1.0, 3.0]))


@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda: rm.robbins_monro(None, 0.0, [1.0]), TypeError, "g_tilde"),
        (lambda: rm.robbins_monro(lambda w, k: w, "x", [1.0]), TypeError, "w1"),
        (lambda: rm.power_steps(3, a=None), TypeError, "a"),
        (lambda: rm.power_steps(3, p=np.ones(2)), TypeError, "p"),
        (lambda: rm.noisy_oracle(np.tanh, None), TypeError, "rng"),
        (lambda: rm.noisy_oracle(None, np.random.default_rng(0)), TypeError, "g"),
        (lambda: rm.mean_square_bound([1.0], 0.5, np.inf, 1.0, 1.0), ValueError, "c2"),
        (lambda: rm.mean_square_bound([1.0], 0.5, 1.0, -1.0, 1.0), ValueError, "s"),
        (lambda: rm.mean_square_bound([1.0], 0.5, 1.0, 1.0, np.nan), ValueError, "e1_sq"),
        (lambda: rm.linear_gaussian_law([1.0], np.nan, 1.0, 1.0), ValueError, "c"),
        (lambda: rm.linear_gaussian_law([1.0], 1.0, 1.0, "2"), TypeError, "e1"),
    ],
)
def test_wrong_types_and_values_name_the_argument(call, error, argument):
    with pytest.raises(error, match=rf"^{argument}: "):
        call()
