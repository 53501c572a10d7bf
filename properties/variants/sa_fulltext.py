"""Rejected variants of the full-text stochastic-approximation claims (SA-08 .. SA-12).

Each patches the family adapter (properties/adapters/sa.py, `sa.Reference`) or a module of
impl/rl/approximation that the properties call by attribute (`rm.power_steps`, `cond.*`).
"""

import numpy as np

from impl.rl.approximation import conditions as cond
from impl.rl.approximation import mean
from impl.rl.approximation import robbins_monro as rm
from properties.adapters import sa
from properties.variants import variant

# SA-08: the cubic example ------------------------------------------------------------------------


@variant(
    "SA-08",
    name="power-steps-index-shifted",
    why="a_k = a / (k+1)^p: the step index counted from 2 (the book's a_k = 1/k becomes "
    "1/(k+1)); from w_1 = 0 the first step is 2.5 instead of 5 and the cubic example converges",
)
def _(mp):
    power_steps = rm.power_steps
    mp.setattr(rm, "power_steps", lambda n, a=1.0, p=1.0: power_steps(n + 1, a, p)[1:])


# SA-09: step sizes ---------------------------------------------------------------------------------


def _cumsum_float32(a, at=None):
    a = np.asarray(a, dtype=np.float32)
    at = np.asarray([a.shape[0]] if at is None else at)
    return np.cumsum(a)[at - 1], np.cumsum(a * a)[at - 1]


@variant(
    "SA-09.constants",
    name="partial-sums-in-float32",
    why="partial sums accumulated in float32 (np.cumsum of float32 step sizes): the harmonic "
    "sum drifts by ~1e-3 at n = 1e6, and the brackets of kappa and pi^2/6 no longer hold",
)
def _(mp):
    mp.setattr(cond, "partial_sums", _cumsum_float32)


@variant(
    "SA-09.constants",
    "SA-09.admissible",
    name="sum-of-squares-as-square-of-sum",
    why="S2_n computed as (sum a_k)^2 in place of sum a_k^2: the square of a divergent sum, "
    "so the second condition seems to fail for every admissible sequence",
)
def _(mp):
    partial_sums = cond.partial_sums

    def squared(a, at=None):
        s1, _ = partial_sums(a, at)
        return s1, s1**2

    mp.setattr(cond, "partial_sums", squared)


@variant(
    "SA-09.bounded-only",
    name="gain-steps-at-the-bound",
    why="a_k = C/k with C = max_k c_k: the bounded gain replaced by its bound (the argument "
    "'c_k <= C, so c_k/k behaves like C/k'), which hides that c_k -> 0 can make sum a_k finite",
)
def _(mp):
    gain_steps = cond.gain_steps
    mp.setattr(cond, "gain_steps", lambda c: gain_steps(np.full(len(c), float(np.max(c)))))


# SA-10: summable steps -------------------------------------------------------------------------


@variant(
    "SA-10",
    name="power-steps-exponent-ignored",
    why="a_k = a/k whatever p (the exponent dropped): the summable 1/k^2 becomes 1/k, and the "
    "tanh example reaches its root from w_1 = 3, moving 2 > pi^2/6",
)
def _(mp):
    power_steps = rm.power_steps
    mp.setattr(rm, "power_steps", lambda n, a=1.0, p=1.0: power_steps(n, a, 1.0))


# SA-11: condition (a) -----------------------------------------------------------------------------


@variant(
    "SA-11.implications",
    "SA-11.cubic-lower",
    name="condition-a-non-strict",
    why="condition (a) read as 0 <= c1 (the strict inequality dropped): a g' that vanishes "
    "on an interval is accepted, and so is the cubic's g'(0) = 0",
)
def _(mp):
    mp.setattr(cond, "condition_a", lambda g_prime, w: cond.slope_bounds(g_prime, w)[0] >= 0)


@variant(
    "SA-11.cubic-upper",
    name="slope-bounds-interior-points",
    why="the slope bounds taken over the interior points only (first and last dropped): the "
    "sup of 3 w^2 at the ends of [-L, L] is missed",
)
def _(mp):
    slope_bounds = cond.slope_bounds
    mp.setattr(cond, "slope_bounds", lambda g_prime, w: slope_bounds(g_prime, np.asarray(w)[1:-1]))


# SA-12: mean estimation as RM ------------------------------------------------------------------


@variant(
    "SA-12.finite-variance",
    name="mean-iteration-sign-flipped",
    why="w_{k+1} = w_k + a_k (w_k - x_k): the sign of the correction flipped (moves away from "
    "the samples)",
)
def _(mp):
    def flipped(x, a, w1=None):
        x, a = np.asarray(x, dtype=float), np.asarray(a, dtype=float)
        w = np.zeros(x.shape[1:]) if w1 is None else np.asarray(w1, dtype=float)
        out = [w]
        for k in range(x.shape[0]):
            w = w + a[k] * (w - x[k])
            out.append(w)
        return np.stack(out)

    mp.setattr(sa.Reference, "weighted_iterate", staticmethod(flipped))


@variant(
    "SA-12.finite-variance",
    name="mean-iteration-steps-squared",
    why="w_{k+1} = w_k - a_k^2 (w_k - x_k): the squared step (summable for 1/k), so the "
    "iterates stop short of E[X]",
)
def _(mp):
    weighted_iterate = mean.weighted_iterate
    mp.setattr(
        sa.Reference,
        "weighted_iterate",
        staticmethod(lambda x, a, w1=None: weighted_iterate(x, np.asarray(a) ** 2, w1)),
    )


@variant(
    "SA-12.any-law",
    name="mean-update-clipped",
    why="the correction a_k (x_k - w_k) clipped to [-1, 1] (a heavy-tail guard): a different, "
    "robust estimator, which hides the heavy tail's late jumps",
)
def _(mp):
    def clipped(x, a, w1=None):
        x, a = np.asarray(x, dtype=float), np.asarray(a, dtype=float)
        w = np.zeros(x.shape[1:]) if w1 is None else np.asarray(w1, dtype=float)
        out = [w]
        for k in range(x.shape[0]):
            w = w + np.clip(a[k] * (x[k] - w), -1.0, 1.0)
            out.append(w)
        return np.stack(out)

    mp.setattr(sa.Reference, "weighted_iterate", staticmethod(clipped))
