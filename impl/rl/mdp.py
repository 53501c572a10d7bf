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

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from impl import _checks

PROB_TOL = 1e-9  # allowed |sum of a row of probabilities - 1|


@dataclass(frozen=True)
class MDP:
    next_state: np.ndarray  # (S, A, K) int
    prob: np.ndarray  # (S, A, K) float
    reward: np.ndarray  # (S, A, K) float
    gamma: float

    def __post_init__(self):
        """next_state: (S, A, K) integer indices in [0, S); prob: (S, A, K) probabilities, each
        (s, a) row summing to 1; reward: (S, A, K) finite; gamma in [0, 1). S, A, K >= 1."""
        ns = _real_array("next_state", self.next_state, 3, kinds="iu", finite=False)
        S = ns.shape[0]
        if ns.min() < 0 or ns.max() >= S:
            raise ValueError(
                f"next_state: must hold state indices in [0, {S - 1}], got one in "
                f"[{ns.min()}, {ns.max()}]"
            )
        p = _real_array("prob", self.prob, 3)
        _checks.same_shape("prob", p, "next_state", ns)
        check_probabilities("prob", p)
        r = _real_array("reward", self.reward, 3)
        _checks.same_shape("reward", r, "next_state", ns)
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
        """(2): q(s, a) for state values v (finite, shape (S,)), shape (S, A)."""
        v = _vector("v", v, self.n_states)
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
        """(3): P_pi as a sparse (S, S) matrix; pi is (S, A) with rows on the simplex."""
        pi = check_policy("pi", pi, self.n_states, self.n_actions)
        S, A, K = self.next_state.shape
        weights = pi[:, :, None] * self.prob
        rows = np.broadcast_to(np.arange(S)[:, None, None], (S, A, K))
        return sparse.csr_matrix((weights.ravel(), (rows.ravel(), self.next_state.ravel())), (S, S))

    def policy_reward(self, pi):
        """(3): r_pi, shape (S,); pi is (S, A) with rows on the simplex."""
        pi = check_policy("pi", pi, self.n_states, self.n_actions)
        return np.sum(pi * self.expected_reward(), axis=1)

    @classmethod
    def from_dense(cls, P, R, gamma):
        """From p(s'|s, a) as (S, A, S) and rewards r(s, a) as (S, A) or r(s, a, s') as (S, A, S)."""
        P = _real_array("P", P, 3).astype(float)
        if P.shape[0] != P.shape[2]:
            raise ValueError(f"P: expected shape (S, A, S), got {P.shape}")
        check_probabilities("P", P, axis=2)
        R = _real_array("R", R, (2, 3), nonempty=False).astype(float)  # P's shape decides
        if R.shape == P.shape[:2]:
            R = np.broadcast_to(R[:, :, None], P.shape)
        elif R.shape != P.shape:
            raise ValueError(f"R: expected shape {P.shape[:2]} or {P.shape}, got {R.shape}")
        S = P.shape[0]
        next_state = np.broadcast_to(np.arange(S), P.shape)
        return cls(next_state, P, R, gamma)


def check_gamma(gamma):
    """gamma: a real number in [0, 1)."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma: the discount must be a real number, got {gamma!r:.60}")
    if not (math.isfinite(gamma) and 0 <= gamma < 1):
        raise ValueError(f"gamma: the discount must lie in [0, 1), got {gamma!r}")


def check_probabilities(name, p, axis=-1):
    """Non-negative, finite, summing to 1 along `axis` (within PROB_TOL); `name` (a non-empty
    string) starts the error message. Returns p as a float array."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty string, got {name!r}")
    p = _real_array(name, p, None, allow_exact=True)
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"axis: must be an integer, got {axis!r}")
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"{name}: has no axis {axis} (axis), its shape is {p.shape}")
    p = p.astype(float)
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
    """pi: an (n_states, n_actions) matrix with rows on the simplex (floats, or exact numbers);
    returned as an array of its own dtype."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty string, got {name!r}")
    n_states, n_actions = (
        _checks.positive_int("n_states", n_states),
        _checks.positive_int("n_actions", n_actions),
    )
    pi = _real_array(name, pi, 2, allow_exact=True)
    if pi.shape != (n_states, n_actions):
        raise ValueError(
            f"{name}: expected an (S, A) = ({n_states}, {n_actions}) matrix, got {pi.shape}"
        )
    check_probabilities(name, pi, axis=1)
    return pi


# Private checks shared by the modules of impl/rl (each message starts with the argument's name).


def _real_array(name, x, ndim, *, kinds="fiu", finite=True, allow_exact=False, nonempty=True):
    """`x` as a numpy array of real numbers with `ndim` dimensions (an int, a tuple of allowed
    ones, or None for any number >= 1), non-empty if `nonempty`, and if `finite` without nan or
    inf. `allow_exact`
    also accepts an object array of real numbers (e.g. Fractions)."""
    if x is None or isinstance(x, str | bytes | dict):
        raise TypeError(f"{name}: expected an array of numbers, got {type(x).__name__}")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: not a rectangular array of numbers") from None
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if (allowed is not None and a.ndim not in allowed) or a.ndim == 0:
        raise ValueError(f"{name}: expected {ndim or '>= 1'} dimensions, got shape {a.shape}")
    if nonempty and a.size == 0:
        raise ValueError(f"{name}: empty, shape {a.shape}")
    if a.dtype.kind == "O" and allow_exact:
        if not all(isinstance(e, numbers.Real) and not isinstance(e, bool) for e in a.flat):
            raise TypeError(f"{name}: expected real numbers")
        if finite and not all(math.isfinite(e) for e in a.flat):
            raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
        return a
    if a.dtype.kind not in kinds:
        raise TypeError(f"{name}: expected an array of dtype kind {kinds!r}, got {a.dtype}")
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return a


def _vector(name, v, n):
    """Finite real values, shape (n,), returned as a float array."""
    if type(v) is not np.ndarray or v.dtype != np.float64:  # the solvers' loops skip this
        v = _real_array(name, v, 1, nonempty=False).astype(float)
    if v.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), one value per state, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return v


def _actions(name, actions, n_states, n_actions):
    """One action index in [0, n_actions) per state: an integer array of shape (n_states,)."""
    rule = f"{name}: expected {n_states} action indices in [0, {n_actions - 1}]"
    try:
        a = np.asarray(actions)
    except (ValueError, TypeError):
        raise ValueError(f"{rule}, got {actions!r:.60}") from None
    if a.shape != (n_states,) or a.dtype.kind not in "iu" or np.any((a < 0) | (a >= n_actions)):
        raise ValueError(f"{rule}, got {actions!r:.60}")
    return a


def _check_mdp(mdp, name="mdp"):
    if not isinstance(mdp, MDP):
        raise TypeError(f"{name}: expected an impl.rl.mdp.MDP, got {type(mdp).__name__}")
    return mdp
