"""The MDP model (impl/rl/mdp.py): validation of its inputs, and the dense/outcome forms agree."""

import numpy as np
import pytest
from hypothesis import given

from impl.rl.mdp import MDP
from properties.strategies import random_mdps, seeds
from properties.tolerances import assert_close

ONE = np.ones((1, 1, 1))


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: MDP(np.zeros((1, 1, 1), int), [[[0.9]]], [[[0.0]]], 0.9), "prob"),
        (lambda: MDP(np.zeros((1, 1, 2), int), [[[1.5, -0.5]]], [[[0.0, 0.0]]], 0.9), "prob"),
        (lambda: MDP(np.zeros((1, 1, 1), int), [[[np.nan]]], [[[0.0]]], 0.9), "prob"),
        (lambda: MDP(np.ones((1, 1, 1), int), ONE, [[[0.0]]], 0.9), "next_state"),
        (lambda: MDP(np.zeros((1, 1, 1), int), ONE, [[[np.inf]]], 0.9), "reward"),
        (lambda: MDP(np.zeros((1, 1, 1), int), ONE, [[0.0]], 0.9), "reward"),  # not (S, A, K)
        (lambda: MDP(np.zeros((1, 1), int), [[1.0]], [[0.0]], 0.9), "next_state"),  # not 3-D
        (lambda: MDP(np.zeros((1, 1, 1), int), ONE, [[[0.0]]], 1.0), "gamma"),
        (lambda: MDP(np.zeros((1, 1, 1), int), ONE, [[[0.0]]], -0.5), "gamma"),
        (lambda: MDP.from_dense(np.ones((2, 1, 1)), [[0.0], [0.0]], 0.5), "P"),
        (lambda: MDP.from_dense(ONE, [[0.0, 1.0]], 0.5), "R"),
    ],
)
def test_bad_models_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        make()


@given(model=random_mdps(max_states=8), seed=seeds)
def test_outcome_form_and_dense_form_agree(model, seed):
    mdp = model.mdp()
    v = seed.numpy().standard_normal(mdp.n_states)
    P = mdp.transition_tensor()
    dense = MDP.from_dense(P, mdp.expected_reward(), mdp.gamma)
    # both backups sum at most max(K, S) products: (S + 3) u relative to max|r| + ||v||
    scale = np.abs(mdp.reward).max() + np.abs(v).max()
    assert_close(
        dense.backup(v), mdp.backup(v), ulps=2 * (mdp.n_states + 3), scale=scale, what="backup"
    )
    assert_close(
        P.sum(axis=2), np.ones(P.shape[:2]), ulps=2 * mdp.n_states, what="rows of p(s'|s, a)"
    )


def test_fields_become_index_and_float_arrays():
    """Nested lists of ints are accepted and stored as arrays: next_state as np.intp indices,
    prob and reward as float64, and the model computes with them (one backup)."""
    mdp = MDP(next_state=[[[0, 1]], [[1, 1]]], prob=[[[1, 0]], [[0, 1]]],
              reward=[[[2, 5]], [[3, 0]]], gamma=0.5)  # fmt: skip
    assert mdp.next_state.dtype == np.intp and mdp.next_state.shape == (2, 1, 2)
    assert mdp.prob.dtype == np.float64 and mdp.reward.dtype == np.float64
    assert (mdp.n_states, mdp.n_actions) == (2, 1)
    assert mdp.backup(np.array([1.0, 4.0])).tolist() == [[2.5], [2.0]]


# Issue 16 (bad input): these were silent wrong results or errors from deep inside numpy.


def test_backup_refuses_more_values_than_states():
    """MDP.backup ignored the entries of v past n_states (it indexed v by next_state)."""
    mdp = MDP.from_dense(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), 0.5)
    with pytest.raises(ValueError, match=r"^v: expected shape \(2,\)"):
        mdp.backup(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="^v: has a non-finite entry"):
        mdp.backup(np.array([1.0, np.nan]))


def test_policy_methods_and_from_dense_name_their_argument():
    mdp = MDP.from_dense(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), 0.5)
    with pytest.raises(TypeError, match="^pi: expected real numbers|^pi: expected an array"):
        mdp.policy_reward(np.array([[1.0 + 1j], [1.0]]))
    with pytest.raises(ValueError, match="^pi: expected an"):
        mdp.policy_matrix(np.ones((3, 1)))
    with pytest.raises(ValueError, match="^P: negative probability"):
        MDP.from_dense([[[1.5, -0.5]], [[0.5, 0.5]]], [[0.0], [0.0]], 0.5)
    with pytest.raises(TypeError, match="^gamma: "):
        MDP.from_dense(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), None)
