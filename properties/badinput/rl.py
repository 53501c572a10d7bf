"""Bad-input specs: impl/rl/ (tabular RL): mdp, bellman, policy, dynamic programming, converters,
the grid world and Monte Carlo."""

import math

import numpy as np
from scipy import sparse

from impl.rl import gridworld, monte_carlo
from impl.rl.mdp import MDP, PROB_TOL
from properties.badinput import exempt, spec
from properties.badinput.wrong import (
    also,
    bad_int,
    complex_dtype,
    empty,
    mismatched,
    not_a_number,
    not_a_tensor,
    not_finite,
    outside,
    reshaped,
    values,
)

# Two tiny models, built once (an MDP is frozen; no call changes it): a stochastic one with
# S = 2, A = 2, K = 2, and the deterministic 1 x 2 grid world (S = 2, A = 3).
STOCHASTIC = MDP(
    next_state=np.array([[[0, 1], [1, 1]], [[0, 0], [1, 0]]]),
    prob=np.array([[[0.5, 0.5], [1.0, 0.0]], [[1.0, 0.0], [0.3, 0.7]]]),
    reward=np.arange(8.0).reshape(2, 2, 2) - 3.0,
    gamma=0.9,
)
WORLD = gridworld.example_1x2()
DETERMINISTIC = WORLD.mdp()

# Area-local makers.
not_an_mdp = values(None, "mdp", {"gamma": 0.9}, np.zeros((2, 2, 1)), DETERMINISTIC.prob)
not_a_generator = values(None, 0, "rng", np.random.RandomState(0))
not_a_vector = values("x", {"x": 1})  # None means "the default" where these are used
GAMMA = [outside(0, 1, hi_open=True), not_finite, not_a_number]
# probabilities: rows may sum to 1 within mdp.PROB_TOL, so an entry is wrong beyond that margin
PROBABILITY_OUT_OF_RANGE = outside(0, 1, margin=10 * PROB_TOL)
# a dense transition array P (S, A, S') beside its rewards R (S, A)
DENSE_P = [
    not_finite,
    PROBABILITY_OUT_OF_RANGE,
    also("R")(mismatched()),
    reshaped,
    empty,
    not_a_tensor,
    complex_dtype,
]
PROBABILITIES = [
    not_finite,
    PROBABILITY_OUT_OF_RANGE,
    mismatched(),
    reshaped,
    empty,
    not_a_tensor,
    complex_dtype,
]
VALUES = [not_finite, mismatched(), reshaped, empty, not_a_tensor, complex_dtype]
ACTIONS_OF_2_STATES = [mismatched(), reshaped, empty, not_finite]  # None: the default


def pi_stochastic():
    return np.array([[0.5, 0.5], [1.0, 0.0]])


def pi_deterministic():
    return np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])


def v2():
    return np.array([1.0, -0.5])


def q23():
    return np.array([[1.0, 2.0, -1.0], [0.5, 0.5, 0.0]])


def _method(name):
    return lambda self, **kw: getattr(self, name)(**kw)


# --- impl.rl.mdp ---------------------------------------------------------------------------

spec(
    "impl.rl.mdp.MDP",
    valid=lambda: dict(
        next_state=STOCHASTIC.next_state.copy(),
        prob=STOCHASTIC.prob.copy(),
        reward=STOCHASTIC.reward.copy(),
        gamma=0.9,
    ),
    wrong=dict(
        next_state=[
            also("prob", "reward")(mismatched()),
            outside(0, 1),
            reshaped,
            empty,
            not_a_tensor,
            values(np.zeros((2, 2, 2))),
        ],
        prob=[*PROBABILITIES[:2], also("next_state")(mismatched()), *PROBABILITIES[3:]],
        reward=[
            not_finite,
            also("next_state")(mismatched()),
            reshaped,
            not_a_tensor,
            complex_dtype,
        ],
        gamma=GAMMA,
    ),
)
spec(
    "impl.rl.mdp.MDP.backup",
    valid=lambda: dict(self=STOCHASTIC, v=v2()),
    wrong=dict(v=VALUES),
    call=_method("backup"),
)
spec(
    "impl.rl.mdp.MDP.policy_matrix",
    valid=lambda: dict(self=STOCHASTIC, pi=pi_stochastic()),
    wrong=dict(pi=PROBABILITIES),
    call=_method("policy_matrix"),
)
spec(
    "impl.rl.mdp.MDP.policy_reward",
    valid=lambda: dict(self=STOCHASTIC, pi=pi_stochastic()),
    wrong=dict(pi=PROBABILITIES),
    call=_method("policy_reward"),
)
spec(
    "impl.rl.mdp.MDP.from_dense",
    valid=lambda: dict(
        P=np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.3, 0.7]]]),
        R=np.array([[1.0, 0.0], [-1.0, 2.0]]),
        gamma=0.5,
    ),
    wrong=dict(
        P=DENSE_P,
        R=[not_finite, also("P")(mismatched()), reshaped, not_a_tensor, complex_dtype],
        gamma=GAMMA,
    ),
)
spec(
    "impl.rl.mdp.check_gamma",
    valid=lambda: dict(gamma=0.5),
    wrong=dict(gamma=GAMMA),
)
spec(
    "impl.rl.mdp.check_probabilities",
    valid=lambda: dict(name="p", p=np.array([[0.2, 0.8, 0.0], [1 / 3, 1 / 3, 1 / 3]]), axis=1),
    wrong=dict(
        name=[values(None, 3, "", b"p")],
        p=[not_finite, PROBABILITY_OUT_OF_RANGE, reshaped, empty, not_a_tensor, complex_dtype],
        axis=[also("p")(bad_int(-2, 1))],  # an axis that p lacks: either may be wrong
    ),
)
spec(
    "impl.rl.mdp.check_policy",
    valid=lambda: dict(name="pi", pi=pi_stochastic(), n_states=2, n_actions=2),
    wrong=dict(
        name=[values(None, 3, "", b"pi")],
        pi=PROBABILITIES,
        n_states=[also("pi")(bad_int(1))],
        n_actions=[also("pi")(bad_int(1))],
    ),
)

# --- impl.rl.bellman -----------------------------------------------------------------------

spec(
    "impl.rl.bellman.evaluate",
    valid=lambda: dict(mdp=STOCHASTIC, pi=pi_stochastic()),
    wrong=dict(mdp=[not_an_mdp], pi=PROBABILITIES),
)
spec(
    "impl.rl.bellman.evaluation_sweep",
    valid=lambda: dict(mdp=STOCHASTIC, pi=pi_stochastic(), v=v2()),
    wrong=dict(mdp=[not_an_mdp], pi=PROBABILITIES, v=VALUES),
)
spec(
    "impl.rl.bellman.evaluate_iterative",
    valid=lambda: dict(mdp=STOCHASTIC, pi=pi_stochastic(), sweeps=2, v0=v2()),
    wrong=dict(
        mdp=[not_an_mdp],
        pi=PROBABILITIES,
        sweeps=[bad_int(0)],
        v0=[not_finite, mismatched(), reshaped, empty, not_a_vector, complex_dtype],
    ),
)
spec(
    "impl.rl.bellman.q_from_v",
    valid=lambda: dict(mdp=STOCHASTIC, v=v2()),
    wrong=dict(mdp=[not_an_mdp], v=VALUES),
)
spec(
    "impl.rl.bellman.v_from_q",
    valid=lambda: dict(pi=pi_deterministic(), q=q23()),
    wrong=dict(
        pi=[*PROBABILITIES[:2], also("q")(mismatched()), *PROBABILITIES[3:]],
        q=[not_finite, also("pi")(mismatched()), reshaped, empty, not_a_tensor, complex_dtype],
    ),
)
spec(
    "impl.rl.bellman.optimality_operator",
    valid=lambda: dict(mdp=STOCHASTIC, v=v2()),
    wrong=dict(mdp=[not_an_mdp], v=VALUES),
)

# --- impl.rl.policy ------------------------------------------------------------------------

spec(
    "impl.rl.policy.deterministic",
    valid=lambda: dict(actions=np.array([0, 2, 1]), n_actions=3),
    wrong=dict(
        actions=[outside(0, 2), reshaped, empty, not_finite, not_a_tensor, complex_dtype],
        n_actions=[also("actions")(bad_int(1))],
    ),
)
spec(
    "impl.rl.policy.greedy_actions",
    valid=lambda: dict(q=q23()),
    wrong=dict(q=[not_finite, reshaped, empty, not_a_tensor, complex_dtype]),
)
spec(
    "impl.rl.policy.epsilon_greedy",
    valid=lambda: dict(q=q23(), epsilon=0.2),
    wrong=dict(
        q=[not_finite, reshaped, empty, not_a_tensor, complex_dtype],
        epsilon=[outside(0, 1), not_finite, not_a_number],
    ),
)

# --- impl.rl.dynamic_programming -----------------------------------------------------------

exempt(
    "impl.rl.dynamic_programming.Result",
    "a plain result record (v, actions, iterations, history) that the solvers fill in",
)
spec(
    "impl.rl.dynamic_programming.value_iteration",
    valid=lambda: dict(mdp=STOCHASTIC, v0=v2(), tol=1e-6, max_iter=5),
    wrong=dict(
        mdp=[not_an_mdp],
        v0=[not_finite, mismatched(), reshaped, empty, not_a_vector, complex_dtype],
        tol=[outside(0, None, lo_open=True), not_finite, not_a_number],
        max_iter=[bad_int(1)],
    ),
)
spec(
    "impl.rl.dynamic_programming.tie_tolerance",
    valid=lambda: dict(q=q23()),
    wrong=dict(q=[not_finite, reshaped, empty, not_a_tensor, complex_dtype]),
)
spec(
    "impl.rl.dynamic_programming.improve",
    valid=lambda: dict(q=q23(), current=np.array([0, 2])),
    wrong=dict(
        q=[
            not_finite,
            also("current")(mismatched(axis=0)),
            reshaped,
            empty,
            not_a_tensor,
            complex_dtype,
        ],  # fmt: skip
        current=[
            also("q")(mismatched()),
            outside(0, 2),
            reshaped,
            empty,
            not_finite,
            not_a_tensor,
        ],  # fmt: skip
    ),
)
spec(
    "impl.rl.dynamic_programming.policy_iteration",
    valid=lambda: dict(mdp=STOCHASTIC, actions0=np.array([1, 0]), max_iter=3),
    wrong=dict(
        mdp=[not_an_mdp],
        actions0=[*ACTIONS_OF_2_STATES, outside(0, 1), not_a_vector],
        max_iter=[bad_int(1)],
    ),
)
spec(
    "impl.rl.dynamic_programming.truncated_policy_iteration",
    valid=lambda: dict(mdp=STOCHASTIC, j=2, v0=v2(), tol=1e-6, max_iter=5),
    wrong=dict(
        mdp=[not_an_mdp],
        j=[bad_int(1)],
        v0=[not_finite, mismatched(), reshaped, empty, not_a_vector, complex_dtype],
        tol=[outside(0, None, lo_open=True), not_finite, not_a_number],
        max_iter=[bad_int(1)],
    ),
)

# --- impl.rl.converters --------------------------------------------------------------------


def gymnasium_table():
    return {
        0: {0: [(1.0, 1, 0.0, False)], 1: [(0.5, 0, 1.0, False), (0.5, 1, 0.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(0.25, 0, 2.0, False), (0.75, 0, 2.0, False)]},
    }


BAD_TABLES = (
    None,
    "P",
    5,
    {},
    {0: {}},
    {1: {0: [(1.0, 0, 0.0, False)]}},  # states not numbered from 0
    {0: {0: [(1.0, 0, 0.0, False)]}, 1: {0: [(1.0, 0, 0.0, False)], 1: [(1.0, 0, 0.0, False)]}},
    {0: {0: [(1.0, 5, 0.0, False)]}},  # next state out of range
    {0: {0: [(1.0, -1, 0.0, False)]}},
    {0: {0: [(1.0, 0.5, 0.0, False)]}},  # a non-integer state
    {0: {0: [(0.5, 0, 0.0, False)]}},  # probabilities summing to 0.5
    {0: {0: [(1.5, 0, 0.0, False), (-0.5, 0, 0.0, False)]}},
    {0: {0: [(math.nan, 0, 0.0, False)]}},
    {0: {0: [(1.0, 0, math.inf, False)]}},
    {0: {0: [(1.0, 0, "r", False)]}},
    {0: {0: [(1.0, 0)]}},  # not (p, s', r, terminated)
    {0: {0: []}},
    {0: {0: None}},
    {0: None},
)

spec(
    "impl.rl.converters.from_gymnasium",
    valid=lambda: dict(P=gymnasium_table(), gamma=0.9),
    wrong=dict(P=[values(*BAD_TABLES)], gamma=GAMMA),
)
spec(
    "impl.rl.converters.to_mdptoolbox",
    valid=lambda: dict(mdp=STOCHASTIC, as_sparse=True),
    wrong=dict(mdp=[not_an_mdp], as_sparse=[values(None, "yes", 2, 0.5, np.array([True]))]),
)
spec(
    "impl.rl.converters.from_mdptoolbox",
    valid=lambda: dict(
        P=np.array(
            [
                [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]],
                [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.5]],
            ]
        ),  # fmt: skip
        R=np.array([[1.0, 0.0], [-1.0, 2.0], [0.5, 0.0]]),
        gamma=0.9,
    ),
    wrong=dict(
        P=[*DENSE_P, values([sparse.csr_matrix(np.eye(3)), "x"])],
        R=[not_finite, also("P")(mismatched()), reshaped, empty, not_a_tensor, complex_dtype],
        gamma=GAMMA,
    ),
)

# --- impl.rl.gridworld ---------------------------------------------------------------------

BAD_CELLS = (None, "a", 3, (1,), (1, 2, 3), (0, 1), (3, 1), (1, 4), (1.5, 1), (math.nan, 1),
             (True, 1), ("1", 1))  # fmt: skip

spec(
    "impl.rl.gridworld.GridWorld",
    valid=lambda: dict(
        n_rows=2,
        n_cols=3,
        target=(2, 3),
        forbidden=[(1, 2)],
        r_boundary=-1.0,
        r_forbidden=-1.0,
        r_target=1.0,
        gamma=0.9,
        actions=("up", "right", "stay"),
    ),  # fmt: skip
    wrong=dict(
        n_rows=[also("target", "forbidden")(bad_int(1))],
        n_cols=[also("target", "forbidden")(bad_int(1))],
        target=[values(*BAD_CELLS, (1, 2))],  # (1, 2) is forbidden
        forbidden=[
            values(*((c,) for c in BAD_CELLS), None, 5, "ab"),
            also("target")(values([(2, 3)])),  # the target's cell: either may be named
        ],
        r_boundary=[not_finite, not_a_number],
        r_forbidden=[not_finite, not_a_number],
        r_target=[not_finite, not_a_number],
        gamma=GAMMA,
        actions=[values(("up", "jump"), (), ("up", "up"), None, 5, "up", ("up", None))],
    ),
)
spec(
    "impl.rl.gridworld.GridWorld.state",
    valid=lambda: dict(self=WORLD, cell=(1, 2)),
    wrong=dict(cell=[values(*BAD_CELLS)]),
    call=_method("state"),
)
spec(
    "impl.rl.gridworld.GridWorld.cell",
    valid=lambda: dict(self=WORLD, s=1),
    wrong=dict(s=[bad_int(0, 1)]),
    call=_method("cell"),
)
spec(
    "impl.rl.gridworld.GridWorld.render_values",
    valid=lambda: dict(self=WORLD, v=np.array([1.0, 2.5]), decimals=2),
    # nan is a legitimate value here (an every-visit estimate where no episode went)
    wrong=dict(
        v=[mismatched(), reshaped, empty, not_a_tensor, complex_dtype], decimals=[bad_int(0, 20)]
    ),  # fmt: skip
    call=_method("render_values"),
)
spec(
    "impl.rl.gridworld.GridWorld.render_policy",
    valid=lambda: dict(self=WORLD, actions=np.array([2, 0])),
    wrong=dict(actions=[mismatched(), outside(0, 2), reshaped, empty, not_finite, not_a_tensor]),
    call=_method("render_policy"),
)
spec(
    "impl.rl.gridworld.example_5x5",
    valid=lambda: dict(gamma=0.5, r_forbidden=-10.0),
    wrong=dict(gamma=GAMMA, r_forbidden=[not_finite, not_a_number]),
)
for _example in ("example_2x2", "example_3x3", "example_1x2"):
    spec(f"impl.rl.gridworld.{_example}", valid=lambda: dict(gamma=0.5), wrong=dict(gamma=GAMMA))

# --- impl.rl.monte_carlo -------------------------------------------------------------------

exempt(
    "impl.rl.monte_carlo.MCResult",
    "a plain result record (q, actions, iterations, steps) that the MC methods fill in",
)
spec(
    "impl.rl.monte_carlo.Sampler",
    valid=lambda: dict(mdp=STOCHASTIC, rng=np.random.default_rng(0)),
    wrong=dict(mdp=[not_an_mdp], rng=[not_a_generator]),
)
spec(
    "impl.rl.monte_carlo.Sampler.episode",
    valid=lambda: dict(
        self=monte_carlo.Sampler(STOCHASTIC, np.random.default_rng(0)),
        pi=pi_stochastic(),
        s0=1,
        a0=0,
        length=3,
    ),
    wrong=dict(
        pi=PROBABILITIES,
        s0=[bad_int(0, 1)],
        a0=[bad_int(0, 1)],
        length=[bad_int(1)],
    ),
    call=_method("episode"),
)
spec(
    "impl.rl.monte_carlo.returns",
    valid=lambda: dict(rewards=np.array([1.0, -2.0, 0.5]), gamma=0.9),
    wrong=dict(
        rewards=[not_finite, reshaped, not_a_tensor, complex_dtype],
        gamma=[outside(0, 1), not_finite, not_a_number],
    ),
)
spec(
    "impl.rl.monte_carlo.mc_basic",
    valid=lambda: dict(
        mdp=DETERMINISTIC,
        episodes_per_pair=1,
        length=2,
        rng=np.random.default_rng(0),
        actions0=np.array([0, 1]),
        max_iter=2,
    ),  # fmt: skip
    wrong=dict(
        mdp=[not_an_mdp],
        episodes_per_pair=[bad_int(1)],
        length=[bad_int(1)],
        rng=[not_a_generator],
        actions0=[*ACTIONS_OF_2_STATES, outside(0, 2), not_a_vector],
        max_iter=[bad_int(1)],
    ),
)
spec(
    "impl.rl.monte_carlo.mc_exploring_starts",
    valid=lambda: dict(
        mdp=DETERMINISTIC,
        n_episodes=3,
        length=2,
        rng=np.random.default_rng(0),
        actions0=np.array([0, 1]),
    ),  # fmt: skip
    wrong=dict(
        mdp=[not_an_mdp],
        n_episodes=[bad_int(1)],
        length=[bad_int(1)],
        rng=[not_a_generator],
        actions0=[*ACTIONS_OF_2_STATES, outside(0, 2), not_a_vector],
    ),
)
spec(
    "impl.rl.monte_carlo.mc_epsilon_greedy",
    valid=lambda: dict(
        mdp=STOCHASTIC, epsilon=0.3, n_episodes=3, length=2, rng=np.random.default_rng(0)
    ),
    wrong=dict(
        mdp=[not_an_mdp],
        epsilon=[outside(0, 1), not_finite, not_a_number],
        n_episodes=[bad_int(1)],
        length=[bad_int(1)],
        rng=[not_a_generator],
    ),
)

BAD_EPISODES = (
    None,
    "ab",
    5,
    [([0, 5], [1.0, 2.0])],  # a state out of range
    [([0, -1], [1.0, 2.0])],
    [([0, 1], [1.0])],  # lengths differ
    [([0.5, 1], [1.0, 2.0])],  # a non-integer state
    [([0, 1], [math.nan, 1.0])],
    [([0, 1], [1.0, math.inf])],
    [([0, 1], ["a", "b"])],
    [(0, 1.0)],
    [([[0, 1]], [[1.0, 2.0]])],
    [([0, 1],)],
    [None],
)
for _estimator in ("first_visit_values", "every_visit_values"):
    spec(
        f"impl.rl.monte_carlo.{_estimator}",
        valid=lambda: dict(
            episodes=[([0, 1, 0], [1.0, 2.0, 3.0]), (np.array([2]), np.array([0.5]))],
            gamma=0.9,
            n_states=3,
        ),
        wrong=dict(
            episodes=[values(*BAD_EPISODES)],
            gamma=[outside(0, 1), not_finite, not_a_number],
            n_states=[also("episodes")(bad_int(1))],
        ),
    )
spec(
    "impl.rl.monte_carlo.every_visit_limit",
    valid=lambda: dict(mdp=DETERMINISTIC, actions=np.array([2, 0]), length=3),
    wrong=dict(
        mdp=[not_an_mdp, values(STOCHASTIC)],
        actions=[*ACTIONS_OF_2_STATES, outside(0, 2), not_a_tensor],
        length=[bad_int(1)],
    ),
)
spec(
    "impl.rl.monte_carlo.best_epsilon_greedy",
    valid=lambda: dict(mdp=STOCHASTIC, epsilon=0.1, max_iter=3),
    wrong=dict(
        mdp=[not_an_mdp],
        epsilon=[outside(0, 1), not_finite, not_a_number],
        max_iter=[bad_int(1)],
    ),
)
