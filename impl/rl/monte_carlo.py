"""Monte Carlo reinforcement learning (seed article 9; Zhao, ch. 5). All randomness comes from an
explicit numpy Generator.

Episode of length L from (s_0, a_0) following pi: s_0, a_0, r_1, s_1, a_1, r_2, ..., r_L.
(1) returns, backwards   g_L = 0,  g_t = r_{t+1} + gamma g_{t+1}
(2) MC Basic             policy iteration with q_{pi_k}(s, a) estimated by the mean initial-visit
                         return of n episodes started at every (s, a); pi_{k+1} = greedy(q).
(3) MC Exploring Starts  episodes from starting pairs that cover every (s, a); every visit
                         (s_t, a_t) adds g_t (computed backwards) to Returns(s_t, a_t),
                         q(s_t, a_t) = mean Returns, and pi(s_t) = argmax_a q(s_t, a); the
                         first policy is actions0 (action 0 everywhere by default).
(4) MC epsilon-Greedy    as (3) from arbitrary starts, with pi(.|s_t) = epsilon-greedy(q(s_t, .)):
                         converges to the best policy within the epsilon-greedy class.
(5) estimators of v from episodes of a Markov reward process (lists of states and rewards):
    first-visit  mean over episodes of g at the first visit to s            (unbiased)
    every-visit  (sum of g over every visit to s) / (number of visits)       (biased, consistent)
(6) every_visit_limit: what (3) averages towards for a fixed policy on a deterministic MDP.
(7) best_epsilon_greedy: the limit of (4), by policy iteration within the epsilon-greedy class.
"""

from dataclasses import dataclass

import numpy as np

from impl import _checks
from impl.rl import policy
from impl.rl.dynamic_programming import TIE, improve
from impl.rl.mdp import PROB_TOL, _actions, _check_mdp, _real_array


class Sampler:
    """Draws transitions of an MDP and actions of a policy from one Generator."""

    def __init__(self, mdp, rng):
        """mdp an impl.rl.mdp.MDP, rng a numpy Generator."""
        _check_mdp(mdp)
        _checks.rng("rng", rng)
        self.mdp, self.rng = mdp, rng
        self.deterministic = bool(np.all((mdp.prob == 1) | (mdp.prob == 0)))
        self.only = np.argmax(mdp.prob, axis=2)  # the outcome of a deterministic (s, a)
        self.cum = np.cumsum(mdp.prob, axis=2)
        self.steps = 0  # transitions drawn so far

    def episode(self, pi, s0, a0, length):
        """(states, actions, rewards) of one episode of `length` >= 1 steps from the state s0 and
        action a0 (indices); pi is an (S, A) matrix with rows on the simplex."""
        mdp, rng = self.mdp, self.rng
        pi = _real_array("pi", pi, 2)
        if pi.shape != (mdp.n_states, mdp.n_actions):
            raise ValueError(f"pi: expected shape {(mdp.n_states, mdp.n_actions)}, got {pi.shape}")
        cum_pi = np.cumsum(pi, axis=1)  # rows on the simplex: checked on the sums, cheaply
        if pi.min() < 0 or np.any(np.abs(cum_pi[:, -1] - 1) > PROB_TOL):
            raise ValueError("pi: each row must hold probabilities summing to 1")
        s0 = _index("s0", s0, mdp.n_states)
        a0 = _index("a0", a0, mdp.n_actions)
        _checks.positive_int("length", length)
        greedy = np.argmax(pi, axis=1) if np.all(pi.max(axis=1) == 1) else None
        u = rng.random((length, 2))
        states = np.empty(length, dtype=np.intp)
        actions = np.empty(length, dtype=np.intp)
        rewards = np.empty(length)
        s, a = s0, a0
        for t in range(length):
            states[t], actions[t] = s, a
            if self.deterministic:
                k = self.only[s, a]
            else:  # min() guards u against rounding of the last cumulative probability
                k = min(
                    int(np.searchsorted(self.cum[s, a], u[t, 0], "right")), self.cum.shape[2] - 1
                )
            rewards[t] = mdp.reward[s, a, k]
            s = mdp.next_state[s, a, k]
            if greedy is not None:
                a = greedy[s]
            else:
                a = min(int(np.searchsorted(cum_pi[s], u[t, 1], "right")), mdp.n_actions - 1)
        self.steps += length
        return states, actions, rewards


def _index(name, i, n):
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
        raise ValueError(f"{name}: must be an index in [0, {n - 1}], got {i!r:.60}")
    return int(i)


def returns(rewards, gamma):
    """(1): g_0..g_{L-1} of a reward sequence r_1..r_L (finite, 1-D, possibly empty), computed
    backwards; gamma in [0, 1]."""
    gamma = _checks.scalar("gamma", gamma, 0, 1, exact=True)
    if not (isinstance(rewards, np.ndarray | list | tuple) and np.ndim(rewards) == 1):
        raise ValueError(f"rewards: expected a 1-D sequence of numbers, got {rewards!r:.60}")
    if len(rewards) > 0:
        rewards = _real_array("rewards", rewards, 1).tolist()
    g = np.empty(len(rewards))
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = rewards[t] + gamma * acc
        g[t] = acc
    return g


@dataclass
class MCResult:
    q: np.ndarray  # estimated action values
    actions: np.ndarray  # the greedy actions of the final policy
    iterations: int  # policy updates (MC Basic) or episodes (MC ES, MC epsilon-greedy)
    steps: int  # environment transitions drawn


def mc_basic(mdp, episodes_per_pair, length, rng, actions0=None, max_iter=1000):
    """(2): until the greedy policy is stable (or max_iter >= 1 iterations); episodes_per_pair and
    length >= 1, rng a numpy Generator, actions0 one action per state (0 everywhere if None)."""
    _check_mdp(mdp)
    _checks.positive_int("episodes_per_pair", episodes_per_pair)
    _checks.positive_int("length", length)
    _checks.rng("rng", rng)
    _checks.positive_int("max_iter", max_iter)
    sampler = Sampler(mdp, rng)
    S, A = mdp.n_states, mdp.n_actions
    actions = np.zeros(S, dtype=int) if actions0 is None else _actions("actions0", actions0, S, A)
    for k in range(1, max_iter + 1):
        pi = policy.deterministic(actions, A)
        q = np.zeros((S, A))
        for s in range(S):
            for a in range(A):
                g = [returns(sampler.episode(pi, s, a, length)[2], mdp.gamma)[0]
                     for _ in range(episodes_per_pair)]  # fmt: skip
                q[s, a] = np.mean(g)
        new = improve(q, actions)
        if np.array_equal(new, actions):
            break
        actions = new
    return MCResult(q, actions, k, sampler.steps)


def _every_visit_control(mdp, n_episodes, length, rng, epsilon, starts, actions0=None):
    """(3) for epsilon = None (greedy policy), (4) otherwise; the first policy is actions0 (all
    action 0 by default), made epsilon-greedy for (4) (uniform where nothing is learnt yet)."""
    _check_mdp(mdp)
    _checks.positive_int("n_episodes", n_episodes)
    _checks.positive_int("length", length)
    _checks.rng("rng", rng)
    if epsilon is not None:
        epsilon = _checks.scalar("epsilon", epsilon, 0, 1, exact=True)
    sampler = Sampler(mdp, rng)
    S, A = mdp.n_states, mdp.n_actions
    # Python lists of floats in the loop over visits (the same IEEE arithmetic as numpy scalars,
    # several times faster); pi(.|s) is rewritten after each episode for the states it visited.
    total = [[0.0] * A for _ in range(S)]
    count = [[0] * A for _ in range(S)]
    q = [[0.0] * A for _ in range(S)]
    actions = np.zeros(S, dtype=int) if actions0 is None else _actions("actions0", actions0, S, A)
    pi = np.full((S, A), 1.0 / A) if epsilon is not None else policy.deterministic(actions, A)
    actions = actions.tolist()
    for e in range(n_episodes):
        s0, a0 = starts(e)
        states, acts, rewards = sampler.episode(pi, s0, a0, length)
        g = returns(rewards, mdp.gamma).tolist()
        states, acts = states.tolist(), acts.tolist()
        for t in range(length - 1, -1, -1):
            s, a = states[t], acts[t]
            total[s][a] += g[t]
            count[s][a] += 1
            q[s][a] = total[s][a] / count[s][a]
            best = max(q[s])
            if q[s][actions[s]] < best - TIE * max(1.0, abs(best)):  # greedy, keeping ties
                actions[s] = q[s].index(best)
        for s in set(states):
            if epsilon is None:
                pi[s] = 0.0
                pi[s, actions[s]] = 1.0
            else:
                pi[s] = epsilon / A
                pi[s, actions[s]] = 1 - epsilon * (A - 1) / A
    return MCResult(np.array(q), np.array(actions), n_episodes, sampler.steps)


def mc_exploring_starts(mdp, n_episodes, length, rng, actions0=None):
    """(3): starting pairs cycle through every (s, a) in a random order, reshuffled each cycle;
    actions0 (one action per state) is the first policy, action 0 everywhere by default."""
    _check_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    order = []

    def starts(e):
        if e % (S * A) == 0:
            order[:] = rng.permutation(S * A)
        return divmod(int(order[e % (S * A)]), A)

    return _every_visit_control(mdp, n_episodes, length, rng, None, starts, actions0)


def mc_epsilon_greedy(mdp, epsilon, n_episodes, length, rng):
    """(4): episodes start at uniformly random (s, a); epsilon in [0, 1]."""
    _check_mdp(mdp)
    epsilon = _checks.scalar("epsilon", epsilon, 0, 1, exact=True)
    S, A = mdp.n_states, mdp.n_actions
    return _every_visit_control(
        mdp, n_episodes, length, rng, epsilon, lambda e: divmod(int(rng.integers(S * A)), A)
    )


def _episode_returns(episodes, gamma, n_states):
    """(states, returns) of each episode: equal-length 1-D states (indices in [0, n_states))
    and finite rewards. gamma, n_states and the collection are checked at once, each episode
    when it is reached."""
    gamma = _checks.scalar("gamma", gamma, 0, 1, exact=True)
    _checks.positive_int("n_states", n_states)
    if episodes is None or isinstance(episodes, str | bytes) or not hasattr(episodes, "__iter__"):
        raise ValueError(
            f"episodes: expected a collection of (states, rewards), got {episodes!r:.60}"
        )
    return _each_episode(episodes, gamma, n_states)


def _each_episode(episodes, gamma, n_states):
    for i, episode in enumerate(episodes):
        if not isinstance(episode, tuple | list) or len(episode) != 2:
            raise ValueError(f"episodes: episode {i} is not a (states, rewards) pair")
        states, rewards = episode
        try:
            states, rewards = np.asarray(states), np.asarray(rewards)
        except (ValueError, TypeError):
            raise ValueError(f"episodes: episode {i} is not made of arrays") from None
        if states.ndim != 1 or states.shape != rewards.shape:
            raise ValueError("episodes: each episode needs equal-length 1-D states and rewards")
        if states.size and (
            states.dtype.kind not in "iu" or states.min() < 0 or states.max() >= n_states
        ):
            raise ValueError(f"episodes: episode {i} has a state outside 0..{n_states - 1}")
        if rewards.size and (rewards.dtype.kind not in "fiu" or not np.isfinite(rewards).all()):
            raise ValueError(f"episodes: episode {i} has a reward that is not a finite number")
        yield states, returns(rewards, gamma)


def first_visit_values(episodes, gamma, n_states):
    """(5): first-visit estimates of v (nan where a state was never visited); episodes a
    collection of (states, rewards) pairs, states indices in [0, n_states); gamma in [0, 1]."""
    episodes = _episode_returns(episodes, gamma, n_states)  # checks gamma and n_states first
    total, count = np.zeros(n_states), np.zeros(n_states)
    for states, g in episodes:
        _, first = np.unique(states, return_index=True)
        np.add.at(total, states[first], g[first])
        np.add.at(count, states[first], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def every_visit_values(episodes, gamma, n_states):
    """(5): every-visit estimates of v (nan where a state was never visited); episodes a
    collection of (states, rewards) pairs, states indices in [0, n_states); gamma in [0, 1]."""
    episodes = _episode_returns(episodes, gamma, n_states)
    total, count = np.zeros(n_states), np.zeros(n_states)
    for states, g in episodes:
        np.add.at(total, states, g)
        np.add.at(count, states, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def every_visit_limit(mdp, actions, length):
    """(6) The action values MC Exploring Starts averages towards while its policy is fixed.

    On a deterministic MDP with a deterministic policy, every start (s_0, a_0) yields one
    episode; with starts covering every pair equally often, the every-visit average of (s, a)
    tends to (sum over starts of the returns at its visits) / (number of visits). If the greedy
    policy of this limit differs from `actions`, MC ES cannot settle on that policy.
    actions: one action per state; length >= 1.
    """
    _check_mdp(mdp)
    if not bool(np.all((mdp.prob == 1) | (mdp.prob == 0))):
        raise ValueError("mdp: every_visit_limit needs a deterministic MDP")
    actions = _actions("actions", actions, mdp.n_states, mdp.n_actions)
    _checks.positive_int("length", length)
    sampler = Sampler(mdp, np.random.default_rng(0))  # no randomness is drawn
    pi = policy.deterministic(actions, mdp.n_actions)
    total, count = np.zeros((mdp.n_states, mdp.n_actions)), np.zeros((mdp.n_states, mdp.n_actions))
    for s0 in range(mdp.n_states):
        for a0 in range(mdp.n_actions):
            states, acts, rewards = sampler.episode(pi, s0, a0, length)
            np.add.at(total, (states, acts), returns(rewards, mdp.gamma))
            np.add.at(count, (states, acts), 1)
    return total / count


def best_epsilon_greedy(mdp, epsilon, max_iter=1000):
    """(7) The best epsilon-greedy policy, which MC epsilon-Greedy converges to: policy iteration
    within the class (evaluate the epsilon-greedy policy of mu exactly, mu <- greedy of its q).
    Returns (greedy actions mu, state values). For epsilon > 0 it is in general not optimal."""
    from impl.rl import bellman

    _check_mdp(mdp)
    epsilon = _checks.scalar("epsilon", epsilon, 0, 1, exact=True)
    _checks.positive_int("max_iter", max_iter)
    actions = np.zeros(mdp.n_states, dtype=int)
    for _ in range(max_iter):
        pi = policy.epsilon_greedy(policy.deterministic(actions, mdp.n_actions), epsilon)
        v = bellman.evaluate(mdp, pi)
        new = improve(mdp.backup(v), actions)
        if np.array_equal(new, actions):
            break
        actions = new
    return actions, v
