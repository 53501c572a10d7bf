"""Family `rl` (tabular RL): the functions its properties call, on impl.rl.mdp.MDP models.

Interface (see impl/rl for the equations):
    evaluate(mdp, pi) -> v_pi                      evaluate_iterative(mdp, pi, sweeps, v0)
    q_from_v(mdp, v) -> q                          v_from_q(pi, q) -> v = sum_a pi(a|s) q(s, a)
    optimality_operator(mdp, v) -> (T v, actions)
    value_iteration(mdp, v0, tol) -> Result        policy_iteration(mdp, actions0) -> Result
    truncated_policy_iteration(mdp, j, v0, tol) -> Result
    returns(rewards, gamma) -> discounted returns   mc_basic(mdp, episodes_per_pair, length, rng)
    mc_exploring_starts(mdp, n_episodes, length, rng, actions0) -> MCResult (every visit, starts
        cycling through every (s, a))
    mc_epsilon_greedy(mdp, epsilon, n_episodes, length, rng) -> MCResult (every visit, random
        starts, epsilon-greedy behaviour)
    every_visit_limit(mdp, actions, length) -> the (S, A) every-visit average MC Exploring Starts
        tends to under a fixed policy (deterministic MDP, one episode per start)
    best_epsilon_greedy(mdp, epsilon) -> (actions mu, v): the best policy of the epsilon-greedy
        class, the limit of mc_epsilon_greedy
    first_visit_values(episodes, gamma, n_states), every_visit_values(...) -> v estimates from
        (states, rewards) episodes of a Markov reward process (nan where unvisited)
    greedy_actions(q) -> argmax_a q(s, a) per state (lowest index among ties)
    epsilon_greedy(q, epsilon) -> (S, A) policy: 1 - eps (|A| - 1)/|A| on the greedy action,
        eps/|A| elsewhere (exact for Fractions)
MCResult (impl/rl/monte_carlo.py) has .q, .actions, .iterations and .steps (transitions drawn);
the MC algorithms draw their episodes from impl.rl.monte_carlo.Sampler, the environment (a tool,
TOOLS below), which the MC-04/06 properties instrument to see the policies followed.
Results have .v, .actions, .iterations and .history (impl/rl/dynamic_programming.py): value
iteration stops once a sweep moves v by at most `tol` in the max norm; policy iteration's
history is the sequence of policies it evaluated (iterations = len(history)).
Inputs are float64 numpy arrays; pi is an (S, A) stochastic matrix; gamma lies in [0, 1).

Peers (PEERS below): pymdptoolbox 4.0b3 (`mdptoolbox`) and its maintained fork mdptoolbox-hiive
4.0.3.1 (`mdptoolbox-hiive`, module hiive.mdptoolbox.mdp, same API), through the converters.
"""

import importlib

import numpy as np

from impl.rl import bellman, converters, monte_carlo, policy
from impl.rl import dynamic_programming as dp
from properties.adapters import Peer, late


class Reference:
    """The project's implementation, impl/rl."""

    evaluate = staticmethod(bellman.evaluate)
    evaluate_iterative = staticmethod(bellman.evaluate_iterative)
    q_from_v = staticmethod(bellman.q_from_v)
    v_from_q = staticmethod(bellman.v_from_q)
    optimality_operator = staticmethod(bellman.optimality_operator)
    value_iteration = staticmethod(dp.value_iteration)
    policy_iteration = staticmethod(dp.policy_iteration)
    truncated_policy_iteration = staticmethod(dp.truncated_policy_iteration)

    # looked up at call time: the rejected variants of MC-* patch these in impl
    returns = late(monte_carlo, "returns")
    mc_basic = late(monte_carlo, "mc_basic")
    mc_exploring_starts = late(monte_carlo, "mc_exploring_starts")
    mc_epsilon_greedy = late(monte_carlo, "mc_epsilon_greedy")
    every_visit_limit = late(monte_carlo, "every_visit_limit")
    best_epsilon_greedy = late(monte_carlo, "best_epsilon_greedy")
    first_visit_values = late(monte_carlo, "first_visit_values")
    every_visit_values = late(monte_carlo, "every_visit_values")
    greedy_actions = late(policy, "greedy_actions")
    epsilon_greedy = late(policy, "epsilon_greedy")


class MDPToolbox(Reference):
    """pymdptoolbox: its ValueIteration, PolicyIteration (matrix evaluation) and the Bellman
    optimality operator of its MDP class (`_bellmanOperator`, the one both solvers apply).

    value_iteration(mdp, v0, tol): ValueIteration(initial_value=v0, epsilon = tol gamma /
    (1 - gamma)), so that its own stopping threshold epsilon (1 - gamma) / gamma equals tol; it
    compares tol with the *span* max - min of V_{k+1} - V_k, not its max norm, and replaces
    max_iter with a bound of its own (`_boundIter`). policy_iteration(mdp, actions0):
    PolicyIteration(policy0=actions0); its history records the policy at each evaluation.
    evaluate, evaluate_iterative, q_from_v, v_from_q, truncated_policy_iteration, the Monte
    Carlo functions and the policies (greedy, epsilon-greedy) stay the reference's: the library
    has no evaluation of a stochastic policy, no q from v, no Monte Carlo methods, and its
    PolicyIterationModified evaluates to a tolerance, not j sweeps.

    An exception the library raises on a valid model (gamma = 0 is refused, ValueIteration
    divides by a zero span) is re-raised as an AssertionError naming the library: the claim
    fails for the library, and its minimal case is the audit's counterexample."""

    module = "mdptoolbox.mdp"
    library = "pymdptoolbox"

    @classmethod
    def _mdp_module(cls):
        return importlib.import_module(cls.module)  # lazily: collection must not need it

    @classmethod
    def _call(cls, what, run):
        try:
            return run()
        except AssertionError as e:
            raise AssertionError(f"{cls.library} {what}: {e}") from e
        except Exception as e:  # noqa: BLE001 -- a crash on valid input is the library's failure
            raise AssertionError(f"{cls.library} {what} raised {type(e).__name__}: {e}") from e

    @classmethod
    def optimality_operator(cls, mdp, v):
        M = cls._mdp_module()
        P, R = converters.to_mdptoolbox(mdp)
        v = np.asarray(v, dtype=float)

        def run():
            model = M.MDP(P, R, mdp.gamma, None, None)
            actions, tv = model._bellmanOperator(v)
            return np.asarray(tv, dtype=float), np.asarray(actions)

        return cls._call("MDP._bellmanOperator", run)

    @classmethod
    def policy_iteration(cls, mdp, actions0=None, max_iter=10_000):
        M = cls._mdp_module()
        P, R = converters.to_mdptoolbox(mdp)
        history = []

        class Recorded(M.PolicyIteration):
            def _evalPolicyMatrix(self):
                history.append(np.array(self.policy, dtype=int))
                return super()._evalPolicyMatrix()

        def run():
            solver = Recorded(P, R, mdp.gamma, policy0=actions0, max_iter=max_iter)
            solver.run()
            return solver

        solver = cls._call("PolicyIteration", run)
        return dp.Result(np.array(solver.V), np.array(solver.policy), solver.iter, history)

    @classmethod
    def value_iteration(cls, mdp, v0=None, tol=1e-10, max_iter=100_000):
        M = cls._mdp_module()
        P, R = converters.to_mdptoolbox(mdp)
        g = mdp.gamma
        # its threshold epsilon (1 - g) / g is then tol (or the least it can be, when tol g
        # underflows: the smallest positive epsilon)
        epsilon = max(tol * g / (1 - g), np.nextafter(0.0, 1.0)) if 0 < g < 1 else tol
        start = 0 if v0 is None else [float(x) for x in np.asarray(v0, dtype=float)]

        def run():
            solver = M.ValueIteration(P, R, g, epsilon=epsilon, max_iter=max_iter,
                                      initial_value=start)  # fmt: skip
            solver.run()
            return solver

        solver = cls._call("ValueIteration", run)
        return dp.Result(np.array(solver.V), np.array(solver.policy), solver.iter)


class MDPToolboxHiive(MDPToolbox):
    """mdptoolbox-hiive, the maintained fork of pymdptoolbox (module hiive.mdptoolbox.mdp, the
    same classes and arguments; installed without its dependencies, gym and ipython, which that
    module does not import). Everything as MDPToolbox."""

    module = "hiive.mdptoolbox.mdp"
    library = "mdptoolbox-hiive"


# impl code the properties use that no adapter replaces: models, the environment, encodings and
# the tie tolerance their bounds state (properties/bypass.py)
TOOLS = {
    "impl.rl.mdp.MDP": "the tabular model (next states, probabilities, rewards, gamma) that "
    "inputs are built in",
    "impl.rl.gridworld": "the book's grid worlds, models the algorithms run on "
    "(test_grid_world_model_follows_the_books_rule checks them against the book's rule)",
    "impl.rl.converters.from_gymnasium": "reads gymnasium's FrozenLake table into an MDP: an input",
    "impl.rl.policy.deterministic": "writes actions mu(s) as the 0/1 (S, A) policy matrix fed in",
    "impl.rl.monte_carlo.Sampler": "the environment: draws episodes of an MDP under a policy "
    "(its laws: test_sampler_draws_transitions_and_actions_from_their_laws); MC-04/06 record "
    "through it the episodes an algorithm draws",
    "impl.rl.dynamic_programming.TIE": "the relative tie tolerance of impl's greedy steps, a "
    "slack the bounds state (rl_bounds.py, MC-02/04/06)",
    "impl.rl.dynamic_programming.tie_tolerance": "the tie tolerance of a q table: MC-06's slack",
    "impl.rl.dynamic_programming.improve": "the greedy step (keeping the current action within "
    "the tie tolerance) that MC-04.short-episodes applies to every_visit_limit to follow MC ES",
}

ADAPTERS = {"reference": Reference, "mdptoolbox": MDPToolbox, "mdptoolbox-hiive": MDPToolboxHiive}

_CLAIMS = ("RL-03", "RL-04", "RL-05", "RL-06", "RL-07")
_NOT_ASKED = {
    "RL-01": "no evaluation of a given (stochastic) policy: PolicyIteration evaluates only its "
    "own deterministic policies, internally",
    "RL-02": "no q from v and no v from q: its Q table is internal to the Bellman operator",
    "RL-08": "no evaluation of a given policy (the claim's property evaluates a stochastic "
    "policy that stays at the target)",
}
PEERS = {
    "mdptoolbox": Peer(library="pymdptoolbox", claims=_CLAIMS, not_asked=_NOT_ASKED),
    "mdptoolbox-hiive": Peer(library="mdptoolbox-hiive", claims=_CLAIMS, not_asked=_NOT_ASKED),
}
