"""RL-03 (value iteration), RL-04, RL-05, RL-06: value, policy and truncated policy iteration
(impl/rl/dynamic_programming.py, through the `rl` adapter). Values are compared, never argmax
actions (ties).

v* never comes from the code under test: reference_optimum (properties/rl_bounds.py) solves the
linear programme of v* with scipy's HiGHS and polishes it by exact evaluation, asserts that its
optimality residual is within the rounding noise, and returns its own error bound eps_ref, which
every tolerance includes. Each solver is held to the bound of its own stopping rule
(value_iteration_bound, truncated_policy_iteration_bound, policy_iteration_bound), computed from
the tolerance it was given and the size of v* and r, never from the vector it returned: a
certificate ||T v - v|| / (1 - gamma) of the returned v would pass any v."""

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from impl.rl.gridworld import example_5x5
from impl.rl.mdp import MDP
from properties.catalogue import claim
from properties.evidence import current
from properties.rl_bounds import (
    TIE,
    U,
    policy_iteration_bound,
    reference_optimum,
    reference_policy_value,
    reference_q,
    truncated_policy_iteration_bound,
    value_iteration_bound,
)
from properties.strategies import floats, grid_worlds, random_mdps, seeds
from properties.tolerances import assert_close

models = st.one_of(random_mdps(), grid_worlds())


def one_hot(mdp, actions):
    """The (S, A) matrix of the deterministic policy s -> actions[s] (written here, not impl's)."""
    return np.eye(mdp.n_actions)[np.asarray(actions, dtype=int)]


def greedy_bound(mdp, v_star):
    """||v_mu - v*|| for a policy mu that policy iteration leaves unchanged (without the error
    of the returned v itself): see policy_iteration_bound."""
    return policy_iteration_bound(mdp, v_star)


@claim("RL-03")
@given(model=models, seed=seeds, scale=floats(0.0, 100.0))
def test_value_iteration_converges_within_the_contraction_bound(rl, model, seed, scale):
    mdp = model.mdp()
    g = mdp.gamma
    v_star, eps = reference_optimum(mdp)
    v0 = scale * seed.numpy().standard_normal(mdp.n_states)
    v, distances = v0, []
    v1 = rl.optimality_operator(mdp, v0)[0]
    for _ in range(40):  # v_k = T^k v_0
        distances.append(np.abs(v - v_star).max())
        v = rl.optimality_operator(mdp, v)[0]
    k = np.arange(40)
    # each computed sweep is T v + e, ||e|| <= rho: k sweeps add at most rho / (1 - gamma)
    rho = (
        (mdp.next_state.shape[2] + 4)
        * U
        * (np.abs(mdp.reward).max() + 2 * np.abs(v_star).max() + np.abs(v0).max())
    )
    bound = g**k / (1 - g) * np.abs(v1 - v0).max() + eps + rho / (1 - g)
    assert_close(np.array(distances), np.zeros(40), ulps=0, abs_floor=bound,
                 what="||v_k - v*|| vs gamma^k/(1-gamma) ||v_1 - v_0||")  # fmt: skip
    # The stopping rule: after a sweep that moved v by <= tol, ||v - v*|| <= gamma tol / (1 - gamma).
    tol = 1e-9 * max(1.0, np.abs(v_star).max())
    result = rl.value_iteration(mdp, v0=v0, tol=tol)
    stop_bound = value_iteration_bound(mdp, tol, v_star, v0) + eps
    assert_close(result.v, v_star, ulps=0, abs_floor=stop_bound, what="value_iteration's v - v*")
    current().summary = (
        "||v_k - v*|| <= gamma^k/(1-gamma) ||v_1 - v_0||, and the stopping rule's bound holds"
    )


@claim("RL-04")
@given(model=models)
def test_greedy_policy_of_q_star_is_optimal_and_all_three_methods_agree(rl, model):
    mdp = model.mdp()
    g = mdp.gamma
    v_star, eps = reference_optimum(mdp)
    q_star = rl.q_from_v(mdp, v_star)
    # q* from one backup of an eps-accurate v* is within delta = gamma eps + rounding of q*; an
    # action greedy for it loses at most 2 delta per step: ||v_greedy - v*|| <= 2 delta / (1 - g).
    delta = g * eps + reference_q(mdp, v_star)[1]
    v_greedy, eps_g = reference_policy_value(mdp, one_hot(mdp, rl.greedy_actions(q_star)))
    assert_close(v_greedy, v_star, ulps=0, abs_floor=2 * delta / (1 - g) + eps + eps_g,
                 what="v of greedy(q*) - v*")  # fmt: skip
    tol = 1e-9 * max(1.0, np.abs(v_star).max())
    runs = [
        (
            "value iteration",
            rl.value_iteration(mdp, tol=tol),
            value_iteration_bound(mdp, tol, v_star),
        ),
        ("policy iteration", rl.policy_iteration(mdp), policy_iteration_bound(mdp, v_star)),
    ]
    runs += [(f"truncated PI, j = {j}", rl.truncated_policy_iteration(mdp, j, tol=tol),
              truncated_policy_iteration_bound(mdp, j, tol, v_star)) for j in (1, 3, 10)]  # fmt: skip
    for name, result, bound in runs:
        assert_close(result.v, v_star, ulps=0, abs_floor=bound + eps, what=f"{name}: v - v*")
    current().summary = (
        "greedy(q*) is optimal; VI, PI and truncated PI (j = 1, 3, 10) reach the reference v*"
    )


@claim("RL-05")
@given(model=models)
def test_policy_iteration_improves_monotonically_and_stops(rl, model):
    mdp = model.mdp()
    result = rl.policy_iteration(mdp)
    assert result.history, "policy_iteration must report its sequence of policies"
    values = [reference_policy_value(mdp, one_hot(mdp, actions)) for actions in result.history]
    for (v0, e0), (v1, e1) in zip(values, values[1:], strict=False):
        assert np.all(v1 >= v0 - e0 - e1), "v_{pi_{k+1}} >= v_{pi_k} violated"
        assert np.any(v1 > v0 + e0 + e1), (
            "a policy change without strict improvement (cycling risk)"
        )
    assert result.iterations < 10_000 and result.iterations <= mdp.n_actions**mdp.n_states
    v_star, eps = reference_optimum(mdp)
    v_final, e_final = reference_policy_value(mdp, one_hot(mdp, result.actions))
    assert_close(v_final, v_star, ulps=0, abs_floor=greedy_bound(mdp, v_star) + eps + e_final,
                 what="value of PI's final policy - v*")  # fmt: skip
    assert_close(result.v, v_star, ulps=0, abs_floor=policy_iteration_bound(mdp, v_star) + eps,
                 what="PI's returned v - v*")  # fmt: skip
    current().worst("largest number of PI iterations", result.iterations)
    current().summary = (
        "v_{pi_k} increases strictly until the policy is stable (finitely many steps), at v*"
    )


@claim("RL-06")
@given(model=models, a=floats(0.1, 10.0), b=floats(-5.0, 5.0))
def test_affine_rewards_map_values_and_keep_optimal_policies(rl, model, a, b):
    mdp = model.mdp()
    g = mdp.gamma
    shifted = MDP(mdp.next_state, mdp.prob, a * mdp.reward + b, g)
    v1, e1 = reference_optimum(mdp)
    v2, e2 = reference_optimum(shifted)
    rounding = 4 * U * (np.abs(a * v1).max() + abs(b) / (1 - g))
    # the mathematics, on the reference
    assert_close(v2, a * v1 + b / (1 - g), ulps=0, abs_floor=e2 + a * e1 + rounding,
                 what="reference: v*' - (a v* + b/(1-gamma))")  # fmt: skip
    # the implementation: its v*' and v*, each within its stopping bound
    run1, run2 = rl.policy_iteration(mdp), rl.policy_iteration(shifted)
    budget = policy_iteration_bound(shifted, v2) + a * policy_iteration_bound(mdp, v1) + rounding
    assert_close(run2.v, a * run1.v + b / (1 - g), ulps=0, abs_floor=budget,
                 what="policy_iteration: v*' - (a v* + b/(1-gamma))")  # fmt: skip
    # The transformed problem's optimal policy is optimal for the original one (by value): its
    # loss in the transformed problem is divided by a in the original one.
    v_back, e_back = reference_policy_value(mdp, one_hot(mdp, run2.actions))
    assert_close(v_back, v1, ulps=0, abs_floor=e_back + e1 + greedy_bound(shifted, v2) / a,
                 what="original value of pi*' - v*")  # fmt: skip
    current().summary = "r -> a r + b (a > 0): v*' = a v* + b/(1-gamma), same optimal policies"


@claim("RL-06")
def test_negative_control_negative_scale_changes_the_optimal_policy(rl):
    """a < 0 is excluded for a reason: on the book's 5x5 grid, a = -1 turns the optimal policy
    into one whose value in the original problem is far below v*."""
    mdp = example_5x5().mdp()
    flipped = MDP(mdp.next_state, mdp.prob, -mdp.reward, mdp.gamma)
    v_star, _ = reference_optimum(mdp)
    v_back, _ = reference_policy_value(mdp, one_hot(mdp, rl.policy_iteration(flipped).actions))
    gap = float(np.max(v_star - v_back))
    assert gap > 1.0
    current().record(value_lost_with_a_minus_1=gap)


@claim("RL-04")
def test_minimal_mdp_where_argmax_actions_differ_but_values_agree(rl):
    """Why properties compare values: ties make optimal actions non-unique. Hypothesis finds a
    small MDP where two optimal policies disagree on actions."""

    def has_tie(model):
        mdp = model.mdp()
        q = reference_q(mdp, reference_optimum(mdp)[0])[0]
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
    g = mdp.gamma
    v_star, eps = reference_optimum(mdp)  # eps includes the reference's own rounding
    tol = 1e-8 * max(1.0, np.abs(v_star).max())
    runs = [dp.value_iteration(mdp, tol=tol)]
    runs += [dp.truncated_policy_iteration(mdp, j, tol=tol) for j in (1, 4)]
    # the default tol = 1e-10, each run within its stopping rule's bound (+ the reference's)
    for default, bound in (
        (dp.value_iteration(mdp), value_iteration_bound(mdp, 1e-10, v_star)),
        (dp.truncated_policy_iteration(mdp, 2), truncated_policy_iteration_bound(mdp, 2, 1e-10, v_star)),
    ):  # fmt: skip
        assert_close(default.v, v_star, ulps=0, abs_floor=bound + eps, what="default tol 1e-10")
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
    # T(v* + c) = v* + gamma c. From v_0 = v_ref + c (||v_ref - v*|| <= eps) one computed sweep
    # gives T v_ref + gamma c, and ||T v_ref - v_ref|| <= (1 + gamma) eps: the first move is
    # (1 - gamma) |c| up to (1 + gamma) eps, the tie tolerance (truncated PI's policy) and the
    # rounding, so a run with tol just above that stops after one sweep at v_ref + gamma c (a
    # run that ignored v_0 would start from 0 and end elsewhere)
    c = shift * (1 + np.abs(v_star).max())
    scale = abs(c) + np.abs(v_star).max() + np.abs(mdp.reward).max()
    rounding = (mdp.next_state.shape[2] + 8) * U * scale
    floor = (1 + g) * eps + TIE * max(1.0, scale) + rounding
    for run in (dp.value_iteration, lambda m, **kw: dp.truncated_policy_iteration(m, 1, **kw)):
        start = run(mdp, v0=v_star + c, tol=abs(c) * (1 - g) + floor)
        assert start.iterations == 1
        assert_close(start.v, v_star + g * c, ulps=0, abs_floor=floor,
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


def test_value_iteration_refuses_a_nan_start():
    """Issue 16: value_iteration(mdp, v0=NaN) ran all its sweeps and returned NaN."""
    from impl.rl import dynamic_programming as dp

    mdp = example_5x5().mdp()
    v0 = np.full(mdp.n_states, np.nan)
    with pytest.raises(ValueError, match="^v0: has a non-finite entry"):
        dp.value_iteration(mdp, v0=v0)
    with pytest.raises(ValueError, match="^v0: has a non-finite entry"):
        dp.truncated_policy_iteration(mdp, 2, v0=v0)
    with pytest.raises(ValueError, match=r"^v0: expected shape \(25,\)"):
        dp.value_iteration(mdp, v0=np.zeros(26))
    with pytest.raises(ValueError, match="^actions0: expected 25 action indices"):
        dp.policy_iteration(mdp, actions0=np.full(mdp.n_states, 5))
