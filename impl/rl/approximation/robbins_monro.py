"""Robbins-Monro stochastic approximation (seed article 7; Robbins & Monro 1951; Zhao, ch. 6.2).

Find the root w* of g(w) = 0 from noisy observations g~(w_k, eta_k) = g(w_k) + eta_k:

(1) w_{k+1} = w_k - a_k g~(w_k, eta_k),   k = 1, 2, ...

Theorem (RM): w_k -> w* almost surely if
  (a) 0 < c1 <= g'(w) <= c2 for all w,
  (b) sum_k a_k = inf and sum_k a_k^2 < inf,
  (c) E[eta_k | H_k] = 0 and E[eta_k^2 | H_k] < inf, with H_k = {w_k, w_{k-1}, ...}.
Step sizes: a_k = a / k^p satisfies (b) for 1/2 < p <= 1; the summable a / k^2 breaks
sum a_k = inf (the iterates stop short); a constant a breaks sum a_k^2 < inf (they keep moving).

(2) Mean-square bound (scalar w, e_k = w_k - w*). By the mean value theorem
    e_{k+1} = (1 - a_k g'(xi_k)) e_k - a_k eta_k, so with rho_k = max(|1 - a_k c1|, |1 - a_k c2|)
    and E[eta_k^2 | H_k] <= s^2:   E e_{k+1}^2 <= rho_k^2 E e_k^2 + a_k^2 s^2.
(3) Linear g(w) = c (w - w*) with i.i.d. eta_k ~ N(0, s^2): e_k is exactly Gaussian,
    m_{k+1} = (1 - a_k c) m_k,   v_{k+1} = (1 - a_k c)^2 v_k + a_k^2 s^2,   v_1 = 0.
    A constant step a (0 < a c < 2) has the stationary variance v = a s^2 / (c (2 - a c)).
(4) Summable steps a_k = x / (c k^2) with x < 1 and no noise: e_{k+1} = prod_{j<=k} (1 - x/j^2) e_1,
    which tends to e_1 sin(pi sqrt(x)) / (pi sqrt(x)) != 0 (Euler's product for the sine).

Domain: step sizes a_k finite and > 0 (K >= 1 of them); w_1 finite real numbers; counts n
positive integers (Python or numpy); gains a > 0, exponents p >= 0, noise scales s >= 0,
slopes 0 < c1 <= c2, all finite real numbers; callables for g and g~; a numpy Generator rng.
"""

import numpy as np

from impl import _checks
from impl._recursion import iterate
from impl.rl.approximation import _inputs
from impl.rl.approximation.dvoretzky import second_moment

NOISES = ("normal", "uniform", "rademacher")


def robbins_monro(g_tilde, w1, a, keep=None):
    """Iterate (1) from w_1 with steps a_1..a_K; `g_tilde(w, k)` returns the noisy observation.

    `w1` may be an array (independent replicas). Returns w_k for k in `keep` (1-based, default
    all K + 1), stacked along axis 0. Divergent iterates become inf/nan; no exception is raised.
    """
    _checks.function("g_tilde", g_tilde)
    a = _inputs.steps("a", a)
    w = _inputs.reals("w1", w1).astype(float)
    with np.errstate(over="ignore", invalid="ignore"):
        return iterate(lambda w, k: w - a[k - 1] * g_tilde(w, k), w, a.shape[0], keep)  # (1)


def power_steps(n, a=1.0, p=1.0):
    """a_k = a / k^p for k = 1..n (RM conditions (b) hold for a > 0 and 1/2 < p <= 1)."""
    n = _checks.positive_int("n", n)
    a, p = (
        float(_checks.scalar("a", a, 0, lo_open=True, exact=True)),
        float(_checks.scalar("p", p, 0, exact=True)),
    )
    return a / np.arange(1, n + 1, dtype=float) ** p


def constant_steps(n, a):
    """a_k = a for k = 1..n (breaks sum a_k^2 < inf)."""
    n = _checks.positive_int("n", n)
    return np.full(n, float(_checks.scalar("a", a, 0, lo_open=True, exact=True)))


def noisy_oracle(g, rng, s=1.0, noise="normal"):
    """g~(w, k) = g(w) + eta, eta i.i.d., mean 0, std s (one per entry of w)."""
    _checks.choice("noise", noise, NOISES)
    s = float(_checks.scalar("s", s, 0, exact=True))
    _checks.function("g", g)
    _checks.rng("rng", rng, legacy=True)

    def g_tilde(w, k):
        shape = np.shape(w)
        if noise == "normal":
            eta = rng.standard_normal(shape)
        elif noise == "uniform":
            eta = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape)
        else:
            eta = rng.choice([-1.0, 1.0], size=shape)
        return g(w) + s * eta

    return g_tilde


def mean_square_bound(a, c1, c2, s, e1_sq):
    """Upper bounds V_1..V_{K+1} on E (w_k - w*)^2 from (2), for steps a_1..a_K."""
    c1, c2 = (
        float(_checks.scalar("c1", c1, exact=True)),
        float(_checks.scalar("c2", c2, exact=True)),
    )
    if not 0 < c1 <= c2:
        raise ValueError(f"c1: need 0 < c1 <= c2, got c1={c1!r}, c2={c2!r}")
    s, e1_sq = (
        float(_checks.scalar("s", s, 0, exact=True)),
        float(_checks.scalar("e1_sq", e1_sq, 0, exact=True)),
    )
    a = _inputs.steps("a", a).astype(float)
    rho = np.maximum(np.abs(1 - a * c1), np.abs(1 - a * c2))
    return second_moment(rho, a, s, e1_sq)


def linear_gaussian_law(a, c, s, e1):
    """Exact mean m_k and variance v_k of e_k = w_k - w*, k = 1..K+1, for linear g (3)."""
    a = _inputs.steps("a", a).astype(float)
    c, s, e1 = (
        float(_checks.scalar("c", c, exact=True)),
        float(_checks.scalar("s", s, 0, exact=True)),
        float(_checks.scalar("e1", e1, exact=True)),
    )
    r = 1 - a * c
    m = e1 * np.concatenate([[1.0], np.cumprod(r)])
    v = second_moment(r, a, s, 0.0)
    return m, v
