"""Finite Markov decision processes and policies (seed article 10; Zhao, ch. 2-4).

States s = 0..S-1, actions a = 0..A-1. Each pair (s, a) has K outcomes k, the k-th leading to
next_state[s, a, k] with probability prob[s, a, k] and reward reward[s, a, k] (unused outcomes
carry probability 0). This holds any finite MDP (K = S gives the dense p(s'|s,a)) in memory
proportional to the outcomes that exist, so a 100 x 100 grid world takes S A = 5e4 entries.

(1) expected reward      r(s, a) = sum_k p_k r_k
(2) one backup           q(s, a) = r(s, a) + gamma sum_k p_k v(s'_k)
(3) a policy pi(a|s) is an (S, A) matrix with rows on the simplex;
    r_pi(s) = sum_a pi(a|s) r(s, a),   P_pi(s, s') = sum_a pi(a|s) p(s'|s, a).
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

PROB_TOL = 1e-9  # allowed |sum of a row of probabilities - 1|


@dataclass(frozen=True)
class MDP:
    next_state: np.ndarray  # (S, A, K) int
    prob: np.ndarray  # (S, A, K) float
    reward: np.ndarray  # (S, A, K) float
    gamma: float

    def __post_init__(self):
        ns, p, r = (np.asarray(x) for x in (self.next_state, self.prob, self.reward))
        if ns.ndim != 3 or p.shape != ns.shape or r.shape != ns.shape:
            raise ValueError(
                f"prob: next_state, prob and reward must share one (S, A, K) shape, got "
                f"{ns.shape}, {p.shape}, {r.shape}"
            )
        if ns.dtype.kind not in "iu" or ns.size and (ns.min() < 0 or ns.max() >= ns.shape[0]):
            raise ValueError(f"next_state: must hold state indices in [0, {ns.shape[0] - 1}]")
        check_probabilities("prob", p)
        if not np.all(np.isfinite(r)):
            raise ValueError("reward: must be finite")
        check_gamma(self.gamma)
        object.__setattr__(self, "next_state", ns.astype(np.intp))
        object.__setattr__(self, "prob", p.astype(float))
        object.__setattr__(self, "reward", r.astype(float))

    @property
    def n_states(self):
        return self.next_state.shape[0]

    @property
    def n_actions(self):
        return self.next_state.shape[1]

    def expected_reward(self):
        """(1): r(s, a), shape (S, A)."""
        return self._r.copy()

    @cached_property
    def _r(self):
        return np.sum(self.prob * self.reward, axis=2)

    @cached_property
    def _single(self):
        """next_state[:, :, 0] as a contiguous (S, A) array, when K = 1 (then prob = 1)."""
        return (
            np.ascontiguousarray(self.next_state[:, :, 0])
            if self.next_state.shape[2] == 1
            else None
        )

    def backup(self, v):
        """(2): q(s, a) for state values v, shape (S, A)."""
        if self._single is not None:  # one outcome per (s, a): a gather, in place
            q = np.take(v, self._single)
        else:
            q = np.einsum("sak,sak->sa", self.prob, v[self.next_state])
        q *= self.gamma
        q += self._r
        return q

    def transition_tensor(self):
        """p(s'|s, a) as a dense (S, A, S) array (for small MDPs)."""
        S, A, K = self.next_state.shape
        P = np.zeros((S, A, S))
        s, a, _ = np.indices((S, A, K))
        np.add.at(P, (s, a, self.next_state), self.prob)
        return P

    def policy_matrix(self, pi):
        """(3): P_pi as a sparse (S, S) matrix."""
        pi = check_policy("pi", pi, self.n_states, self.n_actions)
        S, A, K = self.next_state.shape
        weights = pi[:, :, None] * self.prob
        rows = np.broadcast_to(np.arange(S)[:, None, None], (S, A, K))
        return sparse.csr_matrix((weights.ravel(), (rows.ravel(), self.next_state.ravel())), (S, S))

    def policy_reward(self, pi):
        """(3): r_pi, shape (S,)."""
        pi = check_policy("pi", pi, self.n_states, self.n_actions)
        return np.sum(pi * self.expected_reward(), axis=1)

    @classmethod
    def from_dense(cls, P, R, gamma):
        """From p(s'|s, a) as (S, A, S) and rewards r(s, a) as (S, A) or r(s, a, s') as (S, A, S)."""
        P = np.asarray(P, dtype=float)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"P: expected shape (S, A, S), got {P.shape}")
        R = np.asarray(R, dtype=float)
        if R.shape == P.shape[:2]:
            R = np.broadcast_to(R[:, :, None], P.shape)
        elif R.shape != P.shape:
            raise ValueError(f"R: expected shape {P.shape[:2]} or {P.shape}, got {R.shape}")
        S = P.shape[0]
        next_state = np.broadcast_to(np.arange(S), P.shape)
        return cls(next_state, P, R, gamma)


def check_gamma(gamma):
    if not (np.isfinite(gamma) and 0 <= gamma < 1):
        raise ValueError(f"gamma: the discount must lie in [0, 1), got {gamma!r}")


def check_probabilities(name, p, axis=-1):
    """Non-negative, finite, summing to 1 along `axis` (within PROB_TOL)."""
    p = np.asarray(p, dtype=float)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: probabilities must be finite")
    if np.any(p < 0):
        where = tuple(int(i) for i in np.argwhere(p < 0)[0])
        raise ValueError(f"{name}: negative probability {p[where]!r} at {where}")
    total = p.sum(axis=axis)
    bad = np.abs(total - 1) > PROB_TOL
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: probabilities at {where} sum to {total[where]!r}, not 1")
    return p


def check_policy(name, pi, n_states, n_actions):
    pi = np.asarray(pi)
    if pi.shape != (n_states, n_actions):
        raise ValueError(
            f"{name}: expected an (S, A) = ({n_states}, {n_actions}) matrix, got {pi.shape}"
        )
    check_probabilities(name, pi.astype(float), axis=1)
    return pi
