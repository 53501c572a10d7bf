"""Family `rl` (tabular RL): the functions its properties call, on impl.rl.mdp.MDP models.

Interface (see impl/rl for the equations):
    evaluate(mdp, pi) -> v_pi                      evaluate_iterative(mdp, pi, sweeps, v0)
    q_from_v(mdp, v) -> q                          optimality_operator(mdp, v) -> (T v, actions)
    value_iteration(mdp, v0, tol) -> Result        policy_iteration(mdp) -> Result
    truncated_policy_iteration(mdp, j, v0, tol) -> Result
Results have .v, .actions, .iterations and .history (impl/rl/dynamic_programming.py).
`mdptoolbox` runs pymdptoolbox's PolicyIteration and ValueIteration through the converters.
"""

import numpy as np

from impl.rl import bellman, converters
from impl.rl import dynamic_programming as dp


class Reference:
    """The project's implementation, impl/rl."""

    evaluate = staticmethod(bellman.evaluate)
    evaluate_iterative = staticmethod(bellman.evaluate_iterative)
    q_from_v = staticmethod(bellman.q_from_v)
    optimality_operator = staticmethod(bellman.optimality_operator)
    value_iteration = staticmethod(dp.value_iteration)
    policy_iteration = staticmethod(dp.policy_iteration)
    truncated_policy_iteration = staticmethod(dp.truncated_policy_iteration)


class MDPToolbox(Reference):
    """pymdptoolbox (PolicyIteration, ValueIteration with its default epsilon = 0.01)."""

    @staticmethod
    def policy_iteration(mdp, actions0=None, max_iter=10_000):
        import mdptoolbox.mdp

        P, R = converters.to_mdptoolbox(mdp)
        run = mdptoolbox.mdp.PolicyIteration(P, R, mdp.gamma, max_iter=max_iter)
        run.run()
        return dp.Result(np.array(run.V), np.array(run.policy), run.iter)

    @staticmethod
    def value_iteration(mdp, v0=None, tol=1e-10, max_iter=100_000):
        import mdptoolbox.mdp

        P, R = converters.to_mdptoolbox(mdp)
        run = mdptoolbox.mdp.ValueIteration(P, R, mdp.gamma, max_iter=max_iter)
        run.run()
        return dp.Result(np.array(run.V), np.array(run.policy), run.iter)


ADAPTERS = {"reference": Reference, "mdptoolbox": MDPToolbox}
