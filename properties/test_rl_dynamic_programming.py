"""RL-03 (value iteration), RL-04, RL-05, RL-06: value, policy and truncated policy iteration
(impl/rl/dynamic_programming.py). Values are compared, never argmax actions (ties); every
tolerance is a contraction bound of properties/rl_bounds.py."""

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from impl.rl import bellman, policy
from impl.rl.gridworld import example_5x5
from impl.rl.mdp import MDP
from properties.catalogue import claim
from properties.evidence import current
from properties.rl_bounds import U, optimal_value_bound, policy_value_bound
from properties.strategies import floats, grid_worlds, random_mdps, seeds
from properties.tolerances import assert_close

models = st.one_of(random_mdps(), grid_worlds())


def optimal(rl, mdp):
    """v* by policy iteration, with its error bound."""
    v = rl.policy_iteration(mdp).v
    return v, optimal_value_bound(mdp, v)


def value_of(mdp, actions):
    pi = policy.deterministic(np.asarray(actions), mdp.n_actions)
    v = bellman.evaluate(mdp, pi)
    return v, policy_value_bound(mdp, pi, v)


@claim("RL-03")
@given(model=models, seed=seeds, scale=floats(0.0, 100.0))
def test_value_iteration_converges_within_the_contraction_bound(rl, model, seed, scale):
    mdp = model.mdp()
    v_star, eps = optimal(rl, mdp)
    v0 = scale * seed.numpy().standard_normal(mdp.n_states)
    v, distances = v0, []
    v1 = rl.optimality_operator(mdp, v0)[0]
    for _ in range(40):  # v_k = T^k v_0
        distances.append(np.abs(v - v_star).max())
        v = rl.optimality_operator(mdp, v)[0]
    k = np.arange(40)
    delta = (
        (mdp.next_state.shape[2] + 3)
        * U
        * (np.abs(mdp.reward).max() + max(np.abs(v0).max(), np.abs(v_star).max()))
    )
    bound = mdp.gamma**k / (1 - mdp.gamma) * np.abs(v1 - v0).max() + eps + delta / (1 - mdp.gamma)
    assert_close(np.array(distances), np.zeros(40), ulps=0, abs_floor=bound,
                 what="||v_k - v*|| vs gamma^k/(1-gamma) ||v_1 - v_0||")  # fmt: skip
    # The stopping rule: after a sweep that moved v by <= tol, ||v - v*|| <= gamma tol / (1 - gamma).
    tol = 1e-9 * max(1.0, np.abs(v_star).max())
    result = rl.value_iteration(mdp, v0=v0, tol=tol)
    stop_bound = mdp.gamma * tol / (1 - mdp.gamma) + eps + delta / (1 - mdp.gamma)
    assert_close(result.v, v_star, ulps=0, abs_floor=stop_bound, what="value_iteration's v - v*")
    current().summary = (
        "||v_k - v*|| <= gamma^k/(1-gamma) ||v_1 - v_0||, and the stopping rule's bound holds"
    )


@claim("RL-04")
@given(model=models)
def test_greedy_policy_of_q_star_is_optimal_and_all_three_methods_agree(rl, model):
    mdp = model.mdp()
    v_star, eps = optimal(rl, mdp)
    q_star = rl.q_from_v(mdp, v_star)
    # An action greedy for an eps-accurate q* loses at most 2 gamma eps per step: the greedy
    # policy's value is within 2 gamma eps / (1 - gamma) of v*.
    v_greedy, eps_g = value_of(mdp, policy.greedy_actions(q_star))
    assert_close(v_greedy, v_star, ulps=0, abs_floor=2 * mdp.gamma * eps / (1 - mdp.gamma) + eps + eps_g,
                 what="v of greedy(q*) - v*")  # fmt: skip
    tol = 1e-9 * max(1.0, np.abs(v_star).max())
    for name, result in [
        ("value iteration", rl.value_iteration(mdp, tol=tol)),
        *[
            (f"truncated PI, j = {j}", rl.truncated_policy_iteration(mdp, j, tol=tol))
            for j in (1, 3, 10)
        ],
    ]:
        # both stop after a move <= tol: ||v - v*|| <= gamma tol / (1 - gamma) (+ rounding)
        bound = mdp.gamma * tol / (1 - mdp.gamma) + eps + optimal_value_bound(mdp, result.v)
        assert_close(result.v, v_star, ulps=0, abs_floor=bound, what=f"{name}: v - v*")
    current().summary = (
        "greedy(q*) is optimal; VI, PI and truncated PI (j = 1, 3, 10) reach the same v*"
    )


@claim("RL-05")
@given(model=models)
def test_policy_iteration_improves_monotonically_and_stops(rl, model):
    mdp = model.mdp()
    result = rl.policy_iteration(mdp)
    assert result.history, "policy_iteration must report its sequence of policies"
    values = [value_of(mdp, actions) for actions in result.history]
    for (v0, e0), (v1, e1) in zip(values, values[1:], strict=False):
        assert np.all(v1 >= v0 - e0 - e1), "v_{pi_{k+1}} >= v_{pi_k} violated"
        assert np.any(v1 > v0 + e0 + e1), (
            "a policy change without strict improvement (cycling risk)"
        )
    assert result.iterations < 10_000 and result.iterations <= mdp.n_actions**mdp.n_states
    final = policy.deterministic(result.actions, mdp.n_actions)
    v_final = bellman.evaluate(mdp, final)
    assert_close(v_final, optimal(rl, mdp)[0], ulps=0,
                 abs_floor=2 * optimal_value_bound(mdp, v_final) + policy_value_bound(mdp, final, v_final),
                 what="PI's final policy value - v*")  # fmt: skip
    current().worst("largest number of PI iterations", result.iterations)
    current().summary = (
        "v_{pi_k} increases strictly until the policy is stable (finitely many steps)"
    )


@claim("RL-06")
@given(model=models, a=floats(0.1, 10.0), b=floats(-5.0, 5.0))
def test_affine_rewards_map_values_and_keep_optimal_policies(rl, model, a, b):
    mdp = model.mdp()
    shifted = MDP(mdp.next_state, mdp.prob, a * mdp.reward + b, mdp.gamma)
    v1, e1 = optimal(rl, mdp)
    v2, e2 = optimal(rl, shifted)
    expected = a * v1 + b / (1 - mdp.gamma)
    rounding = 4 * U * (np.abs(a * v1).max() + abs(b) / (1 - mdp.gamma))
    assert_close(
        v2, expected, ulps=0, abs_floor=e2 + a * e1 + rounding, what="v*' - (a v* + b/(1-gamma))"
    )
    # The transformed problem's optimal policy is optimal for the original one (by value).
    v_back, e_back = value_of(mdp, rl.policy_iteration(shifted).actions)
    assert_close(
        v_back, v1, ulps=0, abs_floor=e_back + e1 + 2 * e2 / a, what="original value of pi*' - v*"
    )
    current().summary = "r -> a r + b (a > 0): v*' = a v* + b/(1-gamma), same optimal policies"


@claim("RL-06")
def test_negative_control_negative_scale_changes_the_optimal_policy(rl):
    """a < 0 is excluded for a reason: on the book's 5x5 grid, a = -1 turns the optimal policy
    into one whose value in the original problem is far below v*."""
    world = example_5x5()
    mdp = world.mdp()
    flipped = MDP(mdp.next_state, mdp.prob, -mdp.reward, mdp.gamma)
    v_star, eps = optimal(rl, mdp)
    v_back, _ = value_of(mdp, rl.policy_iteration(flipped).actions)
    gap = float(np.max(v_star - v_back))
    assert gap > 1.0
    current().record(value_lost_with_a_minus_1=gap)


@claim("RL-04")
def test_minimal_mdp_where_argmax_actions_differ_but_values_agree(rl):
    """Why properties compare values: ties make optimal actions non-unique. Hypothesis finds a
    small MDP where two optimal policies disagree on actions."""

    def has_tie(model):
        mdp = model.mdp()
        q = rl.q_from_v(mdp, optimal(rl, mdp)[0])
        top = np.sort(q, axis=1)[:, -2:] if mdp.n_actions > 1 else None
        return top is not None and bool(np.any(np.abs(top[:, 1] - top[:, 0]) <= 1e-12))

    found = find(grid_worlds(max_side=3), has_tie)
    current().record(tie_example=repr(found))


@given(model=models, shift=floats(-10.0, 10.0))
def test_iterative_methods_report_their_run(model, shift):
    """What value iteration and truncated PI return: `iterations` sweeps (or policy updates),
    one ||v_{k+1} - v_k|| per iteration in `history`, the last <= tol and every earlier one > tol;
    `max_iter` caps the run; a start v_0 = v* + c stops at once, when gamma c <= tol; the
    actions are greedy for the returned v."""
    from impl.rl import dynamic_programming as dp

    mdp = model.mdp()
    v_star = dp.policy_iteration(mdp).v
    tol = 1e-8 * max(1.0, np.abs(v_star).max())
    runs = [dp.value_iteration(mdp, tol=tol)]
    runs += [dp.truncated_policy_iteration(mdp, j, tol=tol) for j in (1, 4)]
    # the default tol = 1e-10: ||v - v*|| <= gamma 1e-10 / (1 - gamma) (+ v*'s own error bound)
    eps = optimal_value_bound(mdp, v_star)
    for default in (dp.value_iteration(mdp), dp.truncated_policy_iteration(mdp, 2)):
        bound = mdp.gamma * 1e-10 / (1 - mdp.gamma) + 2 * eps
        assert_close(default.v, v_star, ulps=0, abs_floor=bound, what="default tol 1e-10")
    # the rule is "stop at the first move <= tol": with tol equal to an attained move, the run
    # stops there (not one sweep later, as "< tol" would)
    for rerun in (dp.value_iteration, lambda m, **kw: dp.truncated_policy_iteration(m, 4, **kw)):
        history = rerun(mdp, tol=1e-300, max_iter=3).history
        if history[-1] > 0:  # (a move of exactly 0 cannot be a tol)
            first = next(i for i, d in enumerate(history) if d <= history[-1])
            assert rerun(mdp, tol=history[-1], max_iter=10).iterations == first + 1
    for r in runs:
        assert r.iterations == len(r.history) >= 1
        assert r.history[-1] <= tol and all(d > tol for d in r.history[:-1])
        q = mdp.backup(r.v)
        chosen = q[np.arange(mdp.n_states), r.actions]
        assert np.all(chosen >= q.max(axis=1) - dp.tie_tolerance(q) - 2 * tol), "not greedy"
    for capped in (dp.value_iteration(mdp, tol=1e-300, max_iter=2),
                   dp.truncated_policy_iteration(mdp, 2, tol=1e-300, max_iter=2)):  # fmt: skip
        assert capped.iterations == len(capped.history) <= 2
        assert capped.iterations == 2 or capped.history[-1] <= 1e-300
    # T(v* + c) = v* + gamma c: from v_0 = v* + c the first sweep moves v by (1 - gamma) |c|, so
    # a run with tol just above that stops after one sweep at v* + gamma c (a run that ignored
    # v_0 would start from 0 and end elsewhere)
    c = shift * (1 + np.abs(v_star).max())
    q = mdp.backup(v_star + c)
    rounding = 8 * U * (abs(c) + np.abs(v_star).max() + np.abs(mdp.reward).max())
    floor = tol + 4 * optimal_value_bound(mdp, v_star) + dp.tie_tolerance(q).max() + rounding
    for run in (dp.value_iteration, lambda m, **kw: dp.truncated_policy_iteration(m, 1, **kw)):
        start = run(mdp, v0=v_star + c, tol=abs(c) * (1 - mdp.gamma) + floor)
        assert start.iterations == 1
        assert_close(start.v, v_star + mdp.gamma * c, ulps=0, abs_floor=floor,
                     what="one sweep from v* + c")  # fmt: skip


def test_iterative_methods_reject_bad_arguments():
    from impl.rl import dynamic_programming as dp

    mdp = example_5x5().mdp()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="^j: must be a positive integer"):
            dp.truncated_policy_iteration(mdp, bad)
        with pytest.raises(ValueError, match="^max_iter: must be a positive integer"):
            dp.value_iteration(mdp, max_iter=bad)
        with pytest.raises(ValueError, match="^max_iter: must be a positive integer"):
            dp.truncated_policy_iteration(mdp, 1, max_iter=bad)
    for tol in (0.0, -1e-3, np.inf, np.nan):
        with pytest.raises(ValueError, match="^tol: must be finite and > 0"):
            dp.value_iteration(mdp, tol=tol)
        with pytest.raises(ValueError, match="^tol: must be finite and > 0"):
            dp.truncated_policy_iteration(mdp, 1, tol=tol)


def test_policy_iteration_counts_its_evaluations():
    """iterations = the number of policies evaluated (len(history)); from the optimal policy it
    stops after one; max_iter caps it exactly. The tie tolerance is TIE max(1, |max_a q(s, a)|)
    per state."""
    from impl.rl import dynamic_programming as dp

    mdp = example_5x5().mdp()
    best = dp.policy_iteration(mdp)
    assert best.iterations == len(best.history) >= 3
    again = dp.policy_iteration(mdp, actions0=best.actions)
    assert again.iterations == 1 and np.array_equal(again.history[0], best.actions)
    for cap in (1, 2):
        capped = dp.policy_iteration(mdp, max_iter=cap)
        assert capped.iterations == len(capped.history) == cap
    q = np.array([[0.5, 0.2], [-3.0, -4.0], [7.0, 7.0]])
    assert dp.tie_tolerance(q).tolist() == [dp.TIE, 3 * dp.TIE, 7 * dp.TIE]
