"""Rejected variants of the tabular-RL claims RL-01..RL-08 (seed article 10, Zhao ch. 1-4).

Each patches the `rl` family adapter (properties/adapters/rl.py: what the properties call as
`rl.*`), a module function that the implementation calls through its module, or the grid
world's model (GridWorld.mdp, which every property builds its MDP with).
"""

import numpy as np

from impl.rl import bellman, gridworld
from impl.rl import dynamic_programming as dp
from properties.adapters import rl
from properties.variants import variant


def _adapter(mp, name, fn):
    mp.setattr(rl.Reference, name, staticmethod(fn))


def _next_value(mdp, v):
    """sum_k p_k v(s'_k), shape (S, A)."""
    return np.einsum("sak,sak->sa", mdp.prob, np.asarray(v, dtype=float)[mdp.next_state])


# RL-01: closed form and iterative evaluation


@variant(
    "RL-01",
    name="evaluate-transposed-transition-matrix",
    why="closed form (I - gamma P_pi^T)^-1 r_pi: P_pi read column-wise (p(s|s') for p(s'|s))",
)
def _(mp):
    def evaluate(mdp, pi):
        P = mdp.policy_matrix(pi).toarray()
        return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P.T, mdp.policy_reward(pi))

    _adapter(mp, "evaluate", evaluate)


@variant(
    "RL-01",
    name="iterative-evaluation-gamma-squared",
    why="iterative evaluation v_{k+1} = r_pi + gamma^2 P_pi v_k (the discount applied twice)",
)
def _(mp):
    def evaluate_iterative(mdp, pi, sweeps, v0=None):
        v = np.zeros(mdp.n_states) if v0 is None else np.asarray(v0, dtype=float)
        history = [v]
        for _ in range(sweeps):
            q = mdp.expected_reward() + mdp.gamma**2 * _next_value(mdp, v)
            v = np.sum(pi * q, axis=1)
            history.append(v)
        return np.array(history)

    _adapter(mp, "evaluate_iterative", evaluate_iterative)


@variant(
    "RL-01",
    "RL-08",
    name="evaluate-gamma-applied-twice",
    why="closed form (I - gamma^2 P_pi)^-1 r_pi: v(target) = r / (1 - gamma^2) for staying",
)
def _(mp):
    def evaluate(mdp, pi):
        P = mdp.policy_matrix(pi).toarray()
        return np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma**2 * P, mdp.policy_reward(pi))

    _adapter(mp, "evaluate", evaluate)


# RL-02: v from q, q from v


@variant(
    "RL-02",
    name="q-backup-discounts-the-reward",
    why="q(s, a) = gamma (r(s, a) + sum p v(s')): the immediate reward discounted too",
)
def _(mp):
    _adapter(
        mp, "q_from_v", lambda mdp, v: mdp.gamma * (mdp.expected_reward() + _next_value(mdp, v))
    )


@variant(
    "RL-02",
    name="v-from-q-unweighted-mean",
    why="v(s) = mean_a q(s, a): the policy's weights pi(a|s) dropped",
)
def _(mp):
    _adapter(mp, "v_from_q", lambda pi, q: np.mean(np.asarray(q), axis=1))


# RL-03: the optimality operator and value iteration


@variant(
    "RL-03",
    "RL-04",
    name="value-iteration-returns-zeros",
    why="value iteration returning v = 0 (its initial value) and its greedy actions",
)
def _(mp):
    def value_iteration(mdp, v0=None, tol=1e-10, max_iter=100_000):
        v = np.zeros(mdp.n_states)
        return dp.Result(v, np.argmax(mdp.backup(v), axis=1), 1, [0.0])

    _adapter(mp, "value_iteration", value_iteration)


@variant(
    "RL-03",
    name="value-iteration-one-sweep",
    why="value iteration stopped after one sweep whatever its tolerance (v_1 = T v_0)",
)
def _(mp):
    def value_iteration(mdp, v0=None, tol=1e-10, max_iter=100_000):
        return dp.value_iteration(mdp, v0=v0, tol=tol, max_iter=1)

    _adapter(mp, "value_iteration", value_iteration)


@variant(
    "RL-03",
    name="optimality-operator-gamma-squared",
    why="T v = max_a [r + gamma^2 P v]: still a contraction, with the wrong fixed point",
)
def _(mp):
    def optimality_operator(mdp, v):
        q = mdp.expected_reward() + mdp.gamma**2 * _next_value(mdp, v)
        actions = q.argmax(axis=1)
        return q[np.arange(mdp.n_states), actions], actions

    mp.setattr(bellman, "optimality_operator", optimality_operator)  # what value_iteration calls
    _adapter(mp, "optimality_operator", optimality_operator)


# RL-04: greedy policy of q*, VI = PI = truncated PI


@variant(
    "RL-04",
    name="truncated-pi-returns-random-vector",
    why="truncated policy iteration returning a random vector instead of its last value",
)
def _(mp):
    def truncated_policy_iteration(mdp, j, v0=None, tol=1e-10, max_iter=100_000):
        result = dp.truncated_policy_iteration(mdp, j, v0=v0, tol=tol, max_iter=max_iter)
        rng = np.random.default_rng(0)
        return dp.Result(rng.standard_normal(mdp.n_states), result.actions, result.iterations)

    _adapter(mp, "truncated_policy_iteration", truncated_policy_iteration)


@variant(
    "RL-04",
    name="greedy-by-next-state-value",
    why="q(s, a) = gamma sum p v(s') (the reward term dropped): greedy towards the best next state",
)
def _(mp):
    _adapter(mp, "q_from_v", lambda mdp, v: mdp.gamma * _next_value(mdp, v))


# RL-05: policy iteration


@variant(
    "RL-04",
    "RL-05",
    "RL-07",
    name="policy-iteration-one-iteration",
    why="policy iteration stopped after one evaluation and improvement (max_iter = 1)",
)
def _(mp):
    def policy_iteration(mdp, actions0=None, max_iter=10_000):
        return dp.policy_iteration(mdp, actions0=actions0, max_iter=1)

    _adapter(mp, "policy_iteration", policy_iteration)


@variant(
    "RL-05",
    "RL-07",
    name="policy-iteration-stops-before-improving",
    why="the stop test made before the improvement: the initial policy and its value returned",
)
def _(mp):
    def policy_iteration(mdp, actions0=None, max_iter=10_000):
        actions = np.zeros(mdp.n_states, dtype=int) if actions0 is None else np.asarray(actions0)
        v = bellman.evaluate(mdp, np.eye(mdp.n_actions)[actions])
        return dp.Result(v, actions, 1, [actions])

    _adapter(mp, "policy_iteration", policy_iteration)


@variant(
    "RL-05",
    name="policy-iteration-one-sweep-evaluation",
    why="policy iteration whose evaluation is one sweep from v = 0 (v_pi taken as r_pi)",
)
def _(mp):
    mp.setattr(bellman, "evaluate", lambda mdp, pi: mdp.policy_reward(pi))


# RL-06: affine rewards


@variant(
    "RL-06",
    name="policy-iteration-on-clipped-rewards",
    why="rewards clipped to [-1, 1] before solving (DQN-style), which is not affine",
)
def _(mp):
    def policy_iteration(mdp, actions0=None, max_iter=10_000):
        clipped = type(mdp)(mdp.next_state, mdp.prob, np.clip(mdp.reward, -1, 1), mdp.gamma)
        return dp.policy_iteration(clipped, actions0=actions0, max_iter=max_iter)

    _adapter(mp, "policy_iteration", policy_iteration)


# RL-07 and RL-08: the book's grid world


def _grid(mp, change):
    """Patch GridWorld.mdp: the correct model's arrays, then change(world, next_state, reward)."""
    correct = gridworld.GridWorld.mdp

    def mdp(world):
        m = correct(world)
        ns, r = m.next_state.copy(), m.reward.copy()
        change(world, ns[:, :, 0], r[:, :, 0])
        return type(m)(ns, m.prob, r, m.gamma)

    mp.setattr(gridworld.GridWorld, "mdp", mdp)


def _geometry(world):
    """Per (s, a): the cell a move aims at (row, col, 0-indexed) and whether it is off the grid."""
    rows, cols = np.divmod(np.arange(world.n_states), world.n_cols)
    moves = np.array([gridworld.MOVES[a] for a in world.actions])
    r2, c2 = rows[:, None] + moves[:, 0], cols[:, None] + moves[:, 1]
    off = (r2 < 0) | (r2 >= world.n_rows) | (c2 < 0) | (c2 >= world.n_cols)
    return r2, c2, off


@variant(
    "RL-07",
    name="bump-off-grid-gets-r-forbidden",
    why="a move off the grid rewarded r_forbidden (the book's -1 hides it): r_boundary unused",
)
def _(mp):
    def change(world, ns, r):
        r[_geometry(world)[2]] = world.r_forbidden

    _grid(mp, change)


@variant(
    "RL-07",
    name="bump-off-grid-is-free",
    why="a move off the grid leaves the agent in place with reward 0 (as staying does)",
)
def _(mp):
    def change(world, ns, r):
        r[_geometry(world)[2]] = 0.0

    _grid(mp, change)


@variant(
    "RL-07",
    name="bump-from-forbidden-cell-gets-r-forbidden",
    why="a move off the grid from a forbidden cell rewarded r_forbidden, not r_boundary",
)
def _(mp):
    def change(world, ns, r):
        off = _geometry(world)[2]
        r[off & world.is_forbidden()[:, None]] = world.r_forbidden

    _grid(mp, change)


@variant(
    "RL-07",
    name="off-grid-moves-wrap-around",
    why="a move off the grid wraps to the opposite edge (a torus) instead of staying in place",
)
def _(mp):
    def change(world, ns, r):
        r2, c2, off = _geometry(world)
        wrapped = (r2 % world.n_rows) * world.n_cols + c2 % world.n_cols
        target = world.state(world.target)
        reward = np.where(world.is_forbidden()[wrapped], world.r_forbidden, 0.0)
        reward = np.where(wrapped == target, world.r_target, reward)
        ns[off], r[off] = wrapped[off], reward[off]

    _grid(mp, change)


@variant(
    "RL-07",
    name="forbidden-cells-are-walls",
    why="forbidden cells cannot be entered (the book's helper code): the move bounces back",
)
def _(mp):
    def change(world, ns, r):
        into = world.is_forbidden()[ns] & (ns != np.arange(world.n_states)[:, None])
        ns[into] = np.broadcast_to(np.arange(world.n_states)[:, None], ns.shape)[into]

    _grid(mp, change)


@variant(
    "RL-07",
    "RL-08",
    name="target-is-terminal",
    why="the target absorbing with reward 0 after it is entered (the helper code's terminal)",
)
def _(mp):
    def change(world, ns, r):
        t = world.state(world.target)
        ns[t], r[t] = t, 0.0

    _grid(mp, change)
