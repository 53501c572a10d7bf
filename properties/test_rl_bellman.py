"""RL-01, RL-02, RL-03 (the operator), RL-08: Bellman equations (impl/rl/bellman.py).

v_pi never comes from the code under test: reference_policy_value (properties/rl_bounds.py)
solves (I - gamma P_pi) v = r_pi densely from the MDP's arrays, asserts that its residual is
within the LU budget, and returns its own error bound eps_ref (its residual certificate), which
every tolerance includes. The implementation's closed form is held to the a-priori error of an
LU solve (lu_noise), never to a certificate of its own output (which any vector would pass).
"""

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from impl.rl import bellman, policy
from impl.rl.mdp import MDP
from properties.catalogue import claim
from properties.evidence import current
from properties.rl_bounds import U, lu_noise, reference_policy_value
from properties.strategies import floats, grid_worlds, random_mdps, seeds
from properties.tolerances import assert_close


def random_policy(mdp, seed):
    return seed.numpy().dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)


def closed_form_budget(mdp, v_pi):
    """||v - v_pi|| for an LU solve of (I - gamma P_pi) v = r_pi (Wilkinson: a residual of at
    most 16 S u (||v|| + max|r|), growth <= 2 for this diagonally dominant matrix), times
    ||(I - gamma P_pi)^-1|| <= 1 / (1 - gamma); from the reference's ||v_pi||."""
    return lu_noise(mdp.n_states, mdp.gamma, np.abs(v_pi).max() + np.abs(mdp.reward).max())


@claim("RL-01")
@given(model=random_mdps(), seed=seeds)
def test_closed_form_is_the_limit_of_iterative_evaluation(rl, model, seed):
    mdp = model.mdp()
    pi = random_policy(mdp, seed)
    v_pi, eps = reference_policy_value(mdp, pi)
    v = rl.evaluate(mdp, pi)
    assert_close(v, v_pi, ulps=0, abs_floor=closed_form_budget(mdp, v_pi) + eps,
                 what="closed form (I - gamma P_pi)^-1 r_pi - reference v_pi")  # fmt: skip
    sweeps = 60
    history = rl.evaluate_iterative(mdp, pi, sweeps)
    # ||v_k - v_pi|| <= gamma^k ||v_0 - v_pi||; each sweep's rounding delta adds at most
    # delta / (1 - gamma) in total (the iterates stay within ||v_pi|| of v_pi, from v_0 = 0);
    # comparing with the reference (not v_pi) costs eps twice.
    delta = (mdp.next_state.shape[2] + 4) * U * (np.abs(mdp.reward).max() + 2 * np.abs(v_pi).max())
    err0 = np.abs(history[0] - v_pi).max() + eps
    k = np.arange(sweeps + 1)
    bound = mdp.gamma**k * err0 + eps + delta / (1 - mdp.gamma)
    assert_close(np.abs(history - v_pi).max(axis=1), np.zeros(sweeps + 1), ulps=0, abs_floor=bound,
                 what="||v_k - v_pi|| vs gamma^k ||v_0 - v_pi||")  # fmt: skip
    current().summary = (
        "iterative evaluation contracts by gamma per sweep onto (I - gamma P_pi)^-1 r_pi"
    )


@claim("RL-01")
def test_negative_control_transposed_transition_matrix(rl):
    """v = (I - gamma P_pi^T)^-1 r_pi (a tempting transpose) fails the closed-form check above:
    Hypothesis finds the smallest MDP on which it is further from v_pi than the LU budget."""

    def passes(case):
        model, seed = case
        mdp = model.mdp()
        pi = random_policy(mdp, seed)
        P = mdp.policy_matrix(pi).toarray()
        wrong = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P.T, mdp.policy_reward(pi))
        v_pi, eps = reference_policy_value(mdp, pi)
        return np.abs(wrong - v_pi).max() <= closed_form_budget(mdp, v_pi) + eps

    model, seed = find(st.tuples(random_mdps(max_states=8), seeds), lambda c: not passes(c))
    current().record(transpose_rejected_on=f"{model!r}, {seed!r}")


@claim("RL-02")
@given(model=random_mdps(max_states=12), seed=seeds)
def test_v_is_the_policy_average_of_q_and_q_is_one_backup(rl, model, seed):
    mdp = model.mdp()
    pi = random_policy(mdp, seed)
    v, eps_v = reference_policy_value(mdp, pi)  # ||v - v_pi|| <= eps_v
    q = rl.q_from_v(mdp, v)
    # one backup of v is within gamma eps_v of q_pi, plus its rounding (K + 3) u (max|r| + ||v||)
    backup_rounding = (
        (mdp.next_state.shape[2] + 3) * U * (np.abs(mdp.reward).max() + np.abs(v).max())
    )
    # v_pi(s) = sum_a pi(a|s) q_pi(s, a): with q and v as above the two sides differ by at most
    # (1 + gamma) eps_v, the rounding of q and of the sum over A actions
    slack = (1 + mdp.gamma) * eps_v + backup_rounding + (mdp.n_actions + 2) * U * np.abs(q).max()
    assert_close(rl.v_from_q(pi, q), v, ulps=0, abs_floor=slack, what="sum_a pi q - v")
    # Independently: q_pi solves q = r + gamma P Pi q over state-action pairs (a dense solve).
    S, A = mdp.n_states, mdp.n_actions
    P = mdp.transition_tensor().reshape(S * A, S)
    Pi = np.zeros((S, S * A))
    Pi[np.repeat(np.arange(S), A), np.arange(S * A)] = pi.ravel()
    q_sa = np.linalg.solve(np.eye(S * A) - mdp.gamma * P @ Pi, mdp.expected_reward().ravel())
    residual = np.abs(mdp.expected_reward().ravel() + mdp.gamma * P @ (Pi @ q_sa) - q_sa).max()
    eps_q = (residual + (S * A + 3) * U * (np.abs(q_sa).max() + np.abs(mdp.reward).max())) / (
        1 - mdp.gamma
    )
    assert_close(q.ravel(), q_sa, ulps=0, abs_floor=mdp.gamma * eps_v + eps_q + backup_rounding,
                 what="q from one backup of v_pi - q_pi (state-action system)")  # fmt: skip
    current().summary = (
        "v = sum_a pi q and q = one backup of v_pi, against the state-action Bellman system"
    )


@claim("RL-03")
@given(model=random_mdps(), seed=seeds, scale=floats(0.01, 100.0))
def test_optimality_operator_is_a_gamma_contraction(rl, model, seed, scale):
    mdp = model.mdp()
    rng = seed.numpy()
    v, w = scale * rng.standard_normal((2, mdp.n_states))
    tv, tw = rl.optimality_operator(mdp, v)[0], rl.optimality_operator(mdp, w)[0]
    # |max_a x_a - max_a y_a| <= max_a |x_a - y_a| exactly; two backups round by <= delta each
    delta = (mdp.next_state.shape[2] + 3) * U * (np.abs(mdp.reward).max() + np.abs([v, w]).max())
    lhs, rhs = np.abs(tv - tw).max(), mdp.gamma * np.abs(v - w).max()
    assert_close(lhs, 0.0, ulps=0, abs_floor=rhs + 2 * delta, what="||Tv - Tw|| - gamma ||v - w||")
    current().summary = "||Tv - Tw|| <= gamma ||v - w|| on random MDPs and value vectors"


@claim("RL-03")
def test_negative_control_undiscounted_operator_is_not_a_contraction():
    """With gamma = 1 (not allowed by MDP) T(v + c) = T v + c: the ratio is 1, not < 1."""
    mdp = MDP.from_dense(np.ones((1, 1, 1)), np.zeros((1, 1)), 0.5)
    T1 = lambda v: mdp.expected_reward().max(axis=1) + (mdp.transition_tensor() @ v).max(axis=1)  # noqa: E731
    v = np.array([0.0])
    assert np.abs(T1(v + 1.0) - T1(v)).max() == 1.0 == np.abs((v + 1.0) - v).max()
    with pytest.raises(ValueError, match="^gamma: "):
        MDP.from_dense(np.ones((1, 1, 1)), np.zeros((1, 1)), 1.0)


@claim("RL-08")
@given(world=grid_worlds(), seed=seeds)
def test_staying_at_the_target_returns_r_target_over_one_minus_gamma(rl, world, seed):
    mdp = world.mdp()
    pi = random_policy(mdp, seed)
    t = world.state(world.target)
    pi[t] = 0.0
    pi[t, world.actions.index("stay")] = 1.0
    expected = world.r_target / (1 - world.gamma)
    # the reference's v_pi(target), and the implementation's within its LU solve's error
    v_pi, eps = reference_policy_value(mdp, pi)
    assert_close(v_pi[t], expected, ulps=0, abs_floor=eps + 4 * U * abs(expected),
                 what="reference v_pi(target) - r_target / (1 - gamma)")  # fmt: skip
    v = rl.evaluate(mdp, pi)
    assert_close(v[t], expected, ulps=0, abs_floor=closed_form_budget(mdp, v_pi) + 4 * U * abs(expected),
                 what="v(target) - r_target / (1 - gamma)")  # fmt: skip
    # The return of the trajectory itself: sum_{t<L} gamma^t r = r (1 - gamma^L) / (1 - gamma).
    L = 200
    g0 = rl.returns(np.full(L, world.r_target), world.gamma)[0]
    assert_close(g0, world.r_target * (1 - world.gamma**L) / (1 - world.gamma), ulps=4 * L,
                 scale=abs(expected), what="discounted return of L target rewards")  # fmt: skip
    current().summary = "v(target) = r_target / (1 - gamma) under any policy that stays there"


@pytest.mark.parametrize(
    "call, argument",
    [
        (
            lambda: bellman.evaluate_iterative(
                MDP.from_dense(np.ones((1, 1, 1)), [[0.0]], 0.5), [[1.0]], -1
            ),
            "sweeps",
        ),
        (lambda: bellman.evaluate(MDP.from_dense(np.ones((1, 1, 1)), [[0.0]], 0.5), [[0.5]]), "pi"),
        (
            lambda: bellman.evaluate(
                MDP.from_dense(np.ones((1, 1, 1)), [[0.0]], 0.5), [[1.0, 0.0]]
            ),
            "pi",
        ),
        (lambda: policy.epsilon_greedy(np.zeros((2, 2)), 1.5), "epsilon"),
        (lambda: policy.epsilon_greedy(np.zeros((2, 2)), -0.1), "epsilon"),
        (lambda: policy.deterministic(np.array([0, 3]), 3), "actions"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


@given(model=random_mdps(), seed=seeds)
def test_iterative_evaluation_starts_where_told(model, seed):
    """evaluate_iterative returns v_0..v_sweeps: v_0 = 0 by default or the given v0, each next
    one an evaluation sweep of the previous one; sweeps = 0 returns v_0 alone."""
    mdp = model.mdp()
    rng = seed.numpy()
    pi = policy.deterministic(rng.integers(mdp.n_actions, size=mdp.n_states), mdp.n_actions)
    v0 = rng.standard_normal(mdp.n_states) * 10
    np.testing.assert_array_equal(
        bellman.evaluate_iterative(mdp, pi, 0), np.zeros((1, mdp.n_states))
    )
    history = bellman.evaluate_iterative(mdp, pi, 3, v0=v0)
    assert history.shape == (4, mdp.n_states)
    np.testing.assert_array_equal(history[0], v0)
    for k in range(3):
        np.testing.assert_array_equal(history[k + 1], bellman.evaluation_sweep(mdp, pi, history[k]))
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="^sweeps: must be a non-negative integer"):
            bellman.evaluate_iterative(mdp, pi, bad)


def test_q_from_v_refuses_more_values_than_states():
    """Issue 16: q_from_v (one backup) ignored the entries of v past n_states."""
    mdp = MDP.from_dense(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), 0.5)
    with pytest.raises(ValueError, match=r"^v: expected shape \(2,\)"):
        bellman.q_from_v(mdp, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^v: expected shape \(2,\)"):
        bellman.optimality_operator(mdp, [1.0])
    with pytest.raises(TypeError, match="^mdp: expected an impl.rl.mdp.MDP"):
        bellman.q_from_v(None, [1.0, 2.0])
    with pytest.raises(ValueError, match="^pi: "):
        bellman.v_from_q([[0.5, 0.5]], [[1.0, 2.0], [3.0, 4.0]])
