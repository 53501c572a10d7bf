"""RL-07 and MC-03: the book's worked examples on its grid world (impl/rl/gridworld.py).

The grid world's rule (../shared/CLAIMS.md) is written here once more, independently of impl
(`rule`, `rule_model`): every (s, a) of impl's model is checked against it on random grid worlds
with distinct r_boundary, r_forbidden and r_target, and it is the model of the references
(properties/rl_bounds.py: v* by a linear programme, v_pi by a dense solve) that the values of
impl are compared with. Each solver is held to the bound of its own stopping rule.

Published numbers: the 5x5 optimal values for (gamma = 0.9, r_forbidden = -1) and
(gamma = 0.9, r_forbidden = -10), printed in the book to one decimal. The tables for gamma = 0.5
and gamma = 0 are not in ../shared (CLAIMS.md, CLAIMS-FULLTEXT.md): the numbers below are the
book's figures as transcribed, to one decimal, in a public reimplementation's tests, not checked
against the book itself; they agree with the rule's exact values to one decimal. The other
numbers (2x2, 1x2, 3x3) are the book's worked examples, recomputed by hand from its model and
written here as exact expressions in gamma.
"""

from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from impl.rl import gridworld as gw
from impl.rl import monte_carlo, policy
from properties.catalogue import claim
from properties.evidence import current, figure
from properties.rl_bounds import (
    U,
    lu_noise,
    policy_iteration_bound,
    reference_optimum,
    reference_policy_value,
    reference_q,
)
from properties.strategies import floats
from properties.tolerances import assert_close

BOOK_5X5 = {  # the book's optimal state values, one decimal
    (0.9, -1.0): [[5.8, 5.6, 6.2, 6.5, 5.8], [6.5, 7.2, 8.0, 7.2, 6.5], [7.2, 8.0, 10.0, 8.0, 7.2],
                  [8.0, 10.0, 10.0, 10.0, 8.0], [7.2, 9.0, 10.0, 9.0, 8.1]],
    (0.9, -10.0): [[3.5, 3.9, 4.3, 4.8, 5.3], [3.1, 3.5, 4.8, 5.3, 5.9], [2.8, 2.5, 10.0, 5.9, 6.6],
                   [2.5, 10.0, 10.0, 10.0, 7.3], [2.3, 9.0, 10.0, 9.0, 8.1]],
    # transcribed (see the module docstring): 0.25 at (4, 5) is printed 0.2
    (0.5, -1.0): [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.1], [0.0, 0.0, 2.0, 0.1, 0.1],
                  [0.0, 2.0, 2.0, 2.0, 0.2], [0.0, 1.0, 2.0, 1.0, 0.5]],
    (0.0, -1.0): [[0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0],
                  [0.0, 1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]],
}  # fmt: skip
SETTINGS = [(0.9, -1.0), (0.5, -1.0), (0.0, -1.0), (0.9, -10.0)]
UP, RIGHT, DOWN, LEFT, STAY = range(5)
BOOK_MOVES = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1), "stay": (0, 0)}


def rule(world, cell, action):
    """(next cell, reward) of `action` in `cell` by the book's rule: a move off the grid leaves
    the agent in place with r_boundary (from a forbidden cell too: the move is off the grid);
    otherwise r_forbidden if the next cell is forbidden (entering or staying), r_target if it is
    the target (entering or staying), 0 for every other transition."""
    (row, col), (dr, dc) = cell, BOOK_MOVES[action]
    nxt = (row + dr, col + dc)
    if not (1 <= nxt[0] <= world.n_rows and 1 <= nxt[1] <= world.n_cols):
        return cell, world.r_boundary
    if nxt in world.forbidden:
        return nxt, world.r_forbidden
    if nxt == world.target:
        return nxt, world.r_target
    return nxt, 0.0


def rule_model(world):
    """The rule as outcome arrays (S, A, 1), states numbered row by row from the top left (the
    book's s_1, s_2, ..., from 0): the model of the references."""
    cells = [(r, c) for r in range(1, world.n_rows + 1) for c in range(1, world.n_cols + 1)]
    S, A = len(cells), len(world.actions)
    next_state, reward = np.zeros((S, A, 1), dtype=int), np.zeros((S, A, 1))
    for s, cell in enumerate(cells):
        for a, name in enumerate(world.actions):
            nxt, r = rule(world, cell, name)
            next_state[s, a, 0], reward[s, a, 0] = cells.index(nxt), r
    return SimpleNamespace(next_state=next_state, prob=np.ones((S, A, 1)), reward=reward,
                           gamma=world.gamma, n_states=S, n_actions=A)  # fmt: skip


REWARDS = [-10.0, -3.0, -1.0, -0.5, 0.5, 1.0, 2.0, 5.0]


@st.composite
def distinct_reward_worlds(draw, max_side=5):
    """Random grid worlds with r_boundary, r_forbidden, r_target distinct and non-zero, and the
    actions in a random order and subset."""
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    cells = [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]
    target = draw(st.sampled_from(cells))
    others = [c for c in cells if c != target]
    forbidden = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
    r_b, r_f, r_t = draw(st.lists(st.sampled_from(REWARDS), min_size=3, max_size=3, unique=True))
    actions = tuple(draw(st.permutations(gw.ACTIONS))[: draw(st.integers(1, 5))])
    return gw.GridWorld(rows, cols, target, forbidden, r_boundary=r_b, r_forbidden=r_f, r_target=r_t,
                        gamma=draw(floats(0.0, 0.95)), actions=actions)  # fmt: skip


CORNER = gw.GridWorld(2, 3, (2, 3), [(1, 1), (2, 2)], r_boundary=-3.0, r_forbidden=-10.0,
                      r_target=2.0, gamma=0.5, actions=("stay", "left", "up", "down", "right"))  # fmt: skip


@claim("RL-07")
@example(world=CORNER)  # bumps off the grid from the forbidden corner (1, 1) and edge cell (2, 2)
@given(world=distinct_reward_worlds())
def test_grid_world_model_follows_the_books_rule(world):
    """Next state and reward of every (s, a) against the rule, exactly (one outcome of
    probability 1 each: the sums are exact)."""
    mdp = world.mdp()
    ref = rule_model(world)
    S, A = ref.n_states, ref.n_actions
    assert (mdp.n_states, mdp.n_actions, mdp.gamma) == (S, A, world.gamma)
    P = np.zeros((S, A, S))
    s, a = np.indices(mdp.next_state.shape[:2])
    for k in range(mdp.next_state.shape[2]):
        P[s, a, mdp.next_state[:, :, k]] += mdp.prob[:, :, k]
    np.testing.assert_array_equal(P, np.eye(S)[ref.next_state[:, :, 0]], err_msg="next states")
    np.testing.assert_array_equal(np.sum(mdp.prob * mdp.reward, axis=2), ref.reward[:, :, 0],
                                  err_msg="rewards r(s, a)")  # fmt: skip
    current().summary = (
        "every (s, a): next state and reward by the rule, r_boundary != r_forbidden != r_target"
    )


def optimal_choices(mdp, v, delta):
    """Per state, every action within 2 delta of the best by q = one backup of v, where q is
    within delta of q*: a superset of the optimal actions."""
    q = mdp.backup(v)
    return [set(np.flatnonzero(row >= row.max() - 2 * delta)) for row in q]


@claim("RL-07")
@pytest.mark.parametrize("gamma, r_forbidden", SETTINGS)
def test_book_5x5_optimal_values_and_policies(rl, gamma, r_forbidden):
    world = gw.example_5x5(gamma, r_forbidden)
    mdp = world.mdp()
    v_star, eps = reference_optimum(rule_model(world))
    book = np.array(BOOK_5X5[gamma, r_forbidden]).ravel()
    # printed to one decimal: |v* - book| <= 0.05 (the rule against the book)
    assert_close(
        v_star, book, ulps=0, abs_floor=0.05 + eps, what="v* of the rule - the book's table"
    )
    result = rl.policy_iteration(mdp)
    bound = policy_iteration_bound(mdp, v_star)  # PI's stopping rule, computed before its run
    assert_close(result.v, v_star, ulps=0, abs_floor=bound + eps, what="policy iteration's v - v*")
    assert_close(result.v, book, ulps=0, abs_floor=0.05 + bound,
                 what="policy iteration's v - the book's table")  # fmt: skip
    # one backup of v: within gamma bound (+ its rounding, 4 terms of at most 20 u) of q*
    delta = gamma * bound + 8 * U * (1 + 10 + np.abs(v_star).max())
    forbidden = world.is_forbidden()
    choices = optimal_choices(mdp, result.v, delta)
    enters = [
        all(forbidden[mdp.next_state[s, a, 0]] for a in choices[s])
        for s in range(mdp.n_states) if not forbidden[s]
    ]  # fmt: skip
    if gamma == 0.9 and r_forbidden == -1.0:
        assert any(enters), "at gamma = 0.9 some optimal path must pass through a forbidden cell"
    if gamma == 0.5 or r_forbidden == -10.0:
        never = all(
            not forbidden[mdp.next_state[s, a, 0]]
            for s in range(mdp.n_states) if not forbidden[s] for a in choices[s]
        )  # fmt: skip
        assert never, "optimal actions must avoid forbidden cells from allowed cells"
    table = world.render_values(result.v, decimals=1 if gamma == 0.9 else 2)
    arrows = world.render_policy(result.actions)
    current().record(**{"optimal values": "\n" + table, "a greedy optimal policy": "\n" + arrows})
    current().summary = (
        f"5x5, gamma = {gamma}, r_forbidden = {r_forbidden}: v*(target) = {result.v[17]:.2f}"
    )


@claim("RL-07")
@pytest.mark.parametrize("gamma, r_forbidden", SETTINGS)
def test_q_star_and_uniform_policy_values_against_the_rule(rl, gamma, r_forbidden):
    """Values that depend on every reward of the model (the optimal values of the book do not
    see a bump off the grid): q* and the values of the uniform policy, by impl against the
    references on the rule's model."""
    world = gw.example_5x5(gamma, r_forbidden)
    mdp, ref = world.mdp(), rule_model(world)
    S, A = ref.n_states, ref.n_actions
    uniform = np.full((S, A), 1 / A)
    v_ref, eps_u = reference_policy_value(ref, uniform)
    v = rl.evaluate(mdp, uniform)
    noise = lu_noise(S, gamma, np.abs(v_ref).max() + abs(r_forbidden))  # impl's LU solve
    assert_close(v, v_ref, ulps=0, abs_floor=noise + eps_u, what="uniform policy: v - reference")
    v_star, eps = reference_optimum(ref)
    q_ref, q_rounding = reference_q(ref, v_star)
    q = rl.q_from_v(mdp, rl.policy_iteration(mdp).v)
    # each q is one backup of a v within (bound or eps) of v*, plus its rounding
    budget = gamma * (policy_iteration_bound(mdp, v_star) + eps) + 2 * q_rounding
    assert_close(q, q_ref, ulps=0, abs_floor=budget, what="q* - reference q*")
    current().record(v_uniform=np.round(v_ref, 3).reshape(5, 5).tolist())
    current().summary = (
        f"5x5 (gamma {gamma}, r_forbidden {r_forbidden}): q* and v_uniform as the rule"
    )


@claim("RL-07")
def test_book_2x2_policy_values_and_one_value_iteration_step(rl):
    g = 0.9
    world = gw.example_2x2(g)
    mdp = world.mdp()
    noise = lu_noise(4, g, 10 + 1)  # rl.evaluate's LU solve: ||v|| <= 10, max|r| = 1
    # Chapter 2: pi_1 = (s1 down, s2 down, s3 right, s4 stay) has v = (g/(1-g), 1/(1-g), 1/(1-g), 1/(1-g))
    # = (9, 10, 10, 10); pi_2 moves s1 right or down with probability 1/2 each: v(s1) = 8.5.
    pi1 = policy.deterministic(np.array([DOWN, DOWN, RIGHT, STAY]), 5)
    v1 = rl.evaluate(mdp, pi1)
    assert_close(v1, [g / (1 - g), 1 / (1 - g), 1 / (1 - g), 1 / (1 - g)], ulps=0,
                 abs_floor=noise, what="2x2: v of pi_1")  # fmt: skip
    pi2 = pi1.copy()
    pi2[0] = [0, 0.5, 0.5, 0, 0]
    v2 = rl.evaluate(mdp, pi2)
    assert_close(v2[0], 0.5 * (-1 + g * 10) + 0.5 * (g * 10), ulps=0, abs_floor=noise,
                 what="2x2: v_pi2(s1) = 8.5")  # fmt: skip
    # Chapter 4, value iteration from v_0 = 0: q_0 = r; v_1 = (0, 1, 1, 1); q_1 as below.
    q0 = rl.q_from_v(mdp, np.zeros(4))
    q0_book = [[-1, -1, 0, -1, 0], [-1, -1, 1, 0, -1], [0, 1, -1, -1, 0], [-1, -1, -1, 0, 1]]
    assert_close(q0, np.array(q0_book, float), ulps=0, what="2x2: q_0")
    v1_vi = rl.optimality_operator(mdp, np.zeros(4))[0]
    assert_close(v1_vi, [0.0, 1.0, 1.0, 1.0], ulps=0, what="2x2: v_1 = T v_0")
    q1_book = [[-1, -1 + g, g, -1, 0], [-1 + g, -1 + g, 1 + g, 0, -1 + g],
               [0, 1 + g, -1 + g, -1 + g, g], [-1 + g, -1 + g, -1 + g, g, 1 + g]]  # fmt: skip
    assert_close(rl.q_from_v(mdp, v1_vi), np.array(q1_book), ulps=4, scale=2.0, what="2x2: q_1")
    current().record(
        v_pi1=v1.round(3).tolist(), v_pi2_s1=round(float(v2[0]), 3), v_1=v1_vi.tolist()
    )
    current().summary = "2x2: v_pi1 = (9, 10, 10, 10), v_pi2(s1) = 8.5, one VI step q_0, v_1, q_1"


@claim("RL-07")
def test_book_1x2_policy_iteration_example(rl):
    g = 0.9
    world = gw.example_1x2(g)  # actions: left, stay, right
    mdp = world.mdp()
    pi0 = policy.deterministic(np.array([0, 0]), 3)  # both move left
    v0 = rl.evaluate(mdp, pi0)
    assert_close(v0, [-1 / (1 - g), -g / (1 - g)], ulps=0, abs_floor=lu_noise(2, g, 10 + 1),
                 what="1x2: v_pi0 = (-10, -9)")  # fmt: skip
    q0 = rl.q_from_v(mdp, v0)
    book = [[-1 + g * v0[0], g * v0[0], 1 + g * v0[1]], [g * v0[0], 1 + g * v0[1], -1 + g * v0[1]]]
    assert_close(
        q0, np.array(book), ulps=8, scale=10.0, what="1x2: q_pi0 (-10, -9, -7.1 / -9, -7.1, -9.1)"
    )
    result = rl.policy_iteration(mdp, actions0=np.array([0, 0]))
    assert list(result.actions) == [2, 1], "pi_1 = (right, stay)"
    v_star = np.array([1 / (1 - g)] * 2)
    assert_close(result.v, v_star, ulps=0, abs_floor=policy_iteration_bound(mdp, v_star),
                 what="1x2: v* = (10, 10)")  # fmt: skip
    current().record(
        v_pi0=v0.round(3).tolist(),
        q_pi0=np.round(q0, 3).tolist(),
        v_star=result.v.round(3).tolist(),
    )
    current().summary = (
        "1x2: v_pi0 = (-10, -9), q_pi0 rows (-10, -9, -7.1), (-9, -7.1, -9.1); PI -> (right, stay)"
    )


@claim("RL-07")
def test_book_3x3_returns_and_mc_basic_action_values(rl):
    g, L = 0.9, 300
    world = gw.example_3x3(g)
    mdp = world.mdp()
    # Chapter 1: s1 -right-> s2 -down-> s5 -down-> s8 -right-> s9, then stay: g^3/(1-g) = 7.29.
    rewards = np.concatenate([[0.0, 0.0, 0.0], np.ones(L - 3)])
    assert_close(rl.returns(rewards, g)[0], g**3 / (1 - g), ulps=0, abs_floor=g**L / (1 - g) + 1e-12,
                 what="3x3: return of the chapter-1 trajectory")  # fmt: skip
    # Chapter 5, MC Basic from pi_0 (s1 up, s2 down, s4 right, s5 down, s8 right, s9 stay):
    # q(s1, .) = (-1/(1-g), g^3/(1-g), g^3/(1-g), -1/(1-g), -g/(1-g)) = (-10, 7.29, 7.29, -10, -9)
    actions0 = np.array([UP, DOWN, STAY, RIGHT, DOWN, STAY, STAY, RIGHT, STAY])
    result = rl.mc_basic(mdp, 1, L, np.random.default_rng(0), actions0=actions0, max_iter=1)
    book = [-1 / (1 - g), g**3 / (1 - g), g**3 / (1 - g), -1 / (1 - g), -g / (1 - g)]
    assert_close(
        result.q[0], book, ulps=0, abs_floor=g**L / (1 - g) + 1e-12, what="3x3: MC Basic q(s1, .)"
    )
    assert result.actions[0] in (RIGHT, DOWN), "policy improvement at s1 picks a2 or a3"
    current().record(q_s1=np.round(result.q[0], 3).tolist())
    current().summary = (
        "3x3: trajectory return g^3/(1-g) = 7.29; MC Basic q(s1,.) = (-10, 7.29, 7.29, -10, -9)"
    )


def distance_to_target(world, mdp):
    """Moves needed to enter the target, passing only through allowed cells (BFS)."""
    forbidden, target = world.is_forbidden(), world.state(world.target)
    d = np.full(mdp.n_states, np.inf)
    d[target] = 0
    queue = deque([target])
    while queue:
        s2 = queue.popleft()
        if s2 != target and forbidden[s2]:
            continue
        for s in range(mdp.n_states):
            if d[s] == np.inf and any(
                mdp.next_state[s, a, 0] == s2 != s for a in range(mdp.n_actions)
            ):
                d[s] = d[s2] + 1
                queue.append(s)
    return d


LENGTHS = (1, 2, 3, 4, 14, 15, 30, 100)


@claim("MC-03")
def test_episode_length_decides_which_states_see_the_reward(rl):
    """5x5, r_forbidden = -10, MC Basic with one episode of length L per pair: the estimated
    value of s is positive iff the target can be entered within L moves through allowed cells,
    and 0 otherwise; from L = max distance (15) on, every state's value is right (positive), and
    at L = 100 it is v* up to the truncation gamma^100 / (1 - gamma)."""
    world = gw.example_5x5(0.9, -10.0)
    mdp = world.mdp()
    d = distance_to_target(world, mdp)
    estimates = {}
    for L in LENGTHS:
        q = rl.mc_basic(mdp, 1, L, np.random.default_rng(0)).q
        v = q.max(axis=1)
        estimates[L] = v
        assert np.array_equal(v > 0, d <= L), (
            f"L = {L}: positive values where the target is within L moves"
        )
        assert np.all(v[d > L] == 0.0)
    assert d.max() == 15
    v_star, eps = reference_optimum(mdp)  # the oracle (rl_bounds), not the algorithm under test
    assert_close(estimates[100], v_star, ulps=0, abs_floor=0.9**100 / 0.1 * 10 + 1e-9 + eps,
                 what="L = 100: v - v*")  # fmt: skip
    current().record(**{f"zero cells at L = {L}": int(np.sum(estimates[L] == 0)) for L in LENGTHS})

    def draw(fig):
        axes = fig.subplots(2, 4)
        for ax, L in zip(axes.ravel(), LENGTHS, strict=True):
            ax.imshow(estimates[L].reshape(5, 5), cmap="viridis", vmin=0, vmax=10)
            for s in range(25):
                ax.text(s % 5, s // 5, f"{estimates[L][s]:.1f}", ha="center", va="center", fontsize=6,
                        color="w" if estimates[L][s] < 5 else "k")  # fmt: skip
            ax.set_title(f"length {L}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("MC Basic on the 5x5 grid (r_forbidden = -10): estimated v by episode length")

    figure("mc03_episode_length", draw, size=(9, 5))
    current().summary = "v > 0 exactly where the target is within L moves; all positive from L = 15"


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: gw.GridWorld(3, 3, (4, 1)), "target"),
        (lambda: gw.GridWorld(3, 3, (1, 1), [(1, 1)]), "target"),
        (lambda: gw.GridWorld(3, 3, (1, 1), [(0, 2)]), "forbidden"),
        (lambda: gw.GridWorld(3, 3, "a"), "target"),
        (lambda: gw.GridWorld(0, 3, (1, 1)), "n_rows"),
        (lambda: gw.GridWorld(3, 3, (1, 1), gamma=1.0), "gamma"),
        (lambda: gw.GridWorld(3, 3, (1, 1), gamma=-0.1), "gamma"),
        (lambda: gw.GridWorld(3, 3, (1, 1), r_target=np.nan), "r_target"),
        (lambda: gw.GridWorld(3, 3, (1, 1), actions=("up", "jump")), "actions"),
    ],
)
def test_bad_layouts_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        make()


def test_rendering_of_values_and_policies():
    world = gw.example_2x2()
    assert world.render_values(np.array([9.0, 10.0, 10.0, 10.0])) == "  9.0 10.0*\n 10.0 10.0T"
    assert world.render_policy([DOWN, DOWN, RIGHT, STAY]) == " ↓ [↓]\n →  o "
    assert world.state((2, 1)) == 2 and world.cell(2) == (2, 1)


def test_named_examples_take_their_gamma_and_the_books_forbidden_cells():
    assert gw.example_2x2(gamma=0.5).mdp().gamma == 0.5
    assert gw.example_3x3(gamma=0.5).mdp().gamma == 0.5
    assert set(gw.example_2x2().forbidden) == {(1, 2)}
    assert set(gw.example_3x3().forbidden) == {(2, 3), (3, 1)}


def test_every_visit_limit_of_one_step_episodes_is_the_reward_and_needs_determinism():
    """With length 1 each start (s, a) is its only visit and its return is r(s, a); an MDP with
    outcomes of probability 0 (padding) is still deterministic, one with p = 1/2 is not."""
    from impl.rl.mdp import MDP

    mdp = gw.example_2x2().mdp()
    actions = np.zeros(mdp.n_states, dtype=int)
    np.testing.assert_array_equal(
        monte_carlo.every_visit_limit(mdp, actions, 1), mdp.expected_reward()
    )
    S, A = 3, 2
    next_state = np.stack([np.full((S, A), 1), np.zeros((S, A), dtype=int)], axis=2)
    padded = MDP(
        next_state, np.stack([np.ones((S, A)), np.zeros((S, A))], axis=2), np.ones((S, A, 2)), 0.5
    )
    monte_carlo.every_visit_limit(padded, np.zeros(S, dtype=int), 2)
    coin = MDP(next_state, np.full((S, A, 2), 0.5), np.ones((S, A, 2)), 0.5)
    with pytest.raises(ValueError, match="needs a deterministic MDP"):
        monte_carlo.every_visit_limit(coin, np.zeros(S, dtype=int), 2)


def test_exploring_starts_cycle_through_every_pair_in_fresh_orders(monkeypatch):
    """(3): each block of S x A episodes starts once from every (s, a), in a new random order."""
    mdp = gw.example_2x2().mdp()
    pairs = mdp.n_states * mdp.n_actions
    seen = []
    episode = monte_carlo.Sampler.episode

    def record(self, pi, s0, a0, length):
        seen.append((int(s0), int(a0)))
        return episode(self, pi, s0, a0, length)

    monkeypatch.setattr(monte_carlo.Sampler, "episode", record)
    monte_carlo.mc_exploring_starts(mdp, 3 * pairs, 3, np.random.default_rng(0))
    blocks = [seen[i * pairs : (i + 1) * pairs] for i in range(3)]
    everything = {(s, a) for s in range(mdp.n_states) for a in range(mdp.n_actions)}
    assert all(set(b) == everything for b in blocks)
    assert blocks[0] != blocks[1] != blocks[2]  # equal orders: chance 1/20! each


def test_grid_sizes_must_be_integers_and_forbidden_is_a_boolean_mask():
    for bad in (2.5, 0, True):
        with pytest.raises(ValueError, match="^n_rows: "):
            gw.GridWorld(bad, 2, (1, 1))
        with pytest.raises(ValueError, match="^n_cols: "):
            gw.GridWorld(2, bad, (1, 1))
    mask = gw.example_2x2().is_forbidden()
    assert mask.dtype == bool and mask.tolist() == [False, True, False, False]
