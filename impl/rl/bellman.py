"""Bellman equations: policy evaluation, action values, the optimality operator (Zhao, ch. 2-3).

(1) matrix form     v_pi = r_pi + gamma P_pi v_pi;   closed form v_pi = (I - gamma P_pi)^{-1} r_pi
(2) iterative       v_{k+1} = r_pi + gamma P_pi v_k  -> v_pi from any v_0, and since P_pi is
                    stochastic, ||v_{k+1} - v_pi||_inf <= gamma ||v_k - v_pi||_inf (a contraction)
(3) action values   q_pi(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) v_pi(s')   (one backup)
                    v_pi(s) = sum_a pi(a|s) q_pi(s, a)
(4) optimality      (T v)(s) = max_a [r(s, a) + gamma sum_s' p(s'|s, a) v(s')]
                    ||T v - T w||_inf <= gamma ||v - w||_inf; its unique fixed point is v*.
"""

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from impl import _checks
from impl.rl.mdp import _check_mdp, _real_array, _vector, check_policy

# Every function takes an impl.rl.mdp.MDP `mdp`, policies pi as (S, A) matrices with rows on the
# simplex, and state values v as finite arrays of shape (S,).


def evaluate(mdp, pi):
    """(1): v_pi by solving (I - gamma P_pi) v = r_pi (sparse LU)."""
    _check_mdp(mdp)
    pi = check_policy("pi", pi, mdp.n_states, mdp.n_actions)
    P = mdp.policy_matrix(pi)
    A = sparse.identity(mdp.n_states, format="csc") - mdp.gamma * P.tocsc()
    return np.atleast_1d(spsolve(A, mdp.policy_reward(pi)))


def evaluation_sweep(mdp, pi, v):
    """(2): one sweep r_pi + gamma P_pi v."""
    _check_mdp(mdp)
    pi = check_policy("pi", pi, mdp.n_states, mdp.n_actions)
    return _sweep(mdp, pi, _vector("v", v, mdp.n_states))


def _sweep(mdp, pi, v):
    """evaluation_sweep on checked arguments (the loops below check them once)."""
    return np.sum(pi * mdp.backup(v), axis=1)


def evaluate_iterative(mdp, pi, sweeps, v0=None):
    """(2): v_0, v_1, ..., v_sweeps, shape (sweeps + 1, S); v_0 = 0 unless given; sweeps >= 0."""
    _check_mdp(mdp)
    pi = check_policy("pi", pi, mdp.n_states, mdp.n_actions)
    if isinstance(sweeps, bool) or not isinstance(sweeps, int | np.integer) or sweeps < 0:
        raise ValueError(f"sweeps: must be a non-negative integer, got {sweeps!r}")
    v = np.zeros(mdp.n_states) if v0 is None else _vector("v0", v0, mdp.n_states)
    history = [v]
    for _ in range(sweeps):
        v = _sweep(mdp, pi, v)
        history.append(v)
    return np.array(history)


def q_from_v(mdp, v):
    """(3): q(s, a) by one backup of v."""
    _check_mdp(mdp)
    return mdp.backup(v)


def v_from_q(pi, q):
    """(3): v(s) = sum_a pi(a|s) q(s, a); q is a finite (S, A) array, pi a policy of its shape."""
    q = _real_array("q", q, 2)
    pi = _real_array("pi", pi, 2, allow_exact=True)
    _checks.same_shape("pi", pi, "q", q)
    pi = check_policy("pi", pi, *q.shape)
    return np.sum(pi * q, axis=1)


def optimality_operator(mdp, v):
    """(4): T v and the greedy actions argmax_a of the backup (lowest index among ties)."""
    _check_mdp(mdp)
    q = mdp.backup(v)
    actions = q.argmax(axis=1)
    return np.take_along_axis(q, actions[:, None], axis=1)[:, 0], actions
