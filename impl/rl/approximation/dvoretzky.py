"""Dvoretzky's convergence theorem (seed article 7; Dvoretzky 1956; Zhao, ch. 6.3).

(1) Delta_{k+1} = (1 - alpha_k) Delta_k + beta_k eta_k,   k = 1, 2, ...

Theorem: Delta_k -> 0 almost surely if 0 <= alpha_k <= 1, sum_k alpha_k = inf,
sum_k alpha_k^2 < inf, sum_k beta_k^2 < inf, E[eta_k | H_k] = 0 and E[eta_k^2 | H_k] <= C,
with H_k = {Delta_k, Delta_{k-1}, ..., eta_{k-1}, ...}.  sum_k beta_k = inf is not required.

(2) Moments, for deterministic alpha, beta and E[eta_k^2 | H_k] = s^2:
    E Delta_{k+1}   = (1 - alpha_k) E Delta_k
    E Delta_{k+1}^2 = (1 - alpha_k)^2 E Delta_k^2 + beta_k^2 s^2        (exact)
    With E[eta_k^2 | H_k] <= s^2 the second line is an upper bound. The same recursion with a
    contraction factor r_k in place of (1 - alpha_k) bounds Robbins-Monro (see robbins_monro.py).

Domain: alpha_k in [0, 1], beta_k >= 0 finite, as many of each; Delta_1 finite real numbers;
eta a callable eta(delta, k); in (2) r_k, b_k finite (K >= 1 of each), s >= 0, V_1 >= 0.
"""

import numpy as np

from impl import _checks
from impl._recursion import iterate
from impl.rl.approximation import _inputs


def dvoretzky(delta1, alpha, beta, eta, keep=None):
    """Iterate (1) from Delta_1 for K = len(alpha) steps; `eta(delta, k)` draws eta_k.

    `delta1` may be an array (independent replicas, one per entry). Returns the iterates
    Delta_k for k in `keep` (1-based, default all K + 1), stacked along axis 0.
    """
    alpha = _inputs.steps("alpha", alpha, allow_zero=True, at_most_one=True)
    beta = _inputs.steps("beta", beta, allow_zero=True)
    if beta.shape != alpha.shape:
        raise ValueError(f"beta: {beta.shape[0]} values for {alpha.shape[0]} alpha values")
    delta = _inputs.reals("delta1", delta1).astype(float)
    _checks.function("eta", eta)
    return iterate(
        lambda delta, k: (1 - alpha[k - 1]) * delta + beta[k - 1] * eta(delta, k),  # (1)
        delta,
        alpha.shape[0],
        keep,
    )


def second_moment(r, b, s, v1):
    """V_1..V_{K+1} of V_{k+1} = r_k^2 V_k + b_k^2 s^2 (2), from V_1 = v1; r, b of length K
    (computed in float64 whatever the input precision)."""
    r, b = _inputs.vector("r", r), _inputs.vector("b", b)
    if r.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} does not match r's shape {r.shape}")
    s, v1 = (
        float(_checks.scalar("s", s, 0, exact=True)),
        float(_checks.scalar("v1", v1, 0, exact=True)),
    )
    v = np.empty(r.shape[0] + 1)
    v[0] = v1
    for k in range(r.shape[0]):
        v[k + 1] = r[k] ** 2 * v[k] + b[k] ** 2 * s**2  # (2)
    return v
