"""Bad-input specs: impl/rl/approximation/ (mean estimation, Robbins-Monro, Dvoretzky, gradient
descent on the mean objective)."""

import numpy as np

from properties.badinput import spec
from properties.badinput.wrong import (
    also,
    bad_choice,
    bad_int,
    complex_dtype,
    empty,
    mismatched,
    not_callable,
    not_finite,
    outside,
    reshaped,
    values,
)

# Area-local makers ------------------------------------------------------------------------------

# not an array of real numbers: None, a string, a dict, an entry that is no number, a ragged
# nesting, booleans
not_reals = values(None, "x", {"x": 1}, [None, 1.0], [[1.0], [1.0, 2.0]], [True, False])
not_reals_but_none = values("x", {"x": 1}, [None, 1.0], [[1.0], [1.0, 2.0]], [True, False])
# not one real number: None, a string, a dict, a bool, a complex number, an array
not_scalar = values(None, "0.5", {"x": 1}, True, 1j, [1.0, 2.0], np.ones(2))
not_rng = values(None, 3, "rng", {"seed": 0})
not_flag = values(None, "yes", 1, 0.5)
# 1-based iterate indices for K = 3 steps must lie in [1, 4]
bad_keep = values([0], [5], [], [1.5], "1", [[1]], True, [True], np.array([1, 9]))
samples_not_reals = values(
    None, "x", {"x": 1}, [None, 1.0, 2.0], [[1.0], [1.0, 2.0]], [True, False, True], 3.0
)


def steps_wrong(lo_open, others=(), at_most_one=False, none_ok=False):
    """Wrong step sizes: out of range, not finite, empty, not 1-D, length off, not numbers (None
    too, unless it means the default steps)."""
    out = outside(0, 1) if at_most_one else outside(0, None, lo_open=lo_open)
    not_numbers = not_reals_but_none if none_ok else not_reals
    wrong = [out, not_finite, empty, reshaped, not_numbers, complex_dtype]
    if others:
        wrong.append(also(*others)(mismatched()))
    return wrong


def zero_noise(delta, k):
    return np.zeros_like(delta)


def g_linear(w, k):
    return w - 1.0


def rng():
    return np.random.default_rng(0)


X1 = np.array([1.0, 2.0, 4.0])
X2 = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
STEPS = np.array([0.5, 0.25, 0.125])

# mean.py ---------------------------------------------------------------------------------------

W1_SCALAR_WRONG = [not_finite, values("0.5", {"x": 1}, [1.0, 2.0], 1j, True, [None])]

spec(
    "impl.rl.approximation.mean.incremental_mean",
    valid=lambda: dict(x=X1.copy(), w1=0.5),
    wrong=dict(
        x=[not_finite, empty, samples_not_reals, complex_dtype],
        w1=W1_SCALAR_WRONG,
    ),
)

spec(
    "impl.rl.approximation.mean.weighted_iterate",
    valid=lambda: dict(x=X1.copy(), a=np.array([1.0, 0.5, 0.25]), w1=0.0),
    wrong=dict(
        x=[not_finite, empty, samples_not_reals, complex_dtype],
        a=steps_wrong(lo_open=True, others=("x",)),
        w1=W1_SCALAR_WRONG,
    ),
)

spec(
    "impl.rl.approximation.mean.streaming_mean",
    valid=lambda: dict(chunks=[np.array([1.0, 2.0]), np.array([3.0])]),
    wrong=dict(
        chunks=[
            values(
                None,
                3,
                [],
                [np.zeros(0)],
                [np.ones((2, 3)), np.ones((2, 2))],
                [np.array([1.0, np.nan])],
                [np.array([1.0]), np.array([-np.inf])],
                [["a", "b"]],
                [None],
                [3.0],
                [np.array([1 + 1j])],
                [[True, False]],
                [[[1.0], [1.0, 2.0]]],
                [[None, 1.0]],
            )
        ]
    ),
)

# robbins_monro.py ------------------------------------------------------------------------------

spec(
    "impl.rl.approximation.robbins_monro.robbins_monro",
    valid=lambda: dict(g_tilde=g_linear, w1=np.array([0.0, 2.0]), a=STEPS.copy(), keep=[1, 4]),
    wrong=dict(
        g_tilde=[not_callable],
        w1=[not_finite, not_reals, complex_dtype],
        a=steps_wrong(lo_open=True),
        keep=[bad_keep],
    ),
)

spec(
    "impl.rl.approximation.robbins_monro.power_steps",
    valid=lambda: dict(n=3, a=1.0, p=0.75),
    wrong=dict(
        n=[bad_int(1)],
        a=[outside(0, None, lo_open=True), not_finite, not_scalar],
        p=[outside(0, None), not_finite, not_scalar],
    ),
)

spec(
    "impl.rl.approximation.robbins_monro.constant_steps",
    valid=lambda: dict(n=3, a=0.1),
    wrong=dict(n=[bad_int(1)], a=[outside(0, None, lo_open=True), not_finite, not_scalar]),
)

spec(
    "impl.rl.approximation.robbins_monro.noisy_oracle",
    valid=lambda: dict(g=np.tanh, rng=rng(), s=1.0, noise="uniform"),
    wrong=dict(
        g=[not_callable],
        rng=[not_rng],
        s=[outside(0, None), not_finite, not_scalar],
        noise=[bad_choice("normal", "uniform", "rademacher")],
    ),
)

spec(
    "impl.rl.approximation.robbins_monro.mean_square_bound",
    valid=lambda: dict(a=STEPS.copy(), c1=0.5, c2=2.0, s=1.0, e1_sq=4.0),
    wrong=dict(
        a=steps_wrong(lo_open=True),
        c1=[outside(0, 2.0, lo_open=True), not_finite, not_scalar],
        c2=[also("c1")(outside(0.5, None)), not_finite, not_scalar],
        s=[outside(0, None), not_finite, not_scalar],
        e1_sq=[outside(0, None), not_finite, not_scalar],
    ),
)

spec(
    "impl.rl.approximation.robbins_monro.linear_gaussian_law",
    valid=lambda: dict(a=STEPS.copy(), c=1.5, s=0.5, e1=2.0),
    wrong=dict(
        a=steps_wrong(lo_open=True),
        c=[not_finite, not_scalar],
        s=[outside(0, None), not_finite, not_scalar],
        e1=[not_finite, not_scalar],
    ),
)

# dvoretzky.py ----------------------------------------------------------------------------------

spec(
    "impl.rl.approximation.dvoretzky.dvoretzky",
    valid=lambda: dict(
        delta1=np.array([1.0, -0.5]),
        alpha=np.array([0.5, 0.25, 1.0]),
        beta=np.array([0.5, 0.1, 0.0]),
        eta=zero_noise,
        keep=[1, 4],
    ),
    wrong=dict(
        delta1=[not_finite, not_reals, complex_dtype],
        alpha=steps_wrong(lo_open=False, others=("beta",), at_most_one=True),
        beta=steps_wrong(lo_open=False, others=("alpha",)),
        eta=[not_callable],
        keep=[bad_keep],
    ),
)

spec(
    "impl.rl.approximation.dvoretzky.second_moment",
    valid=lambda: dict(r=np.array([0.5, 0.9, -0.2]), b=STEPS.copy(), s=1.0, v1=2.0),
    wrong=dict(
        r=[not_finite, empty, reshaped, not_reals, complex_dtype],
        b=[also("r")(mismatched()), not_finite, reshaped, not_reals, complex_dtype],
        s=[outside(0, None), not_finite, not_scalar],
        v1=[outside(0, None), not_finite, not_scalar],
    ),
)

# gradient_descent.py ---------------------------------------------------------------------------

# a number broadcasts to the sample shape; an array must have it
W1_VECTOR_WRONG = [not_finite, values(np.zeros((1, 2))), mismatched(), not_reals, complex_dtype]
X_WRONG = [not_finite, empty, samples_not_reals, complex_dtype]

spec(
    "impl.rl.approximation.gradient_descent.mean_objective_grad",
    valid=lambda: dict(w=np.array([1.0, 2.0]), x=np.array([[0.5, 0.0], [1.0, 1.0]])),
    wrong=dict(
        w=[not_finite, also("x")(mismatched()), not_reals, complex_dtype],
        x=[not_finite, mismatched("w", axis=1), not_reals, complex_dtype],
    ),
)

spec(
    "impl.rl.approximation.gradient_descent.bgd",
    valid=lambda: dict(x=X2.copy(), w1=np.array([0.0, 1.0]), n_iter=2, alpha=np.array([0.5, 0.25])),
    wrong=dict(
        x=X_WRONG,
        w1=W1_VECTOR_WRONG,
        n_iter=[bad_int(1)],
        alpha=steps_wrong(lo_open=True, others=("n_iter",), none_ok=True),
        grad=[not_callable],
    ),
)

spec(
    "impl.rl.approximation.gradient_descent.mbgd",
    valid=lambda: dict(
        x=X2.copy(),
        w1=np.array([0.0, 1.0]),
        batches=np.array([[0, 1], [2, 2]]),
        alpha=np.array([0.5, 0.25]),
    ),
    wrong=dict(
        x=X_WRONG,
        w1=W1_VECTOR_WRONG,
        batches=[
            values(
                [[0, 3], [1, 2]],
                [[-1, 0], [1, 2]],
                [[0.5, 1.0], [1.0, 2.0]],
                [[True, False], [True, True]],
                [0, 1],
                np.zeros((0, 2), dtype=int),
                np.zeros((2, 0), dtype=int),
                None,
                "01",
                [[0, 1], [2]],
                [[None, 1], [0, 1]],
            ),
            reshaped,
            also("alpha")(mismatched(axis=0)),
        ],
        alpha=steps_wrong(lo_open=True, others=("batches",), none_ok=True),
        grad=[not_callable],
    ),
)

spec(
    "impl.rl.approximation.gradient_descent.sgd",
    valid=lambda: dict(x=X2.copy(), w1=np.array([0.0, 1.0]), alpha=STEPS.copy()),
    wrong=dict(
        x=X_WRONG,
        w1=W1_VECTOR_WRONG,
        alpha=steps_wrong(lo_open=True, others=("x",), none_ok=True),
        grad=[not_callable],
    ),
)

spec(
    "impl.rl.approximation.gradient_descent.sample_batches",
    valid=lambda: dict(n=3, m=2, n_iter=2, rng=rng(), replace=False),
    wrong=dict(
        n=[bad_int(1), also("m")(values(1))],
        m=[bad_int(1), values(4, 10)],
        n_iter=[bad_int(1)],
        rng=[not_rng],
        replace=[not_flag],
    ),
)

spec(
    "impl.rl.approximation.gradient_descent.relative_gradient_error",
    valid=lambda: dict(w=np.array([1.0, 2.0]), x=np.array([0.5, 0.0]), mean=np.array([0.0, 0.0])),
    wrong=dict(
        w=[
            not_finite,
            also("x", "mean")(mismatched()),
            not_reals,
            complex_dtype,
            values(np.array([0.0, 0.0])),  # w = E[X]: the relative error is undefined
        ],
        x=[not_finite, mismatched("w"), not_reals, complex_dtype],
        mean=[not_finite, mismatched("w"), not_reals, complex_dtype],
    ),
)

# conditions.py ----------------------------------------------------------------------------------


def slope_of_wrong_shape(w):
    return np.ones(np.size(w) + 1)


def slope_not_finite(w):
    return np.full(np.shape(w), np.nan)


POINTS = np.array([-1.0, 0.0, 2.0])
G_PRIME_WRONG = [not_callable, values(slope_of_wrong_shape, slope_not_finite)]
POINTS_WRONG = [not_finite, empty, reshaped, not_reals, complex_dtype]

spec(
    "impl.rl.approximation.conditions.partial_sums",
    valid=lambda: dict(a=STEPS.copy(), at=[1, 3]),
    wrong=dict(a=steps_wrong(lo_open=True), at=[bad_keep]),
)

spec(
    "impl.rl.approximation.conditions.gain_steps",
    valid=lambda: dict(c=np.array([1.0, 0.5, 2.0])),
    wrong=dict(c=steps_wrong(lo_open=True)),
)

spec(
    "impl.rl.approximation.conditions.slope_bounds",
    valid=lambda: dict(g_prime=np.cos, w=POINTS.copy()),
    wrong=dict(g_prime=G_PRIME_WRONG, w=POINTS_WRONG),
)

spec(
    "impl.rl.approximation.conditions.condition_a",
    valid=lambda: dict(g_prime=np.cos, w=POINTS.copy()),
    wrong=dict(g_prime=G_PRIME_WRONG, w=POINTS_WRONG),
)
