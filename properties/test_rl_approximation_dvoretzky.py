"""SA-05: Dvoretzky's recursion (impl/rl/approximation/dvoretzky.py).

As for Robbins-Monro, convergence is checked at the finite K where the exact second moment
(dvoretzky.py, eq. 2; an upper bound when the noise variance depends on the state) guarantees
P(|Delta_K| > delta) <= P0 by Markov's inequality; the count among R replicas is tested against
Binomial(R, P0) at alpha = 1e-7. The negative controls break one condition each and show that
the same check rejects them (power computed exactly from the Gaussian law).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from impl.rl.approximation import dvoretzky as dv
from impl.rl.approximation import robbins_monro as rm
from properties import stats
from properties.catalogue import claim
from properties.evidence import current
from properties.profiles import statistical
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

P0, R, DELTA = 0.25, 200, 0.1
K_MAX = 300_000


def martingale_noise(kind, rng, s):
    """eta_k with E[eta_k | H_k] = 0 and E[eta_k^2 | H_k] <= s^2; "state" scales by cos(Delta_k)."""
    draw = rm.noisy_oracle(np.zeros_like, rng, s, "normal" if kind == "state" else kind)
    if kind == "state":
        return lambda delta, k: draw(delta, k) * np.cos(delta)
    return draw


@claim("SA-05")
@pytest.mark.parametrize("beta_sum", ["infinite", "finite"])
@statistical()
@given(
    a=floats(0.5, 1.0),
    p=floats(0.6, 1.0),
    b=floats(0.1, 1.0),
    q_frac=floats(0.0, 1.0),
    s=floats(0.0, 1.0),
    kind=st.sampled_from([*rm.NOISES, "state"]),
    d1=floats(0.5, 20.0),
    sign=st.sampled_from([-1, 1]),
    seed=seeds,
)
def test_dvoretzky_converges(sa, beta_sum, a, p, b, q_frac, s, kind, d1, sign, seed):
    # alpha_k = a/k^p: sum = inf, sum of squares < inf. beta_k = b/k^q with q > 1/2 (square
    # summable); "infinite": q in [p/2 + 1/4, 1] (sum beta = inf), "finite": q in [1.1, 3].
    lo, hi = (p / 2 + 0.25, 1.0) if beta_sum == "infinite" else (1.1, 3.0)
    q = lo + q_frac * (hi - lo)
    k = np.arange(1, K_MAX + 1, dtype=float)
    alpha, beta = a / k**p, b / k**q
    v = dv.second_moment(1 - alpha, beta, s, d1**2)
    hit = np.flatnonzero(v <= P0 * DELTA**2)
    assert hit.size, "parameter ranges must admit a K with V_K <= P0 delta^2"
    K = int(hit[0]) + 1
    eta = martingale_noise(kind, seed.numpy(), s)
    delta = sa.dvoretzky(np.full(R, sign * d1), alpha[: K - 1], beta[: K - 1], eta, keep=[K])[0]
    count = int(np.sum(~(np.abs(delta) <= DELTA)))
    current().worst("largest K", K)
    current().worst("largest exceedance count (of 200)", count)
    stats.binomial_at_most(count, R, P0, what=f"|Delta_K| > {DELTA}, sum beta {beta_sum}")
    current().summary = (
        f"|Delta_K| <= {DELTA} in >= 75% of {R} runs at the bound's K; sum beta = inf or < inf"
    )


@claim("SA-05")
@statistical()
@given(
    a=floats(0.2, 1.0),
    p=floats(0.6, 1.0),
    b=floats(0.1, 1.0),
    q=floats(0.6, 2.0),
    s=floats(0.1, 1.0),
    d1=floats(0.5, 10.0),
    seed=seeds,
)
def test_dvoretzky_gaussian_iterates_follow_the_exact_law(sa, a, p, b, q, s, d1, seed):
    """With deterministic alpha_k = a/k^p, beta_k = b/k^q and i.i.d. eta_k ~ N(0, s^2), Delta_k is
    exactly Gaussian: mean d1 prod_{j<k} (1 - alpha_j), variance V_k of (2) from V_1 = 0
    (second_moment, whose bound the convergence checks' K rests on). 400 replicas at
    k = 10, 100, 1000, 2001 against that law (normal_law, alpha = 1e-7 each)."""
    K, checkpoints = 2000, [10, 100, 1000, 2001]
    k = np.arange(1, K + 1, dtype=float)
    alpha, beta = a / k**p, b / k**q
    m = d1 * np.concatenate([[1.0], np.cumprod(1 - alpha)])
    v = dv.second_moment(1 - alpha, beta, s, 0.0)
    eta = martingale_noise("normal", seed.numpy(), s)
    delta = sa.dvoretzky(np.full(400, d1), alpha, beta, eta, keep=checkpoints)
    for row, j in zip(delta, checkpoints, strict=True):
        stats.normal_law(row, m[j - 1], v[j - 1], what=f"Delta_{j} law")
    current().summary = "Gaussian noise: Delta_k ~ N(m_k, V_k) exactly, V_k from recursion (2)"


@claim("SA-05")
@pytest.mark.parametrize("broken", ["sum alpha < inf", "sum beta^2 = inf"])
@statistical()
@given(a=floats(0.2, 0.9), b=floats(0.2, 1.0), s=floats(0.2, 1.0), d1=floats(2.0, 20.0), seed=seeds)
def test_negative_control_each_condition_is_needed(sa, broken, a, b, s, d1, seed):
    K = 20_000
    k = np.arange(1, K + 1, dtype=float)
    if broken == "sum alpha < inf":
        alpha, beta = a / k**2, b / k  # E Delta_K -> d1 sin(pi sqrt a)/(pi sqrt a) != 0
    else:
        alpha, beta = 1 / k, b / np.sqrt(k)  # the variance settles at a positive level
    m = d1 * np.concatenate([[1.0], np.cumprod(1 - alpha)])
    v = dv.second_moment(1 - alpha, beta, s, 0.0)  # variance of Delta_k (Gaussian noise)
    if broken == "sum alpha < inf":
        limit = d1 * math.sin(math.pi * math.sqrt(a)) / (math.pi * math.sqrt(a))
        # Truncation: prod_(k>K) (1 - a/k^2) = exp(-a/K) (1 + O(1/K^2)), relative gap <= 2a/K;
        # rounding: each of the K factors and products carries <= 3u relative error.
        assert abs(m[-1] - limit) <= (2 * a / K + 3 * K * 2.0**-53) * abs(limit)
    else:
        assert v[-1] >= 0.9 * v[K // 4]  # no decay between K/4 and K
    # The convergence check at delta = half the RMS distance from 0 that the law predicts:
    sd, mu = math.sqrt(v[-1]), abs(m[-1])
    delta = math.sqrt(mu**2 + v[-1]) / 2
    p1 = sps.norm.sf(delta, mu, sd) + sps.norm.cdf(-delta, mu, sd)
    assert stats.binomial_power(400, P0, p1) >= 1 - stats.ALPHA, (
        "design: the control must have power"
    )
    eta = martingale_noise("normal", seed.numpy(), s)
    last = sa.dvoretzky(np.full(400, d1), alpha, beta, eta, keep=[K + 1])[0]
    stats.binomial_exceeds(
        int(np.sum(~(np.abs(last) <= delta))), 400, P0, what=f"{broken}: no convergence"
    )
    current().summary = (
        "breaking sum alpha = inf or sum beta^2 < inf stops convergence; the check rejects both"
    )


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: dv.dvoretzky(1.0, [0.5, 1.5], [1.0, 1.0], np.zeros_like), "alpha"),
        (lambda: dv.dvoretzky(1.0, [0.5, np.nan], [1.0, 1.0], np.zeros_like), "alpha"),
        (lambda: dv.dvoretzky(1.0, [0.5, 0.5], [1.0, -1.0], np.zeros_like), "beta"),
        (lambda: dv.dvoretzky(1.0, [0.5, 0.5], [1.0], np.zeros_like), "beta"),
        (lambda: dv.dvoretzky(np.nan, [0.5], [1.0], np.zeros_like), "delta1"),
        (lambda: dv.dvoretzky(1.0, [], [], np.zeros_like), "alpha"),
        (lambda: dv.second_moment([0.5, 0.5], [1.0], 1.0, 0.0), "b"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


@claim("SA-05")
def test_recursion_exactly_with_a_known_noise_and_zero_steps_allowed(sa):
    """(1) step by step with a deterministic eta_k = k Delta_k^2 (not symmetric, so a sign error
    shows; the convergence checks draw symmetric noise and cannot see one): Delta_{k+1} =
    (1 - alpha_k) Delta_k + beta_k eta_k, alpha_k and beta_k may be 0; the second-moment
    recursion computes in float64 whatever the input precision. Same operations in the same
    order as the recursion written out here: equal exactly."""
    alpha = np.array([0.0, 0.5, 0.25, 1.0])
    beta = np.array([0.5, 0.0, 0.125, 0.5])

    def eta(d, k):
        return k * d**2

    d, expected = 0.75, [0.75]
    for k in range(1, 5):
        d = (1 - alpha[k - 1]) * d + beta[k - 1] * eta(d, k)
        expected.append(d)
    assert_close(sa.dvoretzky(0.75, alpha, beta, eta), np.array(expected), ulps=0,
                 what="Delta_k - recursion (1) written out")  # fmt: skip
    r32, b32 = np.float32([0.9, 0.7, 0.3]), np.float32([0.1, 0.2, 0.3])
    np.testing.assert_array_equal(
        dv.second_moment(r32, b32, 1.5, 2.0),
        dv.second_moment(r32.astype(float), b32.astype(float), 1.5, 2.0),
    )


@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda: dv.dvoretzky([1.0, None], [0.5], [1.0], np.zeros_like), TypeError, "delta1"),
        (lambda: dv.dvoretzky(1.0, [0.5], [1.0], None), TypeError, "eta"),
        (lambda: dv.dvoretzky(1.0, [0.5, None], [1.0, 1.0], np.zeros_like), TypeError, "alpha"),
        (lambda: dv.dvoretzky(1.0, [0.5], [1.0 + 1j], np.zeros_like), TypeError, "beta"),
        (lambda: dv.second_moment([0.5, np.nan], [1.0, 1.0], 1.0, 0.0), ValueError, "r"),
        (lambda: dv.second_moment([], [], 1.0, 0.0), ValueError, "r"),
        (lambda: dv.second_moment([0.5], [1.0], -1.0, 0.0), ValueError, "s"),
        (lambda: dv.second_moment([0.5], [1.0], 1.0, None), TypeError, "v1"),
    ],
)
def test_wrong_types_and_values_name_the_argument(call, error, argument):
    with pytest.raises(error, match=rf"^{argument}: "):
        call()
