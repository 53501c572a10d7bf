"""Converters between impl.rl.mdp.MDP and the tables of gymnasium and pymdptoolbox.

gymnasium (toy_text, e.g. FrozenLake): env.unwrapped.P[s][a] = [(p, s', r, terminated), ...].
    Entries with the same (s', r) are merged (their probabilities added). A terminated
    transition ends the episode; gymnasium's own table already makes the terminal states
    absorbing with reward 0, which is the same process under discounting.
pymdptoolbox: P of shape (A, S, S) (or a list of A sparse (S, S) matrices) and R of shape (S, A)
    (expected reward) or (A, S, S) (reward of each transition).
"""

import numpy as np
from scipy import sparse

from impl.rl.mdp import MDP


def from_gymnasium(P, gamma):
    """An MDP from a gymnasium toy-text transition table `P` (dict of dicts of lists)."""
    S = len(P)
    A = len(P[0])
    merged = [[{} for _ in range(A)] for _ in range(S)]
    for s in range(S):
        if len(P[s]) != A:
            raise ValueError(f"P: state {s} has {len(P[s])} actions, state 0 has {A}")
        for a in range(A):
            for p, s2, r, _terminated in P[s][a]:
                key = (int(s2), float(r))
                merged[s][a][key] = merged[s][a].get(key, 0.0) + float(p)
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
    """(P, R): P as an (A, S, S) array (or a list of A csr matrices), R = r(s, a) as (S, A)."""
    S, A, K = mdp.next_state.shape
    rows = np.repeat(np.arange(S), K)
    P = [
        sparse.csr_matrix((mdp.prob[:, a].ravel(), (rows, mdp.next_state[:, a].ravel())), (S, S))
        for a in range(A)
    ]
    R = mdp.expected_reward()
    return (P if as_sparse else np.stack([p.toarray() for p in P])), R


def from_mdptoolbox(P, R, gamma):
    """An MDP from pymdptoolbox's (P, R)."""
    P = np.stack([p.toarray() if sparse.issparse(p) else np.asarray(p) for p in P])
    if P.ndim != 3 or P.shape[1] != P.shape[2]:
        raise ValueError(f"P: expected shape (A, S, S), got {P.shape}")
    R = np.asarray(R, dtype=float)
    if R.shape == P.shape:
        R = np.transpose(R, (1, 0, 2))
    elif R.shape != (P.shape[1], P.shape[0]):
        raise ValueError(
            f"R: expected shape (S, A) = {(P.shape[1], P.shape[0])} or {P.shape}, got {R.shape}"
        )
    return MDP.from_dense(np.transpose(P, (1, 0, 2)), R, gamma)
