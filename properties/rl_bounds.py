"""Error bounds for computed state values, from the contraction of the Bellman operators.

For a policy pi, T_pi v = r_pi + gamma P_pi v is a gamma-contraction in the max norm with fixed
point v_pi, so for any v:   ||v - v_pi|| <= ||T_pi v - v|| / (1 - gamma)   (and the same with the
optimality operator T and v*). The residual is computed in float64: each entry of a backup sums
K outcomes, so it is off by at most (K + 3) u (max|r| + ||v||) (u = 2^-53), which is added.
"""

import numpy as np

from impl.rl import bellman

U = 2.0**-53


def _rounding(mdp, v):
    return (mdp.next_state.shape[2] + 3) * U * (np.abs(mdp.reward).max() + np.abs(v).max())


def policy_value_bound(mdp, pi, v):
    """Bound on ||v - v_pi||_inf."""
    residual = np.abs(bellman.evaluation_sweep(mdp, pi, v) - v).max()
    return (residual + _rounding(mdp, v)) / (1 - mdp.gamma)


def optimal_value_bound(mdp, v):
    """Bound on ||v - v*||_inf."""
    residual = np.abs(bellman.optimality_operator(mdp, v)[0] - v).max()
    return (residual + _rounding(mdp, v)) / (1 - mdp.gamma)
