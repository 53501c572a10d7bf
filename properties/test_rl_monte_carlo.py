"""MC-01, MC-02, MC-04, MC-06, MC-07: Monte Carlo methods (family `rl`, impl/rl/monte_carlo.py).

Statistical checks use Hoeffding's inequality for bounded returns and exact binomial tests, at
alpha = 1e-7 each (properties/stats.py). Returns of episodes of length L differ from the infinite
discounted return by at most gamma^L max|r| / (1 - gamma) (the truncation, a known bias); the
every-visit averages of MC Exploring Starts carry a larger one, ~ gamma R / ((1 - gamma) L)
(derived before test_backward_returns_are_the_discounted_sums). v*, q* and v_pi come from the
independent reference of properties/rl_bounds.py (LP, dense solves, each with its certificate);
the every-visit limit from episodes traced in this file.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.rl import gridworld as gw
from impl.rl import monte_carlo as mc
from impl.rl import policy
from impl.rl.dynamic_programming import TIE, improve, tie_tolerance
from impl.rl.mdp import MDP
from properties import stats
from properties.catalogue import claim
from properties.evidence import ClaimNotRefuted, current, refute
from properties.profiles import statistical
from properties.rl_bounds import (
    lu_noise,
    reference_optimum,
    reference_policy_value,
    reference_q,
)
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
    # q_pi from the independent dense reference, with its own error bound (not from the code
    # under test, and not a certificate of a vector under test)
    v, eps_v = reference_policy_value(mdp, pi)
    q, eps_q = reference_q(mdp, v)
    s, a = int(rng.integers(mdp.n_states)), int(rng.integers(mdp.n_actions))
    gamma, r_max = mdp.gamma, float(np.abs(mdp.reward).max())
    L = horizon(gamma, 1e-6)
    truncation = gamma**L * r_max / (1 - gamma)
    slack = truncation + gamma * eps_v + eps_q
    g_max = r_max * (1 - gamma**L) / (1 - gamma)
    sampler = mc.Sampler(mdp, rng)
    g = np.array([rl.returns(sampler.episode(pi, s, a, L)[2], gamma)[0] for _ in range(1600)])
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
    result = rl.mc_basic(mdp, 1, L, np.random.default_rng(0))
    again = rl.mc_basic(mdp, 3, L, np.random.default_rng(1))
    # deterministic: every episode of a pair is the same, so 3 per pair average to the same q
    # (a mean of three equal numbers rounds by at most 2u relative)
    assert_close(
        again.q, result.q, ulps=4, scale=np.abs(result.q), what="q with 3 vs 1 episodes per pair"
    )
    assert result.iterations < 1000, "MC Basic stopped by its cap, not by a stable policy"
    v_star, err_star = reference_optimum(mdp)
    v_mc, err_mc = reference_policy_value(mdp, policy.deterministic(result.actions, mdp.n_actions))
    # MC Basic stops when improve() keeps the policy mu: mu is greedy within the tie tolerance t
    # for q estimates off q_mu by at most eps_q = gamma^L R (the truncation; R = max|r| / (1 -
    # gamma)) plus the rounding of L-term returns, so T v_mu - v_mu <= 2 eps_q + t and
    # v* - v_mu <= (2 eps_q + t) / (1 - gamma).
    R = np.abs(mdp.reward).max() / (1 - mdp.gamma)
    eps_q = mdp.gamma**L * R + 2 * (L + 2) * 2.0**-53 * R
    t = TIE * max(1.0, R)
    bound = (2 * eps_q + t) / (1 - mdp.gamma) + err_star + err_mc
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

# MC-04: what MC Exploring Starts averages towards, computed here without impl/
#
# On a deterministic MDP with a deterministic policy pi, the episode from (s_0, a_0) is fixed;
# with starts covering every pair equally often, the every-visit average of (s, a) tends to
# q_L(s, a) = (sum over the S A episodes of the returns at its visits) / (number of visits).
# Bias bound. A return at time t misses the rewards after step L: |g_t - q_pi(s_t, a_t)| <=
# gamma^(L - t) R, R = max|r| / (1 - gamma). From s_1 on, the path follows pi and enters a cycle
# of pi at a time tau <= d (d: the largest such time over the S A starts). A pair (s, pi(s)) with
# s on a cycle of length p is visited at t_1 <= d + p - 1 and then every p steps up to L - 1:
# n >= (L - d - p + 1) / p visits whose errors sum to at most R gamma / (1 - gamma^p). Every
# other pair is visited only at t = 0 or before tau (t <= d - 1). Averaging (a mediant of the
# episodes' ratios), for L >= d + p, |q_L(s, a) - q_pi(s, a)| <= eps_L(s, a) with
#     eps_L = R gamma p / ((1 - gamma^p) (L - d - p + 1))   for (s, pi(s)), s on a cycle,
#     eps_L = R gamma^(L - d + 1)                            for every other pair.
# The bias decays like gamma R / ((1 - gamma) L), not like gamma^L: at the target of the book's
# examples (p = 1) it is 0.45 at L = 200 (the bound is attained up to 1%).
# Condition on L. Let Delta be the smallest gap v*(s) - q*(s, a) over non-optimal actions. For
# an optimal pi (q_pi = q*), 2 eps_L < Delta (plus the tie tolerance) makes greedy(q_L) pick only
# optimal actions: the optimal policies map into themselves, so MC ES cannot leave them.
#     L_min = the smallest L with 2 max eps_L < Delta - 2 tie, over the optimal policies.
# For gamma = 0.9 and |r| <= 1 this is about d + 180 / Delta: 183 (1x2), 204 (2x2), 259 (3x3),
# 1807 (5x5, Delta = 0.1). L = 200 meets it on the 1x2 only; that the limit keeps pi* at L = 200
# on the others too (it does from L = 100) is not implied by the bound.

U = 2.0**-53


def outcome(mdp):
    """(next state, reward) of every (s, a) of a deterministic MDP, as (S, A) arrays."""
    assert np.all((mdp.prob == 0) | (mdp.prob == 1)), "a deterministic MDP"
    k = np.argmax(mdp.prob, axis=2)[..., None]
    return (np.take_along_axis(mdp.next_state, k, 2)[..., 0],
            np.take_along_axis(mdp.reward, k, 2)[..., 0])  # fmt: skip


def start_paths(mdp, actions, length):
    """The S A episodes of `length` steps from every (s_0, a_0), then a_t = actions[s_t]:
    (states, actions, rewards), each (S A, length), traced side by side."""
    nxt, rew = outcome(mdp)
    S, A = nxt.shape
    s, a = np.divmod(np.arange(S * A), A)
    states, acts = np.empty((S * A, length), dtype=int), np.empty((S * A, length), dtype=int)
    rewards = np.empty((S * A, length))
    for t in range(length):
        states[:, t], acts[:, t], rewards[:, t] = s, a, rew[s, a]
        s = nxt[s, a]
        a = actions[s]
    return states, acts, rewards


def forward_returns(rewards, gamma):
    """g_t = sum_k gamma^k r_{t+k+1}, summed forwards over k up to the first gamma^k < u: the
    terms left out add up to less than u R."""
    L = rewards.shape[1]
    g = np.zeros_like(rewards)
    for k in range(L):
        if gamma**k < U:
            break
        g[:, : L - k] += gamma**k * rewards[:, k:]
    return g


def visit_average(mdp, actions, length):
    """q_L: the every-visit average over the S A episodes of `length` steps (see above)."""
    S, A = mdp.n_states, mdp.n_actions
    states, acts, rewards = start_paths(mdp, np.asarray(actions), length)
    g = forward_returns(rewards, mdp.gamma)
    pair = (states * A + acts).ravel()
    total = np.bincount(pair, weights=g.ravel(), minlength=S * A)
    count = np.bincount(pair, minlength=S * A)  # >= 1: every pair starts an episode
    return (total / count).reshape(S, A)


def visit_average_rounding(mdp, length):
    """|computed q_L - q_L| of visit_average and of impl's every_visit_limit: each return is a
    sum of at most L terms of size <= R (<= (L + 2) u R each way), a mean of n <= S A L of them
    adds n u R."""
    R = np.abs(mdp.reward).max() / (1 - mdp.gamma)
    return 2 * (length + 2 + mdp.n_states * mdp.n_actions * length) * U * R


def policy_q(mdp, actions):
    """q_pi of a deterministic policy on a deterministic MDP, by a dense solve; its error."""
    nxt, rew = outcome(mdp)
    S = mdp.n_states
    M = np.eye(S)
    np.add.at(M, (np.arange(S), nxt[np.arange(S), actions]), -mdp.gamma)
    v = np.linalg.solve(M, rew[np.arange(S), actions])
    scale = np.abs(v).max() + np.abs(rew).max()
    return rew + mdp.gamma * v[nxt], 16 * S * U * scale / (1 - mdp.gamma) + 4 * U * scale


def cycle_structure(mdp, actions):
    """For the deterministic policy: the cycle length p(s) of each state on a cycle (0 for the
    others), and d, the largest first time t >= 1 at which an episode is on a cycle."""
    nxt, _ = outcome(mdp)
    S = mdp.n_states
    f = nxt[np.arange(S), actions]
    period = np.zeros(S, dtype=int)
    for s in range(S):
        x = f[s]
        for k in range(1, S + 1):
            if x == s:
                period[s] = k
                break
            x = f[x]
    steps = np.zeros(S, dtype=int)  # steps from s to a cycle
    for s in range(S):
        x = s
        while period[x] == 0:
            x, steps[s] = f[x], steps[s] + 1
    return period, 1 + int(steps[nxt].max())


def bias_bound(mdp, actions, length):
    """eps_L(s, a) of the comment above; requires length >= d + max p."""
    period, d = cycle_structure(mdp, actions)
    assert length >= d + period.max(), "the bound needs L >= d + p"
    g, R = mdp.gamma, np.abs(mdp.reward).max() / (1 - mdp.gamma)
    eps = np.full((mdp.n_states, mdp.n_actions), R * g ** (length - d + 1))
    on = np.nonzero(period)[0]
    p = period[on]
    eps[on, np.asarray(actions)[on]] = R * g * p / ((1 - g**p) * (length - d - p + 1))
    return eps


def optimal_actions(mdp):
    """(q*, optimal mask, Delta) from the independent reference v* (LP + exact evaluation);
    asserts that optimal and non-optimal actions are told apart far beyond v*'s error."""
    v_star, err = reference_optimum(mdp)
    q_star, rounding = reference_q(mdp, v_star)
    gap = v_star[:, None] - q_star
    noise = 2 * (mdp.gamma * err + rounding)
    optimal = gap <= noise
    delta = gap[~optimal].min() if (~optimal).any() else np.inf
    assert delta > 1e6 * noise, "optimal actions not separated from the others"
    return q_star, optimal, delta, noise


def optimal_policies(optimal, limit=None):
    """Every deterministic policy with only optimal actions (the first `limit` in index order,
    then the last, when there are more)."""
    choices = [np.nonzero(row)[0] for row in optimal]
    policies = [np.array(p) for p in itertools.product(*choices)]
    return (
        policies
        if limit is None or len(policies) <= limit
        else policies[: limit - 1] + policies[-1:]
    )


def shortest_long_length(mdp, policies, delta):
    """L_min: the smallest L with 2 eps_L + 2 tie < Delta for every given optimal policy
    (eps_L decreases with L: doubling, then bisection)."""
    tie = TIE * max(1.0, np.abs(mdp.reward).max() / (1 - mdp.gamma))

    def long_enough(L):
        return all(2 * bias_bound(mdp, a, L).max() + 2 * tie < delta for a in policies)

    lo = max(d + period.max() for period, d in (cycle_structure(mdp, a) for a in policies))
    hi = lo
    while not long_enough(hi):
        lo, hi = hi, 2 * hi
    while lo < hi:  # long_enough(hi) holds; the answer lies in [lo, hi]
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if long_enough(mid) else (mid + 1, hi)
    return hi


@claim("MC-04.long-episodes")
def test_backward_returns_are_the_discounted_sums(rl):
    rewards = np.random.default_rng(0).uniform(-1, 1, 50)
    forward = [sum(0.9**j * r for j, r in enumerate(rewards[t:])) for t in range(50)]
    assert_close(rl.returns(rewards, 0.9), np.array(forward), ulps=200, scale=10.0,
                 what="g_t backwards - sum_j gamma^j r_{t+j+1}")  # fmt: skip


@claim("MC-04.long-episodes")
@given(model=st.one_of(random_mdps(max_states=6, max_actions=3, max_gamma=0.95, deterministic=True),
                       grid_worlds(max_side=3, max_gamma=0.95)),
       length=st.integers(1, 80), seed=seeds)  # fmt: skip
def test_every_visit_limit_is_the_average_over_the_episodes(rl, model, length, seed):
    """impl's every_visit_limit (its Sampler, backward returns) against the S A episodes traced
    here with forward sums, at any L; and the bias bound eps_L against q_pi (a dense solve)."""
    mdp = model.mdp()
    # one outcome per (s, a); the Dirichlet draw of its probability may round to 1 - u
    mdp = MDP(mdp.next_state, np.ones_like(mdp.prob), mdp.reward, mdp.gamma)
    actions = seed.numpy().integers(mdp.n_actions, size=mdp.n_states)
    expected = visit_average(mdp, actions, length)
    rounding = visit_average_rounding(mdp, length)
    limit = rl.every_visit_limit(mdp, actions, length)
    assert_close(limit, expected, ulps=0, abs_floor=rounding, what="every_visit_limit - q_L")
    period, d = cycle_structure(mdp, actions)
    if length >= d + period.max():
        q_pi, err = policy_q(mdp, actions)
        bound = bias_bound(mdp, actions, length)
        floor = bound + err + rounding
        assert_close(expected, q_pi, ulps=0, abs_floor=floor, what="q_L - q_pi (bias bound)")


@claim("MC-04.long-episodes")
def test_long_episodes_keep_the_optimal_policies(rl):
    """The condition on L: at L_min (from the bias bound and Delta), greedy(q_L) picks only
    optimal actions for every optimal policy of the 1x2, 2x2, 3x3 (all of them) and the 5x5
    (4 of its 64); the bound is attained at the target (1/L decay), and impl's every_visit_limit
    agrees there."""
    table = {}
    for name, make in EXAMPLES.items():
        mdp = make().mdp()
        q_star, optimal, delta, q_err = optimal_actions(mdp)
        policies = optimal_policies(optimal, limit=4)
        L = shortest_long_length(mdp, policies, delta)
        tie = TIE * max(1.0, np.abs(mdp.reward).max() / (1 - mdp.gamma))
        for actions in policies:
            q_L = visit_average(mdp, actions, L)
            floor = bias_bound(mdp, actions, L) + q_err + visit_average_rounding(mdp, L)
            assert_close(
                q_L, q_star, ulps=0, abs_floor=floor, what=f"{name}: q_L - q* (bias bound)"
            )
            best_other = np.where(optimal, -np.inf, q_L).max(axis=1)
            best_optimal = np.where(optimal, q_L, -np.inf).max(axis=1)
            assert np.all(best_other < best_optimal - tie), f"{name}, L = {L}: pi* left"
        target = make().state(make().target)
        stay = make().actions.index("stay")
        bias = q_star[target, stay] - q_L[target, stay]
        assert bias >= 0.9 * bias_bound(mdp, actions, L)[target, stay], "the 1/L bias is attained"
        if name in ("2x2", "3x3"):
            limit = rl.every_visit_limit(mdp, actions, L)
            rounding = visit_average_rounding(mdp, L)
            assert_close(limit, q_L, ulps=0, abs_floor=rounding, what=f"{name}: every_visit_limit")
        table[name] = f"Delta = {delta:.3g}, L_min = {L}, bias at the target {bias:.3g}"
    current().record(**table)
    current().summary = "L >= L_min = d + 2 gamma R / ((1 - gamma) Delta): MC ES keeps pi*"


LONG = {"2x2": (10, 600), "3x3": (5, 1400)}  # runs, episodes


def _policies_followed(monkeypatch):
    """Record the greedy actions of the policy of every episode drawn."""
    followed = []
    episode = mc.Sampler.episode

    def record(self, pi, s0, a0, length):
        followed.append(tuple(np.argmax(pi, axis=1)))
        return episode(self, pi, s0, a0, length)

    monkeypatch.setattr(mc.Sampler, "episode", record)
    return followed


def _non_optimal_episodes(rl, make, length, runs, n, monkeypatch):
    """MC ES runs from the all-`stay` policy, seeds 0, 1, ...: yields, run by run, the number of
    episodes of the last half whose policy has an action outside the optimal sets, and whether
    the final policy is optimal."""
    mdp = make().mdp()
    optimal = optimal_actions(mdp)[1]
    stay = np.full(mdp.n_states, make().actions.index("stay"))
    followed = _policies_followed(monkeypatch)
    for seed in range(runs):
        followed.clear()
        result = rl.mc_exploring_starts(mdp, n, length, np.random.default_rng(seed), actions0=stay)
        ok = [bool(optimal[np.arange(mdp.n_states), list(a)].all()) for a in followed[n // 2 :]]
        yield len(ok) - sum(ok), bool(optimal[np.arange(mdp.n_states), result.actions].all())


@claim("MC-04.long-episodes")
def test_exploring_starts_runs_reach_the_optimal_policy(rl, monkeypatch):
    """Every run at L = L_min from the all-stay policy (10 runs of 600 episodes on the 2x2, 5 of
    1400 on the 3x3) follows only optimal policies in the last half of its episodes and ends
    optimal. (Measured over 20 and 10 seeds: optimal from episode 196 and 630 at the latest.
    From impl's default all-up policy, 2 of 20 runs on the 2x2 are still not optimal after
    20000 episodes: the every-visit averages keep the returns of the early looping episodes.)"""
    for name, (runs, n) in LONG.items():
        mdp = EXAMPLES[name]().mdp()
        _, optimal, delta, _ = optimal_actions(mdp)
        L = shortest_long_length(mdp, optimal_policies(optimal), delta)
        counts = []  # a failing run fails the property at once (the runs after it add nothing)
        for seed, (count, final) in enumerate(
            _non_optimal_episodes(rl, EXAMPLES[name], L, runs, n, monkeypatch)
        ):
            assert final and not count, (
                f"{name}, L = {L}, run {seed}: {count} non-optimal episodes in the last half, "
                f"final optimal {final}"
            )
            counts.append(count)
        current().record(**{f"{name} (L = {L}) non-optimal episodes in the last half": counts})


SHORT = 20


@claim(refutes="MC-04.short-episodes")
def test_short_episode_runs_keep_leaving_the_optimal_policy(rl, monkeypatch):
    """The 2x2 at L = 20 (> its longest path, 3): 2 eps_20 = 10.6 > Delta = 0.9 and greedy(q_20)
    moves pi* at the target (stay -> left). Real runs as above (10 runs of 800 episodes from the
    all-stay policy): every run still follows a non-optimal policy in the last half."""
    mdp = EXAMPLES["2x2"]().mdp()
    _, optimal, delta, _ = optimal_actions(mdp)
    pi_star = optimal_policies(optimal)[0]
    q_L = visit_average(mdp, pi_star, SHORT)
    runs = list(_non_optimal_episodes(rl, EXAMPLES["2x2"], SHORT, 10, 800, monkeypatch))
    counts, finals = [c for c, _ in runs], [f for _, f in runs]
    current().record(non_optimal_episodes_in_the_last_half=counts, final_optimal=finals,
                     greedy_at_the_target_of_q_20=int(q_L[3].argmax()))  # fmt: skip
    if not all(counts):
        raise ClaimNotRefuted(
            f"MC-04.short-episodes: at L = {SHORT} only {sum(map(bool, counts))} of 10 runs leave "
            "the optimal policies in the last half"
        )
    current().counterexample = (
        f"the book's 2x2 example, L = {SHORT}: each of 10 MC ES runs still follows non-optimal "
        f"policies in the last half of 800 episodes ({counts})"
    )


def limit_dynamics(rl, mdp, length, max_rounds=50):
    """Follow pi <- greedy(every_visit_limit of pi) (impl's model, checked above against the
    episodes traced here) from an optimal policy, until it repeats: (the first policy with an
    action outside the optimal sets or None, the number of rounds)."""
    optimal = optimal_actions(mdp)[1]
    actions, seen = optimal_policies(optimal)[0], []
    rows = np.arange(mdp.n_states)
    for k in range(max_rounds):
        if not optimal[rows, actions].all():
            return actions, k
        if any(np.array_equal(actions, old) for old in seen):
            break
        seen.append(actions)
        actions = improve(rl.every_visit_limit(mdp, actions, length), actions)
    return None, len(seen)


@claim(refutes="MC-04.short-episodes")
def test_short_episodes_leave_no_optimal_fixed_point(rl):
    """From an optimal policy, pi <- greedy(q_L(pi)) reaches a non-optimal policy: the book's
    examples at L = 10, 20, 50 where every episode of pi* reaches its cycle (L >= d + p; shorter
    episodes fail for MC-03's reason, whatever the averaging)."""

    def fits(name, L):
        mdp = EXAMPLES[name]().mdp()
        period, d = cycle_structure(mdp, optimal_policies(optimal_actions(mdp)[1])[0])
        return L >= d + period.max()

    cases = [(n, L) for L in (20, 10, 50) for n in ("2x2", "1x2", "3x3", "5x5") if fits(n, L)]

    def converges(case):
        name, L = case
        return limit_dynamics(rl, EXAMPLES[name]().mdp(), L)[0] is None

    name, L = refute(st.sampled_from(cases), converges, claim="MC-04.short-episodes",
                     describe=lambda c: f"the book's {c[0]} example with episodes of length {c[1]}")  # fmt: skip
    table = {}
    for n in EXAMPLES:
        for length in (20, 50, 100, 200):
            left, rounds = limit_dynamics(rl, EXAMPLES[n]().mdp(), length)
            table[f"{n}, L = {length}"] = (
                "stays optimal" if left is None else f"non-optimal after {rounds} rounds"
            )
    current().record(**table)
    current().summary = (
        f"{name}, L = {L}: from pi*, greedy(every-visit averages) reaches a non-optimal policy "
        "(returns near the episode end are truncated)"
    )


@claim("MC-06")
@given(world=st.one_of(st.just(gw.example_5x5()), grid_worlds(max_side=4)))
def test_best_epsilon_greedy_values_decrease_with_epsilon(rl, world):
    """Values from the independent reference (v* by LP, v_pi by a dense solve, each with its
    certificate eps): impl's values are v_pi of the policy it returns; v*_eps is non-increasing
    in eps; the policy is greedy for its own q (a fixed point within the class), and where
    |A|^|S| <= 1024 no deterministic mu has a better eps-greedy policy anywhere."""
    mdp = world.mdp()
    S, A = mdp.n_states, mdp.n_actions
    v_star, err_star = reference_optimum(mdp)
    previous, prev_err, prev_ties = v_star, err_star, 0.0
    for eps in (0.1, 0.2, 0.5, 1.0):
        actions, v = rl.best_epsilon_greedy(mdp, eps)
        pi = rl.epsilon_greedy(policy.deterministic(actions, A), eps)
        v_pi, err = reference_policy_value(mdp, pi)
        scale = np.abs(v_pi).max() + np.abs(mdp.reward).max()
        assert_close(v, v_pi, ulps=0, abs_floor=err + lu_noise(S, mdp.gamma, scale),
                     what=f"eps = {eps}: impl's values - v_pi")  # fmt: skip
        # the eps-greedy class shrinks as eps grows (eps2-greedy policies are eps1-soft); the
        # previous solution is optimal in its class up to its ties: slack t / (1 - gamma)
        assert np.all(v_pi <= previous + err + prev_err + prev_ties), (
            f"v*_eps increased at eps = {eps}"
        )
        q, rounding = reference_q(mdp, v_pi)
        ties = tie_tolerance(q) + 2 * (mdp.gamma * err + rounding)
        chosen = q[np.arange(S), actions]
        assert np.all(chosen >= q.max(axis=1) - ties), "not greedy for its own q"
        if A**S <= 1024:
            for mu in itertools.product(range(A), repeat=S):
                other = rl.epsilon_greedy(policy.deterministic(np.array(mu), A), eps)
                v_other, err_other = reference_policy_value(mdp, other)
                assert np.all(v_other <= v_pi + err + err_other + ties.max() / (1 - mdp.gamma)), (
                    f"eps = {eps}: the eps-greedy policy of {mu} beats the returned one"
                )
        previous, prev_err = v_pi, err
        prev_ties = ties.max() / (1 - mdp.gamma)
    if world.n_rows == 5:  # the book's 5x5: strictly below v* for eps = 0.1
        _, v01 = rl.best_epsilon_greedy(mdp, 0.1)
        assert np.max(v_star - v01) > 1.0
        current().record(max_loss_at_eps_0_1=float(np.max(v_star - v01)))
    current().summary = (
        "v*_eps <= v*, decreasing in eps; strictly below v* on the 5x5 for eps = 0.1"
    )


@claim("MC-06")
def test_mc_epsilon_greedy_runs_reach_the_best_epsilon_greedy_policy(rl):
    """Every one of 10 runs of 200 episodes (L = 100), eps = 0.1, on the 1x2 example ends at an
    eps-greedy policy with the values of the best eps-greedy policy, found here by enumerating
    the 9 deterministic mu (values by the reference solve): v*_0.1 = (9, 9) < v* = (10, 10).
    (Measured: 20 of 20 seeds.)"""
    mdp = gw.example_1x2().mdp()
    S, A, eps = mdp.n_states, mdp.n_actions, 0.1

    def value(actions):
        return reference_policy_value(
            mdp, rl.epsilon_greedy(policy.deterministic(np.array(actions), A), eps)
        )

    values = [value(mu) for mu in itertools.product(range(A), repeat=S)]
    v_best, err_best = max(values, key=lambda ve: ve[0].sum())
    assert all(np.all(v <= v_best + e + err_best) for v, e in values), "no best mu dominates"
    gaps = []
    for seed in range(10):
        result = rl.mc_epsilon_greedy(mdp, eps, 200, 100, np.random.default_rng(seed))
        v, err = value(result.actions)
        gaps.append(float(np.max(v_best - v)))
        assert gaps[-1] <= err + err_best, f"run {seed} ends below v*_eps: {v} < {v_best}"
    assert np.all(v_best < 10 - 0.5), "the best eps-greedy policy is not optimal"
    current().record(v_best_eps=v_best.round(3).tolist(), value_gaps_of_the_runs=gaps)


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
def test_first_visit_unbiased_every_visit_biased_but_consistent_exactly(rl, p, gamma):
    """Expectations over T ~ Geometric(1 - p) of impl's estimators on the episode of length T
    (one state, reward 1 per step): E[first-visit] = v; E[every-visit of one episode] < v; the
    pooled every-visit ratio E[T x every-visit] / E[T] = v (its limit over many episodes)."""
    v = 1 / (1 - p * gamma)  # v = 1 + p gamma v
    cache = {}

    def estimates(n):  # (first-visit, every-visit) of the episode of length n
        if n not in cache:
            episode = [(np.zeros(n, dtype=int), np.ones(n))]
            cache[n] = (rl.first_visit_values(episode, gamma, 1)[0],
                        rl.every_visit_values(episode, gamma, 1)[0])  # fmt: skip
        return cache[n]

    first = series(p, gamma, lambda n: estimates(n)[0])
    every_single = series(p, gamma, lambda n: estimates(n)[1])
    pooled = series(p, gamma, lambda n: n * estimates(n)[1]) / series(p, gamma, lambda n: n)
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
def test_sampled_first_and_every_visit_estimates(rl, seed):
    """p = 0.8, gamma = 0.9: v = 1/(1 - 0.72) = 3.571; returns lie in [1, 1/(1 - gamma)] = [1, 10].
    N = 4000 episodes: first-visit within Hoeffding's radius of v; the per-episode every-visit
    estimate within the radius of its (biased) expectation, and rejected as an estimate of v."""
    p, gamma, n = 0.8, 0.9, 4000
    v = 1 / (1 - p * gamma)
    episodes = geometric_mrp_episodes(p, n, seed.numpy())
    first = rl.first_visit_values(episodes, gamma, 1)[0]
    per_episode = np.mean([rl.every_visit_values([e], gamma, 1)[0] for e in episodes])
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
    pooled = rl.every_visit_values(episodes, gamma, 1)[0]
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


@claim("MC-04.long-episodes")
def test_exploring_starts_cover_every_pair_and_average_every_visit(rl, monkeypatch):
    _check_control_run(rl, monkeypatch, None)


@claim("MC-06")
@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.0])
def test_epsilon_greedy_follows_its_class_and_averages_every_visit(rl, monkeypatch, epsilon):
    _check_control_run(rl, monkeypatch, epsilon)


def _check_control_run(rl, monkeypatch, epsilon):
    """MC Exploring Starts (epsilon None) and MC epsilon-Greedy: every episode follows a
    deterministic policy (ES; each block of S A episodes starts once at every pair) or an
    epsilon-greedy one, pi(a*|s) = 1 - epsilon (A - 1)/A and epsilon/A elsewhere (the first:
    uniform, with nothing learnt yet); the final q is the every-visit average of the returns
    (summed forwards here) over all episodes drawn; q = 0 where none went."""
    mdp = gw.example_2x2().mdp()
    S, A, n, length = mdp.n_states, mdp.n_actions, 60, 4
    rng = np.random.default_rng(5)
    if epsilon is None:
        result, calls = _recorded_run(
            monkeypatch, lambda: rl.mc_exploring_starts(mdp, n, length, rng)
        )
    else:
        result, calls = _recorded_run(
            monkeypatch, lambda: rl.mc_epsilon_greedy(mdp, epsilon, n, length, rng)
        )
    assert len(calls) == result.iterations == n and result.steps == n * length
    visited = np.zeros(S, dtype=bool)  # states updated by an earlier episode
    if epsilon is None:
        firsts = [int(states[0] * A + actions[0]) for _, (states, actions, _) in calls]
        for block in range(0, n - S * A + 1, S * A):
            assert sorted(firsts[block : block + S * A]) == list(range(S * A)), "exploring starts"
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
        g = forward_returns(rewards[None, :], mdp.gamma)[0]
        np.add.at(total, (states, actions), g)
        np.add.at(count, (states, actions), 1)
    expected = np.divide(total, count, out=np.zeros((S, A)), where=count > 0)
    assert_close(result.q, expected, ulps=8 * n * length, scale=np.abs(expected).max() + 1,
                 what="q = every-visit average of the returns")  # fmt: skip


def _policies_followed_once(mdp, actions0):
    """The greedy actions of the policy the first episode of MC ES follows."""
    mp = pytest.MonkeyPatch()
    try:
        followed = _policies_followed(mp)
        mc.mc_exploring_starts(mdp, 1, 2, np.random.default_rng(0), actions0=actions0)
    finally:
        mp.undo()
    return tuple(int(a) for a in followed[0])


def test_mc_argument_checks():
    mdp = gw.example_2x2().mdp()
    rng = np.random.default_rng(0)
    for bad in (1.0, True, 0):
        with pytest.raises(ValueError, match="^n_episodes: must be a positive integer"):
            mc.mc_exploring_starts(mdp, bad, 3, rng)
        with pytest.raises(ValueError, match="^length: "):
            mc.mc_exploring_starts(mdp, 3, bad, rng)
    for bad in ([0, 1, 2], [0, 1, 2, 5], [0, 1, 2, -1], [0.0, 1.0, 2.0, 3.0]):
        with pytest.raises(ValueError, match="^actions0: expected 4 action indices"):
            mc.mc_exploring_starts(mdp, 3, 3, rng, actions0=bad)
    first = _policies_followed_once(mdp, [4, 3, 2, 1])
    assert first == (4, 3, 2, 1), "the first episode follows actions0"
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


# Issue 16 (bad input): these were silent wrong results or errors from deep inside numpy.


@pytest.mark.parametrize("estimator", [mc.every_visit_values, mc.first_visit_values])
@pytest.mark.parametrize("states", [[0, -1], [0, 3], [0.0, 1.0]])
def test_episodes_with_states_outside_the_model_are_refused(estimator, states):
    """every_visit_values credited state -1 to the last state (numpy's negative indexing)."""
    with pytest.raises(ValueError, match="^episodes: episode 0 has a state outside 0..2"):
        estimator([(states, [1.0, 2.0])], 0.9, 3)


def test_sampler_refuses_states_and_actions_outside_the_model():
    mdp = gw.example_2x2().mdp()
    sampler = mc.Sampler(mdp, np.random.default_rng(0))
    pi = np.full((mdp.n_states, mdp.n_actions), 1 / mdp.n_actions)
    for s0 in (-1, 4, 1.0):
        with pytest.raises(ValueError, match=r"^s0: must be an index in \[0, 3\]"):
            sampler.episode(pi, s0, 0, 3)
    for a0 in (-1, 5):
        with pytest.raises(ValueError, match=r"^a0: must be an index in \[0, 4\]"):
            sampler.episode(pi, 0, a0, 3)
    with pytest.raises(ValueError, match="^pi: each row must hold probabilities summing to 1"):
        sampler.episode(2 * pi, 0, 0, 3)
    with pytest.raises(TypeError, match="^rng: expected a numpy Generator"):
        mc.Sampler(mdp, 0)


def test_mc_basic_needs_at_least_one_iteration():
    """mc_basic(..., max_iter=0) raised UnboundLocalError; now a ValueError naming max_iter."""
    mdp = gw.example_2x2().mdp()
    for max_iter in (0, -1, 1.0):
        with pytest.raises(ValueError, match="^max_iter: must be a positive integer"):
            mc.mc_basic(mdp, 1, 3, np.random.default_rng(0), max_iter=max_iter)
    with pytest.raises(ValueError, match="^max_iter: must be a positive integer"):
        mc.best_epsilon_greedy(mdp, 0.1, max_iter=0)
