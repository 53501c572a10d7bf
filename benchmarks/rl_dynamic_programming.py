"""Tabular RL (impl/rl): value and policy iteration on the book's grid world, ours against
pymdptoolbox (given its sparse input), side by side; and Monte Carlo episode generation.

Grid: side x side cells, target in the middle, a diagonal of forbidden cells, the book's rewards,
gamma = 0.9 (10,000 states at side 100). pymdptoolbox's ValueIteration runs with epsilon = 1e-8;
its PolicyIteration (exact evaluation by a dense solve) is not run above side 60, where one run
takes minutes (side 60: 58 iterations, 38 s on this machine).
"""

import time

import numpy as np

from impl.rl import converters, monte_carlo
from impl.rl.dynamic_programming import policy_iteration, value_iteration
from impl.rl.gridworld import GridWorld

SIDES = [5, 20, 60, 100]
TOL = 1e-8


def grid(side):
    middle = side // 2 + 1
    forbidden = [(i, i) for i in range(1, side + 1) if (i, i) != (middle, middle) and i % 3]
    return GridWorld(side, side, (middle, middle), forbidden, gamma=0.9)


def solve(mdp, toolbox, implementation, method):
    if implementation == "ours":
        if method == "value iteration":
            return value_iteration(mdp, tol=TOL).iterations
        return policy_iteration(mdp).iterations
    import mdptoolbox.mdp

    P, R = toolbox
    run = (
        mdptoolbox.mdp.ValueIteration(P, R, mdp.gamma, epsilon=TOL)
        if method == "value iteration"
        else mdptoolbox.mdp.PolicyIteration(P, R, mdp.gamma)
    )
    run.run()
    return run.iter


class DynamicProgramming:
    params = (SIDES, ["ours", "pymdptoolbox"], ["value iteration", "policy iteration"])
    param_names = ["side", "implementation", "method"]
    timeout = 900
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, side, implementation, method):
        if implementation == "pymdptoolbox" and method == "policy iteration" and side > 60:
            raise NotImplementedError("pymdptoolbox PolicyIteration takes minutes above side 60")
        import warnings

        warnings.filterwarnings("ignore")  # pymdptoolbox's sparse-comparison warnings
        self.mdp = grid(side).mdp()
        self.toolbox = converters.to_mdptoolbox(self.mdp, as_sparse=True)

    def time_solve(self, side, implementation, method):
        solve(self.mdp, self.toolbox, implementation, method)

    def peakmem_solve(self, side, implementation, method):
        solve(self.mdp, self.toolbox, implementation, method)

    def track_iterations(self, side, implementation, method):
        """Sweeps (value iteration, to ||v_{k+1} - v_k|| <= 1e-8 for ours) or policy updates."""
        return solve(self.mdp, self.toolbox, implementation, method)

    track_iterations.unit = "iterations"


class SweepBandwidth:
    """One value-iteration sweep against the time to stream the bytes it touches once (its six
    passes over S x A numbers: outcome indices, rewards, gathered values, q, max, argmax)."""

    params = [SIDES]
    param_names = ["side"]

    def setup(self, side):
        from impl.rl.bellman import optimality_operator

        self.mdp = grid(side).mdp()
        self.sweep = optimality_operator
        self.v = np.zeros(self.mdp.n_states)
        self.buffer = np.ones(6 * self.mdp.n_states * self.mdp.n_actions)

    def time_sweep(self, side):
        self.sweep(self.mdp, self.v)

    def time_stream_same_bytes(self, side):
        self.buffer.sum()

    def track_sweep_over_stream(self, side):
        def best(f, n=50):
            times = []
            for _ in range(n):
                t = time.perf_counter()
                f()
                times.append(time.perf_counter() - t)
            return min(times)

        return best(lambda: self.sweep(self.mdp, self.v)) / best(self.buffer.sum)

    track_sweep_over_stream.unit = "ratio"


class EpisodeGeneration:
    """Monte Carlo episodes on the grid under the uniform random policy: environment steps/s."""

    params = [[5, 20]]
    param_names = ["side"]

    def setup(self, side):
        self.mdp = grid(side).mdp()
        self.pi = np.full((self.mdp.n_states, self.mdp.n_actions), 1 / self.mdp.n_actions)

    def _run(self):
        sampler = monte_carlo.Sampler(self.mdp, np.random.default_rng(0))
        for e in range(200):
            sampler.episode(self.pi, e % self.mdp.n_states, 0, 100)
        return sampler.steps

    def time_200_episodes_of_100_steps(self, side):
        self._run()

    def track_steps_per_second(self, side):
        t = time.perf_counter()
        steps = self._run()
        return steps / (time.perf_counter() - t)

    track_steps_per_second.unit = "steps/s"
