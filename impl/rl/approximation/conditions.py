"""The conditions of the Robbins-Monro theorem, measured (Zhao, ch. 6.2-6.3; Robbins & Monro 1951).

Theorem (RM), for w_{k+1} = w_k - a_k g~(w_k, eta_k): w_k -> w* almost surely if
  (a) 0 < c1 <= g'(w) <= c2 for all w,
  (b) sum_k a_k = inf and sum_k a_k^2 < inf,
  (c) E[eta_k | H_k] = 0 and E[eta_k^2 | H_k] < inf.

(1) Partial sums of condition (b):  S1_n = sum_{k<=n} a_k,  S2_n = sum_{k<=n} a_k^2.
    For a_k = 1/k:  S1_n - ln n -> kappa = 0.5772... (Euler-Mascheroni), with the exact bracket
    S1_n - ln(n+1) < kappa < S1_n - ln n for every n (the left side increases, the right side
    decreases); and S2_n -> pi^2/6 (Basel), with S2_n + 1/(n+1) < pi^2/6 < S2_n + 1/n.
(2) Step sizes a_k = c_k / k: they satisfy (b) when c <= c_k <= C with c > 0
    (S1_n >= c S1_n(1/k), S2_n <= C^2 pi^2/6); a c_k that is merely bounded (c_k = 1/k) can make
    sum a_k finite.
(3) Slope bounds of condition (a) on a set of points w: c1_hat = min g'(w_i), c2_hat = max g'(w_i).
    They are inner estimates: inf_W g' <= c1_hat and c2_hat <= sup_W g' for any set W holding
    the points, so c1_hat <= 0 proves that (a)'s lower bound fails on W, and a c2_hat that grows
    without bound proves that no c2 exists.

Domain: step sizes and gains finite and > 0 (a non-empty 1-D sequence); counts `at` 1-based
integers in [1, K]; points w a non-empty 1-D sequence of finite real numbers; g_prime a callable
returning one finite number per point.
"""

import math

import numpy as np

from impl import _checks
from impl.rl.approximation import _inputs


def partial_sums(a, at=None):
    """(S1, S2) of (1) at the counts n in `at` (default: n = K only), as float64 arrays.

    Each is the correctly rounded sum (math.fsum) of the float64 terms a_k and fl(a_k^2): within
    u S of the terms' exact sum (u = 2^-53), whatever n is."""
    a = _inputs.steps("a", a).astype(float)
    at = _checks.keep_indices("at", [a.shape[0]] if at is None else at, a.shape[0])
    squares = a * a
    s1 = np.array([math.fsum(a[:n]) for n in at])
    s2 = np.array([math.fsum(squares[:n]) for n in at])
    return s1, s2


def gain_steps(c):
    """a_k = c_k / k for k = 1..K from the gains c_1..c_K (2)."""
    c = _inputs.steps("c", c).astype(float)
    return c / np.arange(1, c.shape[0] + 1, dtype=float)


def slope_bounds(g_prime, w):
    """(c1_hat, w at the min, c2_hat, w at the max) of (3): the extremes of g' over the points w."""
    _checks.function("g_prime", g_prime)
    w = _inputs.vector("w", w)
    slopes = np.asarray(g_prime(w), dtype=float)
    if slopes.shape != w.shape:
        raise ValueError(f"g_prime: returned shape {slopes.shape} for points of shape {w.shape}")
    if not np.all(np.isfinite(slopes)):
        k = int(np.flatnonzero(~np.isfinite(slopes))[0])
        raise ValueError(f"g_prime: not finite at w = {w[k]!r} ({slopes[k]!r})")
    i, j = int(np.argmin(slopes)), int(np.argmax(slopes))
    return float(slopes[i]), float(w[i]), float(slopes[j]), float(w[j])


def condition_a(g_prime, w):
    """Whether condition (a) can hold on the points w: 0 < c1_hat (a c2 = c2_hat always exists on
    finitely many points). False proves that (a) fails on any set holding the points."""
    c1_hat, _, _, _ = slope_bounds(g_prime, w)
    return c1_hat > 0
