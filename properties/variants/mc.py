"""Rejected variants of the Monte Carlo claims (MC-*): impl/rl/monte_carlo.py and the
epsilon-greedy policy of impl/rl/policy.py, each a misreading of Zhao's chapter 5."""

import numpy as np

from impl.rl import gridworld as gw
from impl.rl import monte_carlo as mc
from impl.rl import policy
from impl.rl.mdp import MDP
from properties.variants import variant


def _undiscounted(rewards, gamma):
    """g_t = r_{t+1} + ... + r_L: the returns accumulated without gamma."""
    return np.cumsum(np.asarray(rewards, float)[::-1])[::-1].copy()


def _without_last_reward(rewards, gamma):
    """The backward loop started one step too late: r_L enters no return."""
    g = np.zeros(len(rewards))
    acc = 0.0
    for t in range(len(rewards) - 2, -1, -1):
        acc = rewards[t] + gamma * acc
        g[t] = acc
    return g


def _control(first_visit=False, extra_count=0, policy_starts=False):
    """impl's _every_visit_control (MC ES, MC epsilon-Greedy) with one misreading:
    first_visit    only the first visit of (s, a) in an episode adds its return;
    extra_count    q = total / (count + 1): the incremental mean with step 1/(k+1);
    policy_starts  exploring starts over states only: the episode starts at the drawn state
                   with the current policy's action, so (s, a != pi(s)) never starts one."""

    def control(mdp, n_episodes, length, rng, epsilon, starts, actions0=None):
        sampler = mc.Sampler(mdp, rng)
        S, A = mdp.n_states, mdp.n_actions
        total, count, q = np.zeros((S, A)), np.zeros((S, A)), np.zeros((S, A))
        actions = np.zeros(S, dtype=int) if actions0 is None else np.array(actions0)
        pi = np.full((S, A), 1.0 / A) if epsilon is not None else np.eye(A)[actions]
        for e in range(n_episodes):
            s0, a0 = starts(e)
            a0 = actions[s0] if policy_starts else a0
            states, acts, rewards = sampler.episode(pi, s0, a0, length)
            g = mc.returns(rewards, mdp.gamma)
            first = {}
            for t in range(length - 1, -1, -1):
                first[states[t], acts[t]] = t
            for t in range(length - 1, -1, -1):
                s, a = states[t], acts[t]
                if first_visit and first[s, a] != t:
                    continue
                total[s, a] += g[t]
                count[s, a] += 1
                q[s, a] = total[s, a] / (count[s, a] + extra_count)
                best = q[s].max()
                if q[s, actions[s]] < best - mc.TIE * max(1.0, abs(best)):
                    actions[s] = int(q[s].argmax())
                if epsilon is None:
                    pi[s] = np.eye(A)[actions[s]]
                else:
                    pi[s] = epsilon / A
                    pi[s, actions[s]] = 1 - epsilon * (A - 1) / A
        return mc.MCResult(q, actions, n_episodes, sampler.steps)

    return control


def _first_visit_limit(mdp, actions, length):
    """every_visit_limit read as a first-visit average: only each episode's first visit."""
    sampler = mc.Sampler(mdp, np.random.default_rng(0))
    pi = policy.deterministic(np.asarray(actions), mdp.n_actions)
    total, count = np.zeros((mdp.n_states, mdp.n_actions)), np.zeros((mdp.n_states, mdp.n_actions))
    for s0 in range(mdp.n_states):
        for a0 in range(mdp.n_actions):
            states, acts, rewards = sampler.episode(pi, s0, a0, length)
            g = mc.returns(rewards, mdp.gamma)
            pairs = states * mdp.n_actions + acts
            _, first = np.unique(pairs, return_index=True)
            np.add.at(total, (states[first], acts[first]), g[first])
            np.add.at(count, (states[first], acts[first]), 1)
    return total / count


_EPSILON_GREEDY = policy.epsilon_greedy


def _greedy_one_minus_eps(q, epsilon):
    """pi(a*|s) = 1 - eps (the 'exploit with probability 1 - eps' reading), eps / |A| elsewhere:
    the rows sum to 1 - eps / |A| (|A| - 1)... i.e. 1 - eps + eps (|A| - 1) / |A| < 1."""
    greedy = _EPSILON_GREEDY(q, 0 * epsilon)  # the 0/1 matrix, in the type of q and epsilon
    return np.where(greedy == 1, 1 - epsilon, epsilon / greedy.shape[1] + 0 * greedy)


def _plain_policy_iteration(mdp, epsilon, max_iter=1000):
    """best_epsilon_greedy as ordinary policy iteration: the greedy policies evaluated, so the
    values returned are v*, not those of the best epsilon-greedy policy."""
    from impl.rl.dynamic_programming import policy_iteration

    result = policy_iteration(mdp)
    return result.actions, result.v


@variant(
    "MC-01",
    "MC-04.long-episodes",
    name="returns-without-discount",
    why="g_t accumulated as r_{t+1} + r_{t+2} + ... (gamma dropped from the backward recursion)",
)
def _(mp):
    mp.setattr(mc, "returns", _undiscounted)


@variant(
    "MC-02",
    name="mc-basic-one-policy-update",
    why="MC Basic stopped after its first policy improvement (q of the initial policy only)",
)
def _(mp):
    original = mc.mc_basic

    def once(mdp, episodes_per_pair, length, rng, actions0=None, max_iter=1000):
        return original(mdp, episodes_per_pair, length, rng, actions0, max_iter=1)

    mp.setattr(mc, "mc_basic", once)


@variant(
    "MC-03",
    name="returns-drop-last-reward",
    why="the backward loop over t starts at L - 2: the episode's last reward r_L is never counted",
)
def _(mp):
    mp.setattr(mc, "returns", _without_last_reward)


@variant(
    "MC-04.long-episodes",
    name="incremental-mean-step-1/(k+1)",
    why="q(s, a) = Returns / (Num + 1): the incremental mean with step 1/(k+1)",
)
def _(mp):
    mp.setattr(mc, "_every_visit_control", _control(extra_count=1))


@variant(
    "MC-04.long-episodes",
    name="exploring-starts-over-states-only",
    why="episodes start at every state but with the current policy's action: not every (s, a)",
)
def _(mp):
    mp.setattr(mc, "_every_visit_control", _control(policy_starts=True))


@variant(
    "MC-04.long-episodes",
    name="exploring-starts-first-visit",
    why="MC ES (and its limit model) with first visits only, where the article uses every visit",
)
def _(mp):
    mp.setattr(mc, "_every_visit_control", _control(first_visit=True))
    mp.setattr(mc, "every_visit_limit", _first_visit_limit)


@variant(
    "MC-05",
    name="greedy-probability-1-eps",
    why="epsilon-greedy with pi(a*|s) = 1 - eps in place of 1 - eps + eps / |A|",
)
def _(mp):
    mp.setattr(policy, "epsilon_greedy", _greedy_one_minus_eps)


@variant(
    "MC-07",
    name="first-visit-as-every-visit",
    why="first_visit_values averaging every visit (the two estimators confused)",
)
def _(mp):
    mp.setattr(mc, "first_visit_values", mc.every_visit_values)


@variant(
    "MC-06",
    name="best-epsilon-greedy-is-plain-policy-iteration",
    why="the best policy of the epsilon-greedy class computed by ordinary policy iteration",
)
def _(mp):
    mp.setattr(mc, "best_epsilon_greedy", _plain_policy_iteration)


@variant(
    "MC-04.long-episodes",
    name="every-visit-limit-as-first-visit",
    why="the model of what MC ES averages towards built from first visits only",
)
def _(mp):
    mp.setattr(mc, "every_visit_limit", _first_visit_limit)


@variant(
    "MC-06",
    name="best-epsilon-greedy-one-improvement",
    why="policy iteration within the epsilon-greedy class stopped after one improvement",
)
def _(mp):
    original = mc.best_epsilon_greedy

    def once(mdp, epsilon, max_iter=1000):
        return original(mdp, epsilon, max_iter=1)

    mp.setattr(mc, "best_epsilon_greedy", once)


_GRID_MDP = gw.GridWorld.mdp


def _terminal_target_mdp(world):
    """The grid world with a terminal target (as in the book's public helper code): entering
    it gives r_target, then every action stays there with reward 0."""
    mdp = _GRID_MDP(world)
    target = world.state(world.target)
    next_state, reward = mdp.next_state.copy(), mdp.reward.copy()
    next_state[target], reward[target] = target, 0.0
    return MDP(next_state, mdp.prob, reward, mdp.gamma)


@variant(
    "MC-04.short-episodes",
    name="grid-world-terminal-target",
    why="the target made terminal: episodes that reach it are not truncated, which hides the bias",
)
def _(mp):
    mp.setattr(gw.GridWorld, "mdp", _terminal_target_mdp)
