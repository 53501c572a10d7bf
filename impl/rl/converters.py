"""Converters between impl.rl.mdp.MDP and the tables of gymnasium and pymdptoolbox.

gymnasium (toy_text, e.g. FrozenLake): env.unwrapped.P[s][a] = [(p, s', r, terminated), ...].
    Entries with the same (s', r) are merged (their probabilities added). A terminated
    transition ends the episode; gymnasium's own table already makes the terminal states
    absorbing with reward 0, which is the same process under discounting.
pymdptoolbox: P of shape (A, S, S) (or a list of A sparse (S, S) matrices) and R of shape (S, A)
    (expected reward) or (A, S, S) (reward of each transition).
"""

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from impl import _checks
from impl.rl.mdp import MDP, PROB_TOL, _check_mdp, _real_array, check_gamma, check_probabilities


def _outcome(where, entry, S):
    """(p, s', r) of one gymnasium entry (p, s', r, terminated), checked."""
    if not isinstance(entry, tuple | list) or len(entry) != 4:
        raise ValueError(
            f"{where}: expected (p, next_state, reward, terminated), got {entry!r:.60}"
        )
    p, s2, r, _terminated = entry
    for what, x in (("probability", p), ("reward", r)):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
            raise ValueError(f"{where}: the {what} must be a finite real number, got {x!r:.60}")
    if not 0 <= p <= 1:
        raise ValueError(f"{where}: probability {p!r} outside [0, 1]")
    if isinstance(s2, bool) or not isinstance(s2, int | np.integer) or not 0 <= s2 < S:
        raise ValueError(f"{where}: next state {s2!r:.60} is not an integer in [0, {S - 1}]")
    return float(p), int(s2), float(r)


def from_gymnasium(P, gamma):
    """An MDP from a gymnasium toy-text transition table `P` (dict of dicts of lists): states
    0..S-1, each with the same actions 0..A-1, each a non-empty list of (p, s', r, terminated)
    whose probabilities sum to 1; gamma in [0, 1)."""
    check_gamma(gamma)
    if not isinstance(P, Mapping | Sequence) or isinstance(P, str | bytes) or len(P) == 0:
        raise ValueError(f"P: expected a non-empty table P[s][a], got {P!r:.60}")
    S = len(P)
    rows = []
    for s in range(S):
        if isinstance(P, Mapping) and s not in P:
            raise ValueError(f"P: states must be numbered 0..{S - 1}; state {s} is missing")
        row = P[s]
        if not isinstance(row, Mapping | Sequence) or isinstance(row, str | bytes):
            raise ValueError(f"P: state {s}: expected a table of actions, got {row!r:.60}")
        if not row:
            raise ValueError(f"P: state {s} has no actions")
        if rows and len(row) != len(rows[0]):
            raise ValueError(f"P: state {s} has {len(row)} actions, state 0 has {len(rows[0])}")
        if isinstance(row, Mapping) and set(row) != set(range(len(row))):
            raise ValueError(f"P: state {s}: actions must be numbered 0..{len(row) - 1}")
        rows.append(row)
    A = len(rows[0])
    merged = [[{} for _ in range(A)] for _ in range(S)]
    for s in range(S):
        for a in range(A):
            entries = rows[s][a]
            if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
                raise ValueError(f"P: state {s}, action {a}: expected a non-empty list of outcomes")
            for i, entry in enumerate(entries):
                p, s2, r = _outcome(f"P: state {s}, action {a}, outcome {i}", entry, S)
                merged[s][a][s2, r] = merged[s][a].get((s2, r), 0.0) + p
            total = sum(merged[s][a].values())
            if abs(total - 1) > PROB_TOL:
                raise ValueError(f"P: state {s}, action {a}: probabilities sum to {total!r}, not 1")
    K = max(len(m) for row in merged for m in row)
    next_state = np.zeros((S, A, K), dtype=np.intp)
    prob, reward = np.zeros((S, A, K)), np.zeros((S, A, K))
    for s in range(S):
        for a in range(A):
            for k, ((s2, r), p) in enumerate(sorted(merged[s][a].items())):
                next_state[s, a, k], reward[s, a, k], prob[s, a, k] = s2, r, p
            next_state[s, a, len(merged[s][a]) :] = s
    return MDP(next_state, prob, reward, gamma)


def to_mdptoolbox(mdp, as_sparse=False):
    """(P, R): P as an (A, S, S) array (or a list of A csr matrices if `as_sparse`, a bool),
    R = r(s, a) as (S, A)."""
    _check_mdp(mdp)
    _checks.flag("as_sparse", as_sparse)
    S, A, K = mdp.next_state.shape
    rows = np.repeat(np.arange(S), K)
    P = [
        sparse.csr_matrix((mdp.prob[:, a].ravel(), (rows, mdp.next_state[:, a].ravel())), (S, S))
        for a in range(A)
    ]
    R = mdp.expected_reward()
    return (P if as_sparse else np.stack([p.toarray() for p in P])), R


def from_mdptoolbox(P, R, gamma):
    """An MDP from pymdptoolbox's (P, R): P an (A, S, S) array or a list of A (S, S) matrices
    (dense or sparse) whose rows sum to 1; R finite, (S, A) or (A, S, S); gamma in [0, 1)."""
    check_gamma(gamma)
    if P is None or isinstance(P, str | bytes | dict) or not hasattr(P, "__len__") or len(P) == 0:
        raise ValueError(
            f"P: expected a non-empty (A, S, S) array or list of matrices, got {P!r:.60}"
        )
    try:
        P = np.stack([p.toarray() if sparse.issparse(p) else np.asarray(p) for p in P])
    except (ValueError, TypeError):
        raise ValueError("P: the A matrices must be (S, S) arrays of one shape") from None
    if P.ndim != 3 or P.shape[1] != P.shape[2]:
        raise ValueError(f"P: expected shape (A, S, S), got {P.shape}")
    P = _real_array("P", P, 3)
    check_probabilities("P", P, axis=2)
    R = _real_array("R", R, (2, 3), nonempty=False).astype(float)  # P's shape decides
    if R.shape == P.shape:
        R = np.transpose(R, (1, 0, 2))
    elif R.shape != (P.shape[1], P.shape[0]):
        raise ValueError(
            f"R: expected shape (S, A) = {(P.shape[1], P.shape[0])} or {P.shape}, got {R.shape}"
        )
    return MDP.from_dense(np.transpose(P, (1, 0, 2)), R, gamma)
