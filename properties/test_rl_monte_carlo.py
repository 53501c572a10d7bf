"""MC-01, MC-02, MC-04, MC-06, MC-07: Monte Carlo methods (impl/rl/monte_carlo.py).

Statistical checks use Hoeffding's inequality for bounded returns and exact binomial tests, at
alpha = 1e-7 each (properties/stats.py). Returns of episodes of length L differ from the infinite
discounted return by at most gamma^L max|r| / (1 - gamma) (the truncation, a known bias).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.rl import bellman, policy
from impl.rl import gridworld as gw
from impl.rl import monte_carlo as mc
from impl.rl.dynamic_programming import improve, tie_tolerance
from impl.rl.mdp import MDP
from properties import stats
from properties.catalogue import claim
from properties.evidence import current, refute
from properties.profiles import statistical
from properties.rl_bounds import optimal_value_bound, policy_value_bound
from properties.strategies import floats, grid_worlds, random_mdps, seeds
from properties.tolerances import assert_close


def horizon(gamma, target=1e-8):
    """Episode length L with gamma^L <= target."""
    return 1 if gamma == 0 else max(1, math.ceil(math.log(target) / math.log(gamma)))


@claim("MC-01")
@statistical()
@given(model=random_mdps(max_states=6, max_actions=3, max_gamma=0.8), seed=seeds)
def test_mean_of_sampled_returns_estimates_q(rl, model, seed):
    mdp = model.mdp()
    rng = seed.numpy()
    pi = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    v = rl.evaluate(mdp, pi)
    q = rl.q_from_v(mdp, v)
    s, a = int(rng.integers(mdp.n_states)), int(rng.integers(mdp.n_actions))
    gamma, r_max = mdp.gamma, float(np.abs(mdp.reward).max())
    L = horizon(gamma, 1e-6)
    truncation = gamma**L * r_max / (1 - gamma)
    slack = truncation + gamma * policy_value_bound(mdp, pi, v)
    g_max = r_max * (1 - gamma**L) / (1 - gamma)
    sampler = mc.Sampler(mdp, rng)
    g = np.array([mc.returns(sampler.episode(pi, s, a, L)[2], gamma)[0] for _ in range(1600)])
    for n in (100, 1600):  # the law of large numbers: the mean tightens around q_pi(s, a)
        stats.mean_within(g[:n].mean(), q[s, a], n, -g_max, g_max, slack=slack,
                          what=f"mean of {n} returns - q_pi(s, a)")  # fmt: skip
    current().summary = (
        "the mean of sampled returns from (s, a) lies within Hoeffding's radius of q_pi(s, a)"
    )


@claim("MC-02")
@settings(max_examples=12)
@given(model=st.one_of(random_mdps(max_states=6, max_actions=4, max_gamma=0.9, deterministic=True),
                       grid_worlds(max_side=3, max_gamma=0.9)))  # fmt: skip
def test_mc_basic_reaches_the_values_of_policy_iteration(rl, model):
    mdp = model.mdp()
    L = horizon(mdp.gamma)
    result = mc.mc_basic(mdp, 1, L, np.random.default_rng(0))
    again = mc.mc_basic(mdp, 3, L, np.random.default_rng(1))
    # deterministic: every episode of a pair is the same, so 3 per pair average to the same q
    # (a mean of three equal numbers rounds by at most 2u relative)
    assert_close(
        again.q, result.q, ulps=4, scale=np.abs(result.q), what="q with 3 vs 1 episodes per pair"
    )
    v_star = rl.policy_iteration(mdp).v
    pi = policy.deterministic(result.actions, mdp.n_actions)
    v_mc = bellman.evaluate(mdp, pi)
    # q estimates are off by at most eps_q = gamma^L max|r| / (1 - gamma); approximate policy
    # iteration then loses at most 2 gamma eps_q / (1 - gamma)^2.
    eps_q = mdp.gamma**L * np.abs(mdp.reward).max() / (1 - mdp.gamma)
    bound = 2 * mdp.gamma * eps_q / (1 - mdp.gamma) ** 2
    bound += optimal_value_bound(mdp, v_star) + policy_value_bound(mdp, pi, v_mc)
    assert_close(v_mc, v_star, ulps=0, abs_floor=bound, what="v of MC Basic's policy - v*")
    current().summary = (
        "on deterministic MDPs, MC Basic (one episode per pair) reaches v* of policy iteration"
    )


EXAMPLES = {
    "1x2": gw.example_1x2,
    "2x2": gw.example_2x2,
    "3x3": gw.example_3x3,
    "5x5": gw.example_5x5,
}


def limit_dynamics(mdp, length, max_rounds=50):
    """Follow pi <- greedy(every-visit limit of pi) from pi*; returns (settled, value gap)."""
    from impl.rl.dynamic_programming import policy_iteration

    best = policy_iteration(mdp)
    actions, seen = best.actions, []
    for _ in range(max_rounds):
        new = improve(mc.every_visit_limit(mdp, actions, length), actions)
        if np.array_equal(new, actions):
            break
        if any(np.array_equal(new, old) for old in seen):
            return False, _gap(mdp, actions, best.v)
        seen.append(actions)
        actions = new
    else:
        return False, _gap(mdp, actions, best.v)
    return True, _gap(mdp, actions, best.v)


def _gap(mdp, actions, v_star):
    v = bellman.evaluate(mdp, policy.deterministic(actions, mdp.n_actions))
    return float(np.max(v_star - v))


@claim("MC-04.long-episodes")
def test_backward_returns_are_the_discounted_sums():
    rewards = np.random.default_rng(0).uniform(-1, 1, 50)
    forward = [sum(0.9**j * r for j, r in enumerate(rewards[t:])) for t in range(50)]
    assert_close(mc.returns(rewards, 0.9), np.array(forward), ulps=200, scale=10.0,
                 what="g_t backwards - sum_j gamma^j r_{t+j+1}")  # fmt: skip


@claim("MC-04.long-episodes")
def test_optimal_policy_is_a_fixed_point_with_long_episodes():
    for name, make in EXAMPLES.items():
        settled, gap = limit_dynamics(make().mdp(), 200)
        assert settled and gap <= 1e-9, f"{name}: pi* is not a fixed point of MC ES at L = 200"
    current().summary = (
        "L = 200: pi* is a fixed point of the every-visit averages on the 1x2, 2x2, 3x3, 5x5"
    )


@claim("MC-04.long-episodes")
def test_exploring_starts_runs_reach_the_optimal_policy():
    """20 runs of 200 episodes (L = 100) on the 1x2 example; the check allows a failure
    probability of at most 10% per run (binomial, alpha = 1e-7). Larger examples converge far
    more slowly: early looping episodes put many stale returns in the every-visit averages."""
    mdp = gw.example_1x2().mdp()
    from impl.rl.dynamic_programming import policy_iteration

    v_star = policy_iteration(mdp).v
    failures = 0
    for seed in range(20):
        result = mc.mc_exploring_starts(mdp, 200, 100, np.random.default_rng(seed))
        failures += _gap(mdp, result.actions, v_star) > 1e-9
    stats.binomial_at_most(int(failures), 20, 0.1, what="MC ES runs not at v* after 200 episodes")
    current().record(failed_runs_of_20=int(failures))


@claim(refutes="MC-04.short-episodes")
def test_short_episodes_leave_no_optimal_fixed_point():
    cases = [(name, L) for L in (20, 10, 50) for name in ("2x2", "1x2", "3x3", "5x5")]

    def converges(case):
        name, L = case
        settled, gap = limit_dynamics(EXAMPLES[name]().mdp(), L)
        return settled and gap <= 1e-9

    name, L = refute(st.sampled_from(cases), converges, claim="MC-04.short-episodes",
                     describe=lambda c: f"the book's {c[0]} example with episodes of length {c[1]}")  # fmt: skip
    table = {f"{n}, L = {length}": limit_dynamics(EXAMPLES[n]().mdp(), length)
             for n in EXAMPLES for length in (20, 50, 100, 200)}  # fmt: skip
    current().record(
        **{k: f"{'settles' if s else 'cycles'}, value gap {g:.3f}" for k, (s, g) in table.items()}
    )
    current().summary = (
        f"{name}, L = {L}: from pi*, greedy(every-visit averages) leaves pi* and never settles on an "
        "optimal policy (returns near the episode end are truncated)"
    )


@claim("MC-06")
@given(world=st.one_of(st.just(gw.example_5x5()), grid_worlds(max_side=4)))
def test_best_epsilon_greedy_values_decrease_with_epsilon(world):
    mdp = world.mdp()
    from impl.rl.dynamic_programming import policy_iteration

    v_star = policy_iteration(mdp).v
    eps_star = optimal_value_bound(mdp, v_star)
    previous, prev_bound, prev_ties = v_star, eps_star, 0.0
    for eps in (0.1, 0.2, 0.5, 1.0):
        actions, v = mc.best_epsilon_greedy(mdp, eps)
        pi = policy.epsilon_greedy(policy.deterministic(actions, mdp.n_actions), eps)
        bound = policy_value_bound(mdp, pi, v)
        # the eps-greedy class shrinks as eps grows (eps2-greedy policies are eps1-soft); the
        # previous solution is optimal in its class up to its ties: slack t / (1 - gamma)
        assert np.all(v <= previous + bound + prev_bound + prev_ties), (
            f"v*_eps increased at eps = {eps}"
        )
        # self-consistency: pi is epsilon-greedy with respect to its own q (up to ties)
        q = mdp.backup(v)
        chosen = q[np.arange(mdp.n_states), actions]
        assert np.all(chosen >= q.max(axis=1) - tie_tolerance(q) - 2 * bound)
        previous, prev_bound = v, bound
        prev_ties = tie_tolerance(q).max() / (1 - mdp.gamma)
    if world.n_rows == 5:  # the book's 5x5: strictly below v* for eps = 0.1
        _, v01 = mc.best_epsilon_greedy(mdp, 0.1)
        assert np.max(v_star - v01) > 1.0
        current().record(max_loss_at_eps_0_1=float(np.max(v_star - v01)))
    current().summary = (
        "v*_eps <= v*, decreasing in eps; strictly below v* on the 5x5 for eps = 0.1"
    )


@claim("MC-06")
def test_mc_epsilon_greedy_runs_reach_the_best_epsilon_greedy_policy():
    """20 runs of 200 episodes (L = 100), eps = 0.1, on the 1x2 example: the final eps-greedy
    policy has the value of the best eps-greedy policy (binomial, at most 10% failures per run),
    which is below v* = (10, 10): v*_0.1 = (9, 9)."""
    mdp = gw.example_1x2().mdp()
    eps = 0.1
    _, v_best = mc.best_epsilon_greedy(mdp, eps)
    failures = 0
    for seed in range(20):
        result = mc.mc_epsilon_greedy(mdp, eps, 200, 100, np.random.default_rng(seed))
        pi = policy.epsilon_greedy(policy.deterministic(result.actions, mdp.n_actions), eps)
        failures += np.abs(bellman.evaluate(mdp, pi) - v_best).max() > 1e-9
    stats.binomial_at_most(int(failures), 20, 0.1, what="MC eps-greedy runs not at v*_eps")
    assert np.all(v_best < 10 - 0.5), "the best eps-greedy policy is not optimal"
    current().record(v_best_eps=v_best.round(3).tolist(), failed_runs_of_20=int(failures))


def geometric_mrp_episodes(p, n, rng):
    """One state, reward 1 per step, continue with probability p: T ~ Geometric(1 - p)."""
    return [(np.zeros(t, dtype=int), np.ones(t)) for t in rng.geometric(1 - p, size=n)]


def series(p, gamma, f, tail=1e-15):
    """E[f(T)] for T ~ Geometric(1 - p) on {1, 2, ...}, with |f| <= n / (1 - gamma): summed until
    the remaining mass times the bound is below `tail`."""
    total, n = 0.0, 1
    while p ** (n - 1) * (n + 1 / (1 - p)) / ((1 - gamma) * (1 - p)) > tail:
        total += p ** (n - 1) * (1 - p) * f(n)
        n += 1
    return total


def visit_returns(n, gamma):
    return [(1 - gamma ** (n - k)) / (1 - gamma) for k in range(n)]


@claim("MC-07")
@given(p=floats(0.2, 0.9), gamma=floats(0.5, 0.95))
def test_first_visit_unbiased_every_visit_biased_but_consistent_exactly(p, gamma):
    v = 1 / (1 - p * gamma)  # v = 1 + p gamma v
    first = series(p, gamma, lambda n: visit_returns(n, gamma)[0])
    every_single = series(p, gamma, lambda n: sum(visit_returns(n, gamma)) / n)
    pooled = series(p, gamma, lambda n: sum(visit_returns(n, gamma))) / series(
        p, gamma, lambda n: n
    )
    # series truncated at 1e-15, summed over at most a few hundred terms: 1e-12 covers rounding
    assert_close(first, v, ulps=0, abs_floor=1e-12, what="E[first-visit] - v")
    assert_close(pooled, v, ulps=0, abs_floor=1e-12, what="E[sum of visit returns] / E[visits] - v")
    assert every_single < v - 1e-9, "the single-episode every-visit estimate is biased low"
    current().worst("largest every-visit bias seen", float(v - every_single))
    current().summary = (
        "first-visit unbiased; every-visit biased per episode, its pooled ratio tends to v"
    )


@claim("MC-07")
@statistical()
@given(seed=seeds)
def test_sampled_first_and_every_visit_estimates(seed):
    """p = 0.8, gamma = 0.9: v = 1/(1 - 0.72) = 3.571; returns lie in [1, 1/(1 - gamma)] = [1, 10].
    N = 4000 episodes: first-visit within Hoeffding's radius of v; the per-episode every-visit
    estimate within the radius of its (biased) expectation, and rejected as an estimate of v."""
    p, gamma, n = 0.8, 0.9, 4000
    v = 1 / (1 - p * gamma)
    episodes = geometric_mrp_episodes(p, n, seed.numpy())
    first = mc.first_visit_values(episodes, gamma, 1)[0]
    per_episode = np.mean([mc.every_visit_values([e], gamma, 1)[0] for e in episodes])
    biased = series(p, gamma, lambda k: sum(visit_returns(k, gamma)) / k)
    stats.mean_within(first, v, n, 1.0, 10.0, what="first-visit estimate - v")
    stats.mean_within(
        per_episode, biased, n, 1.0, 10.0, what="every-visit (per episode) - its expectation"
    )
    radius = stats.hoeffding_radius(n, 1.0, 10.0)
    assert v - biased > 2 * radius, "design: the bias must exceed twice the radius"
    assert abs(per_episode - v) > radius, (
        "the every-visit estimate is not an unbiased estimate of v"
    )
    pooled = mc.every_visit_values(episodes, gamma, 1)[0]
    current().record(v=v, first_visit=float(first), every_visit_per_episode=float(per_episode),
                     every_visit_pooled=float(pooled), bias=float(biased - v))  # fmt: skip


def test_bad_monte_carlo_arguments_name_the_argument():
    import pytest

    mdp = gw.example_2x2().mdp()
    rng = np.random.default_rng(0)
    for call, argument in [
        (lambda: mc.mc_basic(mdp, 1, 0, rng), "length"),
        (lambda: mc.mc_basic(mdp, 0, 5, rng), "episodes_per_pair"),
        (lambda: mc.mc_exploring_starts(mdp, 1, 0, rng), "length"),
        (lambda: mc.mc_epsilon_greedy(mdp, 1.5, 1, 5, rng), "epsilon"),
        (lambda: mc.mc_epsilon_greedy(mdp, 0.1, 0, 5, rng), "n_episodes"),
        (lambda: mc.best_epsilon_greedy(mdp, -0.5), "epsilon"),
        (lambda: mc.best_epsilon_greedy(mdp, 1.5), "epsilon"),
        (lambda: mc.first_visit_values([([0, 1], [1.0])], 0.9, 2), "episodes"),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()


def test_mc_basic_reports_iterations_and_steps_and_every_visit_is_quiet():
    """MC Basic draws episodes_per_pair episodes of `length` steps from every (s, a) per policy
    update, so steps = iterations x S x A x episodes_per_pair x length; max_iter caps the updates.
    Every-visit estimates are nan, without a floating-point warning, where no episode went."""
    import warnings

    world = gw.example_2x2()
    mdp = world.mdp()
    for max_iter in (1, 1000):
        r = mc.mc_basic(mdp, 2, 5, np.random.default_rng(0), max_iter=max_iter)
        assert 1 <= r.iterations <= max_iter
        assert r.steps == r.iterations * mdp.n_states * mdp.n_actions * 2 * 5
    # states 0, 1, 0 with rewards 1, 2, 3 and gamma 1/2: returns 2.75, 3.5, 3 (exact in binary)
    episodes = [(np.array([0, 1, 0]), np.array([1.0, 2.0, 3.0])), (np.array([1]), np.array([4.0]))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        every = mc.every_visit_values(episodes, 0.5, 4)
        first = mc.first_visit_values(episodes, 0.5, 4)
    np.testing.assert_array_equal(every[:2], [(2.75 + 3.0) / 2, (3.5 + 4.0) / 2])
    np.testing.assert_array_equal(first[:2], [2.75, (3.5 + 4.0) / 2])
    assert np.isnan(every[2:]).all() and np.isnan(first[2:]).all()


def _recorded_run(monkeypatch, run):
    """Run `run()` while recording, per episode, the policy it followed and the episode drawn."""
    calls = []
    episode = mc.Sampler.episode

    def record(self, pi, s0, a0, length):
        out = episode(self, pi, s0, a0, length)
        calls.append((np.array(pi), out))
        return out

    monkeypatch.setattr(mc.Sampler, "episode", record)
    return run(), calls


@pytest.mark.parametrize("epsilon", [None, 0.0, 0.3, 1.0])
def test_mc_control_follows_its_policy_class_and_averages_every_visit(monkeypatch, epsilon):
    """MC Exploring Starts (epsilon None) and MC epsilon-Greedy: every episode follows a
    deterministic policy (ES) or an epsilon-greedy one, pi(a*|s) = 1 - epsilon (A - 1)/A and
    epsilon/A elsewhere (the first: uniform, with nothing learnt yet); the final q is the
    every-visit average of the returns (5) over all episodes drawn; q = 0 where none went."""
    mdp = gw.example_2x2().mdp()
    S, A, n, length = mdp.n_states, mdp.n_actions, 60, 4
    rng = np.random.default_rng(5)
    if epsilon is None:
        result, calls = _recorded_run(
            monkeypatch, lambda: mc.mc_exploring_starts(mdp, n, length, rng)
        )
    else:
        result, calls = _recorded_run(
            monkeypatch, lambda: mc.mc_epsilon_greedy(mdp, epsilon, n, length, rng)
        )
    assert len(calls) == result.iterations == n and result.steps == n * length
    visited = np.zeros(S, dtype=bool)  # states updated by an earlier episode
    for pi, (states, _, _) in calls:
        if epsilon is None:
            assert np.all(np.sort(pi, axis=1) == np.eye(A)[-1]), "ES follows a deterministic policy"
        else:
            big, small = 1 - epsilon * (A - 1) / A, epsilon / A
            assert np.all(pi[~visited] == 1.0 / A), "a state not yet visited keeps uniform"
            assert_close(pi[visited].max(axis=1), np.full(visited.sum(), big), ulps=4,
                         what="pi(a*|s)")  # fmt: skip
            rest = np.sort(pi[visited], axis=1)[:, :-1]
            assert_close(rest, np.full(rest.shape, small), ulps=4, what="pi(a|s), a != a*")
        visited[states] = True
    total, count = np.zeros((S, A)), np.zeros((S, A))
    for _, (states, actions, rewards) in calls:
        g = mc.returns(rewards, mdp.gamma)
        np.add.at(total, (states, actions), g)
        np.add.at(count, (states, actions), 1)
    expected = np.divide(total, count, out=np.zeros((S, A)), where=count > 0)
    assert_close(result.q, expected, ulps=8 * n * length, scale=np.abs(expected).max() + 1,
                 what="q = every-visit average of the returns")  # fmt: skip


def test_mc_argument_checks():
    mdp = gw.example_2x2().mdp()
    rng = np.random.default_rng(0)
    for bad in (1.0, True, 0):
        with pytest.raises(ValueError, match="^n_episodes: must be a positive integer"):
            mc.mc_exploring_starts(mdp, bad, 3, rng)
        with pytest.raises(ValueError, match="^length: "):
            mc.mc_exploring_starts(mdp, 3, bad, rng)
    for eps in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"^epsilon: must lie in \[0, 1\]"):
            mc.mc_epsilon_greedy(mdp, eps, 3, 3, rng)
        with pytest.raises(ValueError, match=r"^epsilon: must lie in \[0, 1\]"):
            mc.best_epsilon_greedy(mdp, eps)
    for eps in (0.0, 1.0):
        mc.best_epsilon_greedy(mdp, eps)
    with pytest.raises(ValueError, match="^q: expected a non-empty"):
        policy.greedy_actions(np.zeros(3))
    assert gw.example_1x2(gamma=0.5).mdp().gamma == 0.5


@statistical()
@given(seed=seeds)
def test_sampler_draws_transitions_and_actions_from_their_laws(seed):
    """A stochastic 2-state, 2-action MDP and a policy with one stochastic and one greedy row:
    from (s_0, a_0) = (0, 1) the next pair (s_1, a_1) has law p(s_1 | 0, 1) pi(a_1 | s_1),
    with the transition and the action drawn independently. 20000 episodes; each of the four
    cells' counts gets an exact two-sided binomial test (alpha = 1e-7 each). Also the reward
    is r(s_0, a_0, s_1)."""
    P = np.zeros((2, 2, 2))
    P[0, 0], P[0, 1], P[1, 0], P[1, 1] = [1, 0], [0.3, 0.7], [0.5, 0.5], [0, 1]
    R = np.arange(8.0).reshape(2, 2, 2)
    mdp = MDP.from_dense(P, R, 0.9)
    pi = np.array([[0.4, 0.6], [0.0, 1.0]])
    sampler, n = mc.Sampler(mdp, seed.numpy()), 20_000
    counts = np.zeros((2, 2), dtype=int)
    for _ in range(n):
        states, actions, rewards = sampler.episode(pi, 0, 1, 2)
        counts[states[1], actions[1]] += 1
        assert rewards[0] == R[0, 1, states[1]]
    for (s1, a1), p in np.ndenumerate(P[0, 1][:, None] * pi):
        stats.binomial_two_sided(
            int(counts[s1, a1]), n, float(p), what=f"(s_1, a_1) = ({s1}, {a1})"
        )
    assert sampler.steps == 2 * n


@pytest.mark.parametrize(
    "best, gap, final",
    [(1.0, 0.0, 1), (5.0, 3e-9, 1), (1.5, 1.2e-9, 1), (1.5, 1.7e-9, 0), (0.5, 1.5e-9, 0)],
)
def test_mc_control_keeps_its_action_within_the_tie_tolerance(best, gap, final):
    """One state, two actions, episodes of one step: q(0, 0) = best, q(0, 1) = best - gap. The
    first episode starts with action 1 (the policy moves to it), the second with action 0; the
    policy then keeps action 1 iff gap <= TIE max(1, |best|) (TIE = 1e-9)."""
    mdp = MDP.from_dense(np.ones((1, 2, 1)), [[best, best - gap]], 0.9)
    result = mc._every_visit_control(
        mdp, 2, 1, np.random.default_rng(0), None, lambda e: (0, 1 - e)
    )
    assert result.q.tolist() == [[best, best - gap]] and result.actions.tolist() == [final]
