"""Peers, through the converters (impl/rl/converters.py): pymdptoolbox, its maintained fork
mdptoolbox-hiive (the `mdptoolbox` and `mdptoolbox-hiive` adapters of properties/adapters/rl.py),
and gymnasium's FrozenLake.

Tests about a peer are findings (`@finding`), not evidence for the article's claims; each is
asserted as observed (so a peer that changes shows up) and recorded in the evidence, and runs on
both toolboxes (the fork keeps every behaviour pinned here, measured on 4.0.3.1). v* comes
from the independent reference of properties/rl_bounds.py; each solver is held to the a-priori
bound of its stopping rule (the toolboxes' PolicyIteration, a plain argmax with exact
evaluation, to the same bound as ours, whose tie tolerance only loosens it). "Ours" is the
reference adapter, named explicitly: these tests compare the library with the article's
implementation, whatever --target selects."""

import warnings
from importlib import metadata

import numpy as np
import pytest
from hypothesis import given, settings

from impl.rl import converters, policy
from properties import stats
from properties.adapters.rl import MDPToolbox, MDPToolboxHiive, Reference
from properties.catalogue import claim, finding
from properties.evidence import current
from properties.rl_bounds import (
    policy_iteration_bound,
    policy_value_bound,
    reference_optimum,
    reference_policy_value,
    value_iteration_bound,
)
from properties.strategies import random_mdps
from properties.tolerances import assert_close

mdptoolbox = pytest.importorskip("mdptoolbox.mdp", reason="pymdptoolbox is a test dependency")
gym = pytest.importorskip("gymnasium", reason="gymnasium is a test dependency")


@pytest.fixture(
    scope="module",
    params=[MDPToolbox, MDPToolboxHiive],
    ids=["pymdptoolbox", "mdptoolbox-hiive"],
)
def toolbox(request):
    """Each toolbox's adapter (skipped where its package is not installed: tox installs the
    fork without its dependencies)."""
    adapter = request.param
    pytest.importorskip(adapter.module, reason=f"{adapter.library} is a peer dependency")
    return adapter


def _name(toolbox):
    return f"{toolbox.library} {metadata.version(toolbox.library)}"


def _forest():
    import mdptoolbox.example

    P, R = mdptoolbox.example.forest()
    return converters.from_mdptoolbox(P, R, 0.9)


@given(model=random_mdps(max_states=10))
def test_mdptoolbox_round_trip(model):
    mdp = model.mdp()
    P, R = converters.to_mdptoolbox(mdp)
    back = converters.from_mdptoolbox(P, R, mdp.gamma)
    assert_close(
        back.transition_tensor(), mdp.transition_tensor(), ulps=4, scale=1.0, what="P round trip"
    )
    # back holds r(s, a) on every outcome: sum_s' p r = r sum_s' p, off by (S + 1) u relative
    r = mdp.expected_reward()
    assert_close(back.expected_reward(), r, ulps=2 * (mdp.n_states + 1), scale=np.abs(r),
                 what="r(s, a) round trip")  # fmt: skip


@finding("RL-04")
@settings(max_examples=20)
@given(model=random_mdps(max_states=10).filter(lambda m: m.gamma > 0))
def test_mdptoolbox_policy_iteration_reaches_our_v_star(toolbox, model):
    """The smoke check of each toolbox adapter in the default gate (the claims' properties run
    on it in the peer matrix): its PolicyIteration reaches v* on random MDPs with gamma > 0."""
    mdp = model.mdp()
    v_star, eps = reference_optimum(mdp)
    bound = policy_iteration_bound(mdp, v_star) + eps
    ours = Reference.policy_iteration(mdp).v
    assert_close(ours, v_star, ulps=0, abs_floor=bound, what="our PI's v - v*")
    theirs = toolbox.policy_iteration(mdp)
    assert_close(theirs.v, v_star, ulps=0, abs_floor=bound, what=f"{toolbox.library} PI's V - v*")
    assert theirs.iterations == len(theirs.history) >= 1
    pi = policy.deterministic(theirs.actions, mdp.n_actions)
    v_policy, eps_policy = reference_policy_value(mdp, pi)
    assert_close(v_policy, v_star, ulps=0, abs_floor=bound + eps_policy,
                 what=f"value of {toolbox.library} PI's policy - v*")  # fmt: skip
    current().summary = (
        f"{_name(toolbox)}: PolicyIteration reaches the reference v* on random MDPs, as ours does"
    )


@finding("RL-04")
def test_mdptoolbox_policy_iteration_on_forest(toolbox):
    mdp = _forest()
    v_star, eps = reference_optimum(mdp)
    theirs = toolbox.policy_iteration(mdp)
    ours = Reference.policy_iteration(mdp).v
    bound = policy_iteration_bound(mdp, v_star) + eps
    assert_close(
        theirs.v, v_star, ulps=0, abs_floor=bound, what=f"forest(): {toolbox.library} V - v*"
    )
    assert_close(ours, v_star, ulps=0, abs_floor=bound, what="forest(): our v - v*")
    current().summary = f"{_name(toolbox)}: PolicyIteration reaches the reference v* on forest()"
    current().record(forest_v_star=ours.round(4).tolist())


@finding("RL-03")
@pytest.mark.parametrize("tol", [None, 1e-10], ids=["default-epsilon", "tol-1e-10"])
def test_finding_mdptoolbox_value_iteration_stops_with_v_far_from_v_star(toolbox, tol):
    """The toolboxes' ValueIteration stops on a span criterion, max - min of V_{k+1} - V_k,
    that makes its *policy* epsilon-optimal but not its V: on forest() (gamma = 0.9) V is off
    by about 21 after 4 sweeps, with the library's default epsilon = 0.01 and with its epsilon
    set so that its threshold is 1e-10 (the adapter's translation of tol): sweep 4 moves every
    state by the same amount, span 0. Our stopping rule bounds V itself:
    ||v - v*|| <= gamma tol / (1 - gamma). mdptoolbox-hiive 4.0.3.1 still does this."""
    mdp = _forest()
    v_star, eps = reference_optimum(mdp)
    if tol is None:
        P, R = converters.to_mdptoolbox(mdp)
        run = toolbox._mdp_module().ValueIteration(P, R, 0.9)
        run.run()
        v, actions, sweeps = np.array(run.V), np.array(run.policy), run.iter
    else:
        theirs = toolbox.value_iteration(mdp, tol=tol)
        v, actions, sweeps = theirs.v, theirs.actions, theirs.iterations
    error = float(np.abs(v - v_star).max())
    v_policy, eps_policy = reference_policy_value(mdp, policy.deterministic(actions, 2))
    assert np.abs(v_policy - v_star).max() <= eps + eps_policy, "its policy is optimal"
    assert sweeps == 4 and error > 21.0, (
        f"finding no longer reproduces: {toolbox.library}'s V is now close to v* "
        f"(||V - v*|| = {error:.3g} after {sweeps} sweeps)"
    )
    ours = Reference.value_iteration(mdp, tol=1e-10)
    assert np.abs(ours.v - v_star).max() <= value_iteration_bound(mdp, 1e-10, v_star) + eps
    current().record(
        **{f"{toolbox.library} sweeps": sweeps, f"{toolbox.library} ||V - v*||": error},
        our_sweeps=ours.iterations,
        finding=f"{_name(toolbox)}: ValueIteration on forest() (gamma 0.9, "
        f"{'default epsilon 0.01' if tol is None else 'threshold 1e-10'}) stops after {sweeps} "
        f"sweeps with ||V - v*|| = {error:.1f}; its policy is optimal",
    )
    current().summary = (
        f"finding: {_name(toolbox)} ValueIteration stops after {sweeps} sweeps with "
        f"||V - v*|| = {error:.1f} (policy optimal); ours bounds V"
    )


@finding("RL-03")
@pytest.mark.parametrize(
    "case, P, R, error",
    [
        ("one state", [[[1.0]]], [[0.0]], "ValueError: math domain error"),
        ("two states, every reward 1", [[[0.0, 1.0], [1.0, 0.0]]], [[1.0], [1.0]],
         "OverflowError: cannot convert float infinity to integer"),
    ],
    ids=["one-state", "equal-rewards"],
)  # fmt: skip
def test_finding_mdptoolbox_value_iteration_crashes_when_the_first_sweep_has_span_zero(
    toolbox, case, P, R, error
):
    """The toolboxes' ValueIteration sizes its run from the first sweep (`_boundIter`:
    log(threshold / span) / log(gamma k), k = 1 - sum of the column minima of P): a first
    sweep whose change V_1 - V_0 is the same in every state (span 0: a single state, or equal
    rewards everywhere) makes that log(inf), then int(ceil(-inf)) -> OverflowError; one state
    also gives k = 0, log(0) -> ValueError. Both are valid MDPs (gamma = 0.9), which our value
    iteration solves: v* = r / (1 - gamma)."""
    mdp = converters.from_mdptoolbox(np.array(P), np.array(R), 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError) as raised:
            toolbox.value_iteration(mdp)
    assert f"ValueIteration raised {error}" in str(raised.value), (
        f"finding no longer reproduces: {toolbox.library} now says {raised.value}"
    )
    ours = Reference.value_iteration(mdp)
    v_star, eps = reference_optimum(mdp)
    assert np.abs(ours.v - v_star).max() <= value_iteration_bound(mdp, 1e-10, v_star) + eps
    current().record(
        finding=f"{_name(toolbox)}: ValueIteration(P, R, 0.9) raises {error} on {case} "
        f"(P = {P}, R = {R}); the first sweep's change has span 0"
    )
    current().summary = f"finding: {_name(toolbox)} ValueIteration crashes on {case} ({error})"


@finding("RL-03")
def test_finding_mdptoolbox_rejects_gamma_zero(toolbox):
    mdp = _forest()
    P, R = converters.to_mdptoolbox(mdp)
    with pytest.raises(AssertionError, match="Discount rate"):
        toolbox._mdp_module().PolicyIteration(P, R, 0.0)
    current().record(finding=f"{_name(toolbox)}: PolicyIteration(P, R, 0.0) -> AssertionError "
                     "'Discount rate must be in ]0; 1]'")  # fmt: skip
    current().summary = (
        f"finding: {_name(toolbox)} refuses gamma = 0 (allowed by the book and by us)"
    )


def frozen_lake(size, slippery):
    return gym.make("FrozenLake-v1", map_name=f"{size}x{size}", is_slippery=slippery)


def success_within(table, actions, horizon):
    """P(reaching a reward-1 transition within `horizon` steps) under deterministic `actions`,
    from gymnasium's own table (terminated transitions stop the walk)."""
    S = len(table)
    p = np.zeros(S)
    for _ in range(horizon):
        new = np.zeros(S)
        for s in range(S):
            for prob, s2, r, done in table[s][int(actions[s])]:
                new[s] += prob * (1.0 if r > 0 else (0.0 if done else p[s2]))
        p = new
    return p


@claim("RL-04")
@pytest.mark.parametrize("size, slippery", [(4, False), (4, True), (8, False), (8, True)])
def test_frozen_lake_greedy_policy_success_rate(rl, size, slippery):
    """Solve the converted table (gamma = 0.99); the greedy policy's success rate in the real
    environment (2000 episodes, its own time limit) matches the probability computed from the
    table: exact two-sided binomial test at alpha = 1e-7."""
    env = frozen_lake(size, slippery)
    table = env.unwrapped.P
    mdp = converters.from_gymnasium(table, 0.99)
    result = rl.policy_iteration(mdp)
    vi = rl.value_iteration(mdp, tol=1e-12)
    v_star, eps = reference_optimum(mdp)
    assert_close(result.v, v_star, ulps=0, abs_floor=policy_iteration_bound(mdp, v_star) + eps,
                 what="FrozenLake: PI - v*")  # fmt: skip
    assert_close(vi.v, v_star, ulps=0, abs_floor=value_iteration_bound(mdp, 1e-12, v_star) + eps,
                 what="FrozenLake: VI - v*")  # fmt: skip
    horizon = env.spec.max_episode_steps
    p = success_within(table, result.actions, horizon)[0]
    n, wins = 2000, 0
    for episode in range(n):
        s, _ = env.reset(seed=episode)
        for _ in range(horizon):
            s, r, terminated, truncated, _ = env.step(int(result.actions[s]))
            if terminated or truncated:
                break
        wins += r > 0
    stats.binomial_two_sided(int(wins), n, float(p), what=f"FrozenLake {size}x{size} successes")
    current().record(**{f"{size}x{size} slippery={slippery}: computed P(success)": round(float(p), 4),
                        f"{size}x{size} slippery={slippery}: observed": wins / n})  # fmt: skip


def test_gymnasium_duplicates_are_merged():
    table = {0: {0: [(0.5, 0, 0.0, False), (0.25, 0, 0.0, False), (0.25, 1, 1.0, True)]},
             1: {0: [(1.0, 1, 0.0, True)]}}  # fmt: skip
    mdp = converters.from_gymnasium(table, 0.9)
    assert mdp.next_state.shape == (2, 1, 2)
    assert_close(mdp.transition_tensor()[0, 0], [0.75, 0.25], ulps=0, what="merged probabilities")
    assert_close(mdp.expected_reward()[0, 0], 0.25, ulps=0, what="expected reward")
    with pytest.raises(ValueError, match="^P: "):
        converters.from_gymnasium({0: {0: [(1.0, 0, 0.0, False)]}, 1: {}}, 0.9)


def test_policy_value_bound_of_frozen_lake_solution(rl):
    mdp = converters.from_gymnasium(frozen_lake(4, True).unwrapped.P, 0.99)
    result = rl.policy_iteration(mdp)
    pi = policy.deterministic(result.actions, mdp.n_actions)
    assert policy_value_bound(mdp, pi, result.v) < 1e-9


@finding("RL-05")
def test_finding_mdptoolbox_policy_iteration_cycles_on_ties(toolbox):
    """Negative control for 'stops after finitely many iterations': the toolboxes''
    PolicyIteration takes a plain argmax, so floating-point noise between tied actions flips
    the policy back and forth: on a 13 x 13 grid world it runs to max_iter (100) although its V
    is already v*. Our policy iteration keeps the current action on ties and stops."""
    forbidden = [(i, i) for i in range(1, 14) if i != 7 and i % 3]
    mdp = gw_grid(13, forbidden).mdp()
    P, R = converters.to_mdptoolbox(mdp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = toolbox._mdp_module().PolicyIteration(P, R, 0.9, max_iter=100)
        run.run()
    ours = Reference.policy_iteration(mdp)
    assert run.iter == 100, f"finding no longer reproduces: {toolbox.library} PI now stops"
    v_star, eps = reference_optimum(mdp)
    assert np.abs(np.array(run.V) - v_star).max() <= policy_iteration_bound(mdp, v_star) + eps
    assert ours.iterations < 100
    current().record(
        **{f"{toolbox.library} iterations": run.iter},
        our_iterations=ours.iterations,
        finding=f"{_name(toolbox)}: PolicyIteration(P, R, 0.9, max_iter=100) on the 13 x 13 grid "
        f"world runs all {run.iter} iterations (argmax flips between tied actions)",
    )
    current().summary = (
        f"finding: {_name(toolbox)} PolicyIteration cycles on ties (13x13 grid: {run.iter} = "
        f"max_iter iterations); ours stops after {ours.iterations}"
    )


def gw_grid(side, forbidden):
    from impl.rl.gridworld import GridWorld

    return GridWorld(side, side, (side // 2 + 1, side // 2 + 1), forbidden, gamma=0.9)


@given(model=random_mdps(max_states=8))
def test_mdptoolbox_sparse_form_and_rewards_per_transition(model):
    """to_mdptoolbox gives dense (A, S, S) arrays by default and A csr matrices on request;
    from_mdptoolbox reads both, and reads rewards per transition R[a, s, s'] as
    r(s, a) = sum_s' p(s'|s, a) R[a, s, s'] (with a non-symmetric R, so a transposed read shows)."""
    from scipy import sparse

    mdp = model.mdp()
    S, A = mdp.n_states, mdp.n_actions
    dense, R = converters.to_mdptoolbox(mdp)
    assert isinstance(dense, np.ndarray) and dense.shape == (A, S, S)
    P, _ = converters.to_mdptoolbox(mdp, as_sparse=True)
    assert len(P) == A and all(sparse.isspmatrix_csr(p) for p in P)
    back = converters.from_mdptoolbox(P, R, mdp.gamma)
    np.testing.assert_array_equal(
        back.transition_tensor(),
        converters.from_mdptoolbox(dense, R, mdp.gamma).transition_tensor(),
    )
    a, s, s2 = np.meshgrid(np.arange(A), np.arange(S), np.arange(S), indexing="ij")
    R3 = 100.0 * a + 10.0 * s + s2
    per_transition = converters.from_mdptoolbox(dense, R3, mdp.gamma)
    expected = np.einsum("ast,ast->sa", dense, R3)
    assert_close(per_transition.expected_reward(), expected, ulps=4 * (S + 1), scale=np.abs(expected) + 1,
                 what="r(s, a) from R[a, s, s']")  # fmt: skip
    with pytest.raises(ValueError, match=r"^P: expected shape \(A, S, S\)"):
        converters.from_mdptoolbox(dense[:, :, :-1], R, mdp.gamma)
    with pytest.raises(ValueError, match=r"^R: expected shape \(S, A\)"):
        converters.from_mdptoolbox(dense, R.T if S != A else R[:, :-1], mdp.gamma)
