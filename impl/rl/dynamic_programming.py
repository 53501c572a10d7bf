"""Value iteration, policy iteration and truncated policy iteration (Zhao, ch. 4).

(1) value iteration       v_{k+1} = T v_k   (T of bellman.py, eq. 4), from any v_0.
    Contraction bound:    ||v_k - v*||_inf <= gamma^k / (1 - gamma) ||v_1 - v_0||_inf, and after
    a sweep that moved v by at most delta, ||v_{k+1} - v*||_inf <= gamma delta / (1 - gamma).
    The run stops at the first sweep with ||v_{k+1} - v_k||_inf <= tol.
(2) policy iteration      evaluate pi_k exactly (v_{pi_k}), then pi_{k+1}(s) = argmax_a q_{pi_k}(s, a),
    keeping pi_k(s) when it is within TIE of the maximum; stop when the policy is unchanged.
    v_{pi_{k+1}} >= v_{pi_k}, and the number of iterations is finite (at most |A|^|S|).
(3) truncated PI          the evaluation of (2) replaced by j sweeps of bellman.py eq. 2 started
    from the previous value; j = 1 is value iteration, j -> inf policy iteration.
The greedy policy of v* (or of q*) is optimal; all three reach the same v*.
"""

from dataclasses import dataclass, field

import numpy as np

from impl import _checks
from impl.rl import bellman, policy
from impl.rl.mdp import _actions, _check_mdp, _real_array, _vector

TIE = 1e-9  # relative tolerance under which an action counts as tied with the best


@dataclass
class Result:
    v: np.ndarray  # final state values
    actions: np.ndarray  # a greedy (deterministic) policy, one action per state
    iterations: int  # sweeps (VI) or policy updates (PI, TPI)
    history: list = field(default_factory=list)  # VI, TPI: ||v_{k+1} - v_k||; PI: each policy


def _start(mdp, v0):
    """v0: None (zeros) or finite values of shape (S,)."""
    return np.zeros(mdp.n_states) if v0 is None else _vector("v0", v0, mdp.n_states)


def value_iteration(mdp, v0=None, tol=1e-10, max_iter=100_000):
    """(1): iterate T until a sweep moves v by at most `tol` (or `max_iter` sweeps).
    v0 finite of shape (S,) (zeros if None), tol > 0, max_iter >= 1."""
    _check_mdp(mdp)
    tol = _checks.scalar("tol", tol, 0, lo_open=True)
    _checks.positive_int("max_iter", max_iter)
    v = _start(mdp, v0)
    deltas = []
    for k in range(1, max_iter + 1):
        v_next, actions = bellman.optimality_operator(mdp, v)
        deltas.append(float(np.max(np.abs(v_next - v))))
        v = v_next
        if deltas[-1] <= tol:
            break
    return Result(v, actions, k, deltas)


def _q(q):
    return _real_array("q", q, 2).astype(float, copy=False)


def tie_tolerance(q):
    """Per state, how far below the best an action may be and still count as tied with it;
    q is a finite, non-empty (S, A) array."""
    q = _q(q)
    return TIE * np.maximum(1.0, np.abs(q.max(axis=1)))


def improve(q, current):
    """Greedy actions of q, keeping the current action where it is tied with the best; q a
    finite (S, A) array, current one action index in [0, A) per state.

    A policy mu that improve() leaves unchanged has q_mu(s, mu(s)) >= max_a q_mu(s, a) - t(s),
    so it is within max_s t(s) / (1 - gamma) of optimal (t = tie_tolerance(q))."""
    q = _q(q)
    current = _actions("current", current, *q.shape)
    keep = q[np.arange(q.shape[0]), current] >= q.max(axis=1) - tie_tolerance(q)
    return np.where(keep, current, q.argmax(axis=1))


def policy_iteration(mdp, actions0=None, max_iter=10_000):
    """(2): exact evaluation and greedy improvement until the policy is stable; actions0 one
    action per state (action 0 everywhere if None), max_iter >= 1."""
    _check_mdp(mdp)
    _checks.positive_int("max_iter", max_iter)
    actions = (
        np.zeros(mdp.n_states, dtype=int)
        if actions0 is None
        else _actions("actions0", actions0, mdp.n_states, mdp.n_actions)
    )
    policies = []
    for k in range(1, max_iter + 1):
        v = bellman.evaluate(mdp, policy.deterministic(actions, mdp.n_actions))
        policies.append(actions)
        new = improve(mdp.backup(v), actions)
        if np.array_equal(new, actions):
            break
        actions = new
    return Result(v, actions, k, policies)


def truncated_policy_iteration(mdp, j, v0=None, tol=1e-10, max_iter=100_000):
    """(3): improvement, then j evaluation sweeps from the previous value, until v moves <= tol.
    j >= 1, v0 finite of shape (S,) (zeros if None), tol > 0, max_iter >= 1."""
    _check_mdp(mdp)
    _checks.positive_int("j", j)
    tol = _checks.scalar("tol", tol, 0, lo_open=True)
    _checks.positive_int("max_iter", max_iter)
    v = _start(mdp, v0)
    actions = np.zeros(mdp.n_states, dtype=int)
    deltas = []
    for k in range(1, max_iter + 1):
        actions = improve(mdp.backup(v), actions)
        pi = policy.deterministic(actions, mdp.n_actions)
        v_next = v
        for _ in range(j):
            v_next = bellman._sweep(mdp, pi, v_next)
        deltas.append(float(np.max(np.abs(v_next - v))))
        v = v_next
        if deltas[-1] <= tol:
            break
    return Result(v, actions, k, deltas)
