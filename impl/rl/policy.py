"""Policies as (S, A) matrices: deterministic, greedy and epsilon-greedy (Zhao, ch. 2 and 5).

(1) deterministic pi(a|s) = [a = mu(s)]
(2) greedy from q: mu(s) = argmax_a q(s, a) (the lowest index among ties)
(3) epsilon-greedy from q (seed article 9, MC-05), |A| actions, eps in [0, 1]:
        pi(a|s) = 1 - eps (|A| - 1) / |A|   for a = argmax_a q(s, a)
                = eps / |A|                 otherwise;
    rows sum to 1, eps = 0 is greedy, eps = 1 uniform, and
        sum_a pi(a|s) q(s, a) = (1 - eps) max_a q(s, a) + eps mean_a q(s, a).
Arrays of Fractions (dtype object) are handled exactly.
"""

import math
import numbers

import numpy as np

from impl import _checks
from impl.rl.mdp import _real_array


def deterministic(actions, n_actions):
    """(1): the (S, A) matrix of the policy s -> actions[s]: actions a non-empty 1-D integer
    array of indices in [0, n_actions), n_actions >= 1."""
    n_actions = _checks.positive_int("n_actions", n_actions)
    if actions is None or isinstance(actions, str | bytes | dict):
        raise ValueError(f"actions: expected a 1-D integer array, got {type(actions).__name__}")
    actions = np.asarray(actions)
    if actions.ndim != 1 or actions.dtype.kind not in "iu" or actions.size == 0:
        raise ValueError(
            f"actions: expected a non-empty 1-D integer array, got shape {actions.shape} of "
            f"{actions.dtype}"
        )
    if actions.min() < 0 or actions.max() >= n_actions:
        raise ValueError(f"actions: indices must lie in [0, {n_actions - 1}]")
    pi = np.zeros((actions.size, n_actions))
    pi[np.arange(actions.size), actions] = 1.0
    return pi


def _q(q):
    """q: a non-empty (S, A) array of finite real numbers (or exact ones, dtype object)."""
    if q is None or isinstance(q, str | bytes | dict):
        raise ValueError(f"q: expected a non-empty (S, A) array, got {type(q).__name__}")
    a = np.asarray(q)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"q: expected a non-empty (S, A) array, got shape {a.shape}")
    return _real_array("q", a, 2, allow_exact=True)


def greedy_actions(q):
    """(2): argmax_a q(s, a) per state (lowest index among ties)."""
    return np.argmax(_q(q), axis=1)


def epsilon_greedy(q, epsilon):
    """(3): the epsilon-greedy (S, A) policy of q; epsilon a real number in [0, 1] (a Fraction
    keeps the policy exact)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"epsilon: must be a real number, got {epsilon!r:.60}")
    if not (math.isfinite(epsilon) and 0 <= epsilon <= 1):
        raise ValueError(f"epsilon: must lie in [0, 1], got {epsilon!r}")
    q = _q(q)
    best = greedy_actions(q)
    n_actions = q.shape[1]
    dtype = object if q.dtype == object or not isinstance(epsilon, float | int) else float
    pi = np.empty(q.shape, dtype=dtype)
    pi[:] = epsilon / n_actions
    pi[np.arange(q.shape[0]), best] = 1 - epsilon * (n_actions - 1) / n_actions
    return pi
