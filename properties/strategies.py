"""Hypothesis strategies shared by the properties."""

from fractions import Fraction

import numpy as np
from hypothesis import strategies as st


class Seed(int):
    """A seed drawn by Hypothesis; it prints as Seed(n) in counterexamples."""

    def __repr__(self):
        return f"Seed({int(self)})"

    def numpy(self):
        return np.random.default_rng(int(self))

    def torch(self):
        import torch

        return torch.Generator().manual_seed(int(self))


seeds = st.integers(0, 2**32 - 1).map(Seed)


def floats(lo, hi, **kw):
    """Finite floats in [lo, hi]."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **kw)


def exact_numbers(bound=10**6):
    """Rationals p/q: exact arithmetic references."""
    return st.builds(Fraction, st.integers(-bound, bound), st.integers(1, 1000))


class RandomMDP:
    """Parameters of a random finite MDP; .mdp() builds it (numpy from the seed), and the
    parameters print in counterexamples."""

    def __init__(self, n_states, n_actions, n_outcomes, gamma, reward_scale, seed):
        self.n_states, self.n_actions, self.n_outcomes = n_states, n_actions, n_outcomes
        self.gamma, self.reward_scale, self.seed = gamma, reward_scale, seed

    def __repr__(self):
        return (f"RandomMDP(n_states={self.n_states}, n_actions={self.n_actions}, "
                f"n_outcomes={self.n_outcomes}, gamma={self.gamma}, "
                f"reward_scale={self.reward_scale}, seed={self.seed})")  # fmt: skip

    def mdp(self):
        from impl.rl.mdp import MDP

        rng = np.random.default_rng(self.seed)
        S, A, K = self.n_states, self.n_actions, self.n_outcomes
        next_state = np.stack(
            [[rng.choice(S, size=K, replace=False) for _ in range(A)] for _ in range(S)]
        )
        prob = rng.dirichlet(np.ones(K), size=(S, A))
        reward = self.reward_scale * rng.uniform(-1, 1, (S, A, K))
        return MDP(next_state, prob, reward, self.gamma)


def random_mdps(max_states=30, max_actions=5, max_gamma=0.95, deterministic=False):
    """Random MDPs: up to `max_states` states and `max_actions` actions, gamma <= max_gamma."""
    return st.integers(1, max_states).flatmap(
        lambda S: st.builds(
            RandomMDP,
            st.just(S),
            st.integers(1, max_actions),
            st.just(1) if deterministic else st.integers(1, S),
            floats(0.0, max_gamma),
            st.sampled_from([1.0, 10.0, 0.01]),
            st.integers(0, 2**32 - 1),
        )
    )


def grid_worlds(max_side=6, max_gamma=0.95):
    """Random grid worlds of the book's kind: any size, target, forbidden cells and rewards."""
    from impl.rl.gridworld import GridWorld

    @st.composite
    def build(draw):
        rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
        cells = [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]
        target = draw(st.sampled_from(cells))
        others = [c for c in cells if c != target]
        forbidden = draw(st.lists(st.sampled_from(others), unique=True)) if others else []
        rewards = st.sampled_from([-10.0, -1.0, 0.0, 1.0])
        return GridWorld(
            rows, cols, target, forbidden,
            r_boundary=draw(rewards), r_forbidden=draw(rewards),
            r_target=draw(st.sampled_from([1.0, 2.0, 0.5])), gamma=draw(floats(0.0, max_gamma)),
        )  # fmt: skip

    return build()
