"""Error bounds for computed state values, and an independent reference for v*.

Certificates. For a policy pi, T_pi v = r_pi + gamma P_pi v is a gamma-contraction in the max
norm with fixed point v_pi, so for any v:   ||v - v_pi|| <= ||T_pi v - v|| / (1 - gamma)   (and
the same with the optimality operator T and v*). Such a certificate is true of ANY v, so it may
bound the error of a reference (whose residual is then asserted to be tiny), never the error of
the vector under test. The residual is computed in float64: each entry of a backup sums K
outcomes, so it is off by at most (K + 3) u (max|r| + ||v||) (u = 2^-53), which is added.

Reference (reference_optimum, reference_policy_value): p(s'|s, a) and r(s, a) summed here from
the MDP's outcome arrays; v* from the linear programme
    minimise sum_s v(s)  subject to  v(s) >= r(s, a) + gamma sum_s' p(s'|s, a) v(s')  for all (s, a)
(scipy's HiGHS), whose solution is v*; the LP's greedy policy is then evaluated by a dense
solve and switched where an action gains more than the rounding noise, until none does. Nothing
of impl/ is used beyond the arrays next_state, prob and reward.

A-priori budgets of the solvers (stopping-rule bounds, from the run's own rule and the size of
the numbers involved, never from the returned vector): value_iteration_bound,
truncated_policy_iteration_bound, policy_iteration_bound.
"""

import numpy as np
from scipy.optimize import linprog

from impl.rl import bellman
from impl.rl.dynamic_programming import TIE

U = 2.0**-53
LU = 16  # residual of an LU solve of (I - gamma P) v = r: <= LU S u (||v|| + max|r|)


def _rounding(mdp, v):
    return (mdp.next_state.shape[2] + 3) * U * (np.abs(mdp.reward).max() + np.abs(v).max())


def policy_value_bound(mdp, pi, v):
    """Certificate: a bound on ||v - v_pi||_inf, true of any v (for references only)."""
    residual = np.abs(bellman.evaluation_sweep(mdp, pi, v) - v).max()
    return (residual + _rounding(mdp, v)) / (1 - mdp.gamma)


def optimal_value_bound(mdp, v):
    """Certificate: a bound on ||v - v*||_inf, true of any v (for references only)."""
    residual = np.abs(bellman.optimality_operator(mdp, v)[0] - v).max()
    return (residual + _rounding(mdp, v)) / (1 - mdp.gamma)


def dense_model(mdp):
    """(P, r): p(s'|s, a) as (S, A, S) and r(s, a) = sum_k p_k r_k as (S, A), from the arrays."""
    ns = np.asarray(mdp.next_state)
    p, rew = np.asarray(mdp.prob, float), np.asarray(mdp.reward, float)
    S, A, K = ns.shape
    P = np.zeros((S, A, S))
    s, a = np.arange(S)[:, None], np.arange(A)[None, :]
    for k in range(K):  # for one k, each (s, a) has one next state: no repeated index
        P[s, a, ns[:, :, k]] += p[:, :, k]
    return P, np.sum(p * rew, axis=2)


def dense_rounding(r, v):
    """Rounding of one dense backup r + gamma P v (S terms) and of r itself (K <= S terms)."""
    return (2 * r.shape[0] + 4) * U * (np.abs(r).max() + np.abs(v).max())


def lu_noise(S, gamma, scale):
    """||v_hat - v|| for an LU solve of (I - gamma P) v = r, scale = ||v|| + max|r|: a residual
    of at most LU S u scale (backward stability; growth <= 2 for this diagonally dominant
    matrix), divided by 1 - gamma (||(I - gamma P)^-1|| <= 1 / (1 - gamma))."""
    return LU * S * U * scale / (1 - gamma)


def _solve(P, r, gamma, pi):
    """v_pi by a dense solve; pi is an (S, A) matrix of probabilities."""
    S = r.shape[0]
    P_pi, r_pi = np.einsum("sa,sat->st", pi, P), np.sum(pi * r, axis=1)
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi), P_pi, r_pi


def reference_policy_value(mdp, pi):
    """(v_pi, eps) by a dense solve, eps >= ||v - v_pi|| (its residual certificate, asserted to
    be within the LU budget)."""
    P, r = dense_model(mdp)
    pi = np.asarray(pi, float)
    v, P_pi, r_pi = _solve(P, r, mdp.gamma, pi)
    residual = np.abs(r_pi + mdp.gamma * P_pi @ v - v).max()
    rounding = dense_rounding(r, v)
    budget = LU * r.shape[0] * U * (np.abs(v).max() + np.abs(r).max()) + rounding
    assert residual <= budget, f"reference v_pi: residual {residual:.2e} > budget {budget:.2e}"
    return v, (residual + rounding) / (1 - mdp.gamma)


def reference_optimum(mdp):
    """(v*, eps) with eps >= ||v - v*||: linear programme, then exact evaluation of its greedy
    policy, switched where an action gains more than the noise of the solve, until none does.
    The optimality residual ||T v - v|| is asserted to be within that noise."""
    P, r = dense_model(mdp)
    S, A = r.shape
    g = mdp.gamma
    lp = linprog(
        np.ones(S),
        A_ub=(g * P - np.eye(S)[:, None, :]).reshape(S * A, S),
        b_ub=-r.ravel(),
        bounds=[(None, None)] * S,
        method="highs",
    )
    assert lp.status == 0, f"reference LP: {lp.message}"
    mu = np.argmax(r + g * P @ lp.x, axis=1)
    rows = np.arange(S)
    for _ in range(S * A + 1):
        v = _solve(P, r, g, np.eye(A)[mu])[0]
        q = r + g * P @ v
        scale = np.abs(v).max() + np.abs(r).max()
        # for an optimal mu, q(s, a) - q(s, mu(s)) <= 0 exactly; computed, it is off by the
        # solve's error twice (gamma ||e|| each) and the backups' rounding twice
        noise = 2 * g * lu_noise(S, g, scale) + 2 * dense_rounding(r, v)
        gain = q.max(axis=1) - q[rows, mu]
        if gain.max() <= noise:
            break
        mu = np.where(gain > noise, q.argmax(axis=1), mu)
    else:
        raise AssertionError("reference: the policy switches did not settle")
    residual = np.abs(q.max(axis=1) - v).max()
    budget = noise + LU * S * U * scale + dense_rounding(r, v)
    assert residual <= budget, f"reference v*: residual {residual:.2e} > budget {budget:.2e}"
    return v, (residual + dense_rounding(r, v)) / (1 - g)


def reference_q(mdp, v):
    """r(s, a) + gamma sum_s' p(s'|s, a) v(s') from the dense model, and its rounding."""
    P, r = dense_model(mdp)
    return r + mdp.gamma * P @ v, dense_rounding(r, v)


def _scale(mdp, v_star, v0=None):
    """A bound on max|r| + ||v|| over a run that starts at v0 (0 by default) and approaches v*:
    the iterates stay within ||v0 - v*|| of v*."""
    start = 0.0 if v0 is None else np.abs(v0).max()
    return np.abs(mdp.reward).max() + 2 * np.abs(v_star).max() + start


def value_iteration_bound(mdp, tol, v_star, v0=None):
    """||v - v*|| after value iteration stopped on a sweep that moved v by <= tol: each computed
    sweep is T v + e with ||e|| <= rho, so ||v_{k+1} - v*|| <= gamma (tol + ||v_{k+1} - v*||) +
    rho, i.e. <= (gamma tol + rho) / (1 - gamma)."""
    rho = (mdp.next_state.shape[2] + 4) * U * _scale(mdp, v_star, v0)
    return (mdp.gamma * tol + rho) / (1 - mdp.gamma)


def truncated_policy_iteration_bound(mdp, j, tol, v_star, v0=None):
    """||v_next - v*|| after truncated PI stopped with ||v_next - v|| <= tol, v_next = T_pi^j v,
    pi greedy for v within the tie tolerance t = TIE max(1, |max_a q|):
    T_pi^j v - v = sum_{i<j} (gamma P_pi)^i d with d = T_pi v - v, so ||d|| <= (1 + gamma) /
    (1 - gamma^j) ||T_pi^j v - v||; ||T v - v|| <= ||d|| + t (+ rounding); ||v - v*|| <=
    ||T v - v|| / (1 - gamma), and v_next is within tol of v. The j computed sweeps add
    rho / (1 - gamma) to the move."""
    g = mdp.gamma
    scale = _scale(mdp, v_star, v0)
    rho = (mdp.next_state.shape[2] + 4) * U * scale
    t = TIE * max(1.0, scale)
    move = tol + rho / (1 - g)
    return tol + ((1 + g) / (1 - g**j) * move + t + 2 * rho) / (1 - g)


def policy_iteration_bound(mdp, v_star):
    """||v - v*|| when policy iteration stopped with a policy mu that improve() leaves unchanged,
    v = v_mu solved by LU with error e (||e|| <= lu_noise): mu is greedy for the computed q
    within t, so within t + 2 gamma ||e|| + 2 rho for q_mu, and ||v_mu - v*|| <= that /
    (1 - gamma); v adds ||e||."""
    g, S = mdp.gamma, mdp.n_states
    scale = _scale(mdp, v_star)
    e = lu_noise(S, g, scale)
    rho = (mdp.next_state.shape[2] + 4) * U * scale
    t = TIE * max(1.0, scale)
    return e + (t + 2 * g * e + 2 * rho) / (1 - g)
