"""MC-05: epsilon-greedy policies (family `rl`: impl/rl/policy.py), exactly on rationals."""

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from impl.rl import policy
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import exact_numbers

q_tables = st.integers(1, 5).flatmap(
    lambda A: st.lists(st.lists(exact_numbers(), min_size=A, max_size=A), min_size=1, max_size=6)
)
epsilons = st.fractions(0, 1, max_denominator=50)


@claim("MC-05")
@given(q=q_tables, eps=epsilons)
def test_epsilon_greedy_probabilities_and_value(rl, q, eps):
    q = np.array(q, dtype=object)
    S, A = q.shape
    pi = rl.epsilon_greedy(q, eps)
    best = rl.greedy_actions(q)
    for s in range(S):
        assert q[s, best[s]] == max(q[s])
        assert sum(pi[s]) == 1
        assert pi[s, best[s]] == 1 - eps * Fraction(A - 1, A)
        assert all(pi[s, a] == eps / A for a in range(A) if a != best[s])
        # sum_a pi(a|s) q(s, a) = (1 - eps) max q + eps mean q, exactly
        assert sum(pi[s] * q[s]) == (1 - eps) * max(q[s]) + eps * sum(q[s]) / A
    current().summary = (
        "exact on rationals: 1 - eps(|A|-1)/|A| and eps/|A|; value (1-eps) max q + eps mean q"
    )


@claim("MC-05")
@given(q=q_tables)
def test_epsilon_zero_is_greedy_and_one_is_uniform(rl, q):
    q = np.array(q, dtype=object)
    S, A = q.shape
    greedy = rl.epsilon_greedy(q, Fraction(0))
    assert all(greedy[s, a] == (a == rl.greedy_actions(q)[s]) for s in range(S) for a in range(A))
    uniform = rl.epsilon_greedy(q, Fraction(1))
    assert all(uniform[s, a] == Fraction(1, A) for s in range(S) for a in range(A))


def test_exact_epsilon_on_a_float_table_and_deterministic_input():
    """A Fraction epsilon keeps the policy exact (object entries) even when q is float; a float
    epsilon on a float q gives float64. deterministic() takes only a 1-D integer array."""
    import pytest

    q = np.array([[0.5, 2.0, 1.0]])
    pi = policy.epsilon_greedy(q, Fraction(1, 3))
    assert pi.dtype == object and pi.tolist() == [[Fraction(1, 9), Fraction(7, 9), Fraction(1, 9)]]
    assert policy.epsilon_greedy(q, 0.3).dtype == np.float64
    assert policy.deterministic(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    for bad in (np.zeros((2, 2), dtype=int), np.array([0.0, 1.0])):
        with pytest.raises(ValueError, match="^actions: "):
            policy.deterministic(bad, 2)
