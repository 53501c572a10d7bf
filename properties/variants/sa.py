"""Rejected variants of the stochastic-approximation claims (SA-*).

Each patches the family adapter (properties/adapters/sa.py, `sa.Reference`) or a helper module
of impl/rl/approximation that the properties call by attribute (`rm.power_steps`, ...).
"""

import numpy as np

from impl._recursion import iterate
from impl.rl.approximation import dvoretzky as dv
from impl.rl.approximation import gradient_descent as gd
from impl.rl.approximation import robbins_monro as rm
from properties.adapters import sa
from properties.variants import variant


@variant(
    "SA-01",
    name="mean-step-1/(k+1)",
    why="the incremental mean with step 1/(k+1) in place of 1/k (w_1 treated as a first sample)",
)
def _(mp):
    mp.setattr(sa.Reference, "incremental_mean", sa.OffByOneMean.incremental_mean)


def _mean_before_issue_15(x, w1=0.0):
    """impl/rl/approximation/mean.py's incremental_mean before issue 15: w_1 defaults to the
    float 0.0, and the iterates take the common dtype of x and w_1 (integer for both)."""
    x = np.asarray(x)
    w = np.asarray(w1)[()]
    iterates = np.empty((x.shape[0] + 1, *x.shape[1:]), dtype=np.result_type(x, np.asarray(w)))
    iterates[0] = w
    for k in range(1, x.shape[0] + 1):
        w = w - (w - x[k - 1]) / k
        iterates[k] = w
    return iterates


@variant(
    "SA-01",
    name="mean-default-start-float-zero",
    why="w_1 defaults to the float 0.0 (exact Fraction samples silently become float64) and "
    "integer samples with an integer w_1 give integer iterates (averages truncated)",
)
def _(mp):
    mp.setattr(sa.Reference, "incremental_mean", staticmethod(_mean_before_issue_15))


@variant(
    "SA-01",
    name="streaming-block-weight-m-over-k",
    why="the block form w <- w + (m / k)(xbar - w), with the count before the chunk in place of "
    "the count after it, m / (k + m)",
)
def _(mp):
    def streaming_mean(chunks):
        w, k = None, 0
        for chunk in chunks:
            chunk = np.asarray(chunk)
            m = chunk.shape[0]
            if m == 0:
                continue
            w = chunk.mean(axis=0) if w is None else w + (m / k) * (chunk.mean(axis=0) - w)
            k += m
        return w, k

    mp.setattr(sa.Reference, "streaming_mean", staticmethod(streaming_mean))


# Robbins-Monro (SA-02, SA-03, SA-04) ----------------------------------------------------------


def _rm_sign_flipped(g_tilde, w1, a, keep=None):
    """w_{k+1} = w_k + a_k g~(w_k): ascent on g instead of root finding."""
    return rm.robbins_monro(lambda w, k: -g_tilde(w, k), w1, a, keep)


@variant(
    "SA-02",
    "SA-03.tanh",
    "SA-03.cubic-small-gain",
    "SA-04",
    name="rm-step-sign-flipped",
    why="w_{k+1} = w_k + a_k g~(w_k): the sign of the RM step flipped (moves away from the root)",
)
def _(mp):
    mp.setattr(sa.Reference, "robbins_monro", staticmethod(_rm_sign_flipped))


def _rm_next_step(g_tilde, w1, a, keep=None):
    """Step k uses a_{k+1} (the last step repeats a_K): the step-size index off by one."""
    a = np.asarray(a, dtype=float)
    return rm.robbins_monro(g_tilde, w1, np.append(a[1:], a[-1]), keep)


@variant(
    "SA-02",
    "SA-03.tanh",
    name="rm-step-index-shifted",
    why="step k uses a_{k+1}: the step-size index off by one (a_k = 1/(k+1) for the article's 1/k)",
)
def _(mp):
    mp.setattr(sa.Reference, "robbins_monro", staticmethod(_rm_next_step))


@variant(
    "SA-02",
    "SA-03.tanh",
    "SA-03.cubic-small-gain",
    name="rm-summable-power-steps",
    why="power_steps gives a / k^(2p) (k squared): a_k = 1/k^2 is summable, the iterates stall",
)
def _(mp):
    power_steps = rm.power_steps
    mp.setattr(rm, "power_steps", lambda n, a=1.0, p=1.0: power_steps(n, a, 2 * p))


@variant(
    "SA-02",
    "SA-03.tanh",
    "SA-03.cubic",
    name="power-steps-default-gain-0.1",
    why="the default step a_k = 1/k (the article's) silently made 0.1/k, the gain that tames the "
    "cubic example: it hides SA-03.cubic's divergence and moves the tanh example's first step",
)
def _(mp):
    power_steps = rm.power_steps
    mp.setattr(rm, "power_steps", lambda n, a=0.1, p=1.0: power_steps(n, a, p))


@variant(
    "SA-03.cubic",
    name="rm-iterates-clipped",
    why="RM with its iterates clipped to [-10, 10] (a guard against overflow): a projected RM, "
    "which tames the cubic example and hides its divergence",
)
def _(mp):
    def projected(g_tilde, w1, a, keep=None):
        a = np.asarray(a, dtype=float)
        w = np.asarray(w1, dtype=float)
        return iterate(lambda w, k: np.clip(w - a[k - 1] * g_tilde(w, k), -10, 10), w, a.size, keep)

    mp.setattr(sa.Reference, "robbins_monro", staticmethod(projected))


@variant(
    "SA-02",
    name="rm-bound-contraction-at-c2",
    why="the mean-square bound (2) with rho_k = |1 - a_k c2| only (the max over the slope range "
    "dropped): too optimistic where g' is near c1, so the convergence check's K comes too early",
)
def _(mp):
    def mean_square_bound(a, c1, c2, s, e1_sq):
        a = np.asarray(a, dtype=float)
        return dv.second_moment(np.abs(1 - a * c2), a, s, e1_sq)

    mp.setattr(rm, "mean_square_bound", mean_square_bound)


@variant(
    "SA-02",
    name="uniform-noise-without-sqrt3",
    why="uniform noise on [-s, s] (variance s^2 / 3) where the oracle promises std s",
)
def _(mp):
    noisy_oracle = rm.noisy_oracle

    def oracle(g, rng, s=1.0, noise="normal"):
        if noise != "uniform":
            return noisy_oracle(g, rng, s, noise)
        return lambda w, k: g(w) + s * rng.uniform(-1.0, 1.0, np.shape(w))

    mp.setattr(rm, "noisy_oracle", oracle)


# Dvoretzky (SA-05) ---------------------------------------------------------------------------


@variant(
    "SA-05",
    name="dvoretzky-without-beta",
    why="Delta_{k+1} = (1 - alpha_k) Delta_k + eta_k: the factor beta_k on the noise dropped",
)
def _(mp):
    def recursion(delta1, alpha, beta, eta, keep=None):
        return dv.dvoretzky(delta1, alpha, np.ones_like(np.asarray(beta, dtype=float)), eta, keep)

    mp.setattr(sa.Reference, "dvoretzky", staticmethod(recursion))


@variant(
    "SA-05",
    name="dvoretzky-noise-subtracted",
    why="Delta_{k+1} = (1 - alpha_k) Delta_k - beta_k eta_k: the noise term's sign flipped, "
    "invisible to symmetric noise",
)
def _(mp):
    def recursion(delta1, alpha, beta, eta, keep=None):
        return dv.dvoretzky(delta1, alpha, beta, lambda d, k: -eta(d, k), keep)

    mp.setattr(sa.Reference, "dvoretzky", staticmethod(recursion))


@variant(
    "SA-05",
    name="second-moment-unsquared",
    why="the moment recursion V_{k+1} = r_k V_k + b_k^2 s^2 (the contraction factor not squared): "
    "a bound too large, so the convergence checks run longer than the theorem's rate needs",
)
def _(mp):
    def second_moment(r, b, s, v1):
        r, b = np.asarray(r, dtype=float), np.asarray(b, dtype=float)
        v = np.empty(r.shape[0] + 1)
        v[0] = v1
        for k in range(r.shape[0]):
            v[k + 1] = r[k] * v[k] + b[k] ** 2 * s**2
        return v

    mp.setattr(dv, "second_moment", second_moment)


# Gradient descent on the mean objective (SA-04, SA-06, SA-07) --------------------------------


def _grad_without_half(w, x):
    """grad of ||w - x||^2 (the 1/2 of f dropped): 2 (w - x)."""
    return 2 * (w - x)


@variant(
    "SA-04",
    "SA-06",
    name="mean-grad-without-half",
    why="the default gradient 2 (w - x), of ||w - x||^2 instead of 1/2 ||w - x||^2",
)
def _(mp):
    def sgd(x, w1, alpha=None, grad=_grad_without_half):
        return gd.sgd(x, w1, alpha, grad)

    def bgd(x, w1, n_iter, alpha=None, grad=_grad_without_half):
        return gd.bgd(x, w1, n_iter, alpha, grad)

    def mbgd(x, w1, batches, alpha=None, grad=_grad_without_half):
        return gd.mbgd(x, w1, batches, alpha, grad)

    for name, f in (("sgd", sgd), ("bgd", bgd), ("mbgd", mbgd)):
        mp.setattr(sa.Reference, name, staticmethod(f))


@variant(
    "SA-06",
    name="batch-gradient-summed",
    why="BGD and MBGD step along the sum of the batch's gradients instead of their mean",
)
def _(mp):
    def bgd(x, w1, n_iter, alpha=None, grad=gd.mean_objective_grad):
        n = np.shape(x)[0]
        return gd.bgd(x, w1, n_iter, alpha, lambda w, xs: n * grad(w, xs))

    def mbgd(x, w1, batches, alpha=None, grad=gd.mean_objective_grad):
        m = np.shape(batches)[-1]
        return gd.mbgd(x, w1, batches, alpha, lambda w, xs: m * grad(w, xs))

    mp.setattr(sa.Reference, "bgd", staticmethod(bgd))
    mp.setattr(sa.Reference, "mbgd", staticmethod(mbgd))


@variant(
    "SA-06",
    name="mbgd-full-size-batch-is-bgd",
    why="MBGD treats a batch of m = n indices as the whole sample (BGD), ignoring repeats drawn "
    "with replacement",
)
def _(mp):
    def mbgd(x, w1, batches, alpha=None, grad=gd.mean_objective_grad):
        batches, n = np.asarray(batches), np.shape(x)[0]
        if batches.ndim == 2 and batches.shape[1] == n:
            batches = np.tile(np.arange(n), (batches.shape[0], 1))
        return gd.mbgd(x, w1, batches, alpha, grad)

    mp.setattr(sa.Reference, "mbgd", staticmethod(mbgd))


@variant(
    "SA-06",
    name="sample-batches-replace-ignored",
    why="mini-batches always drawn without replacement whatever `replace` says (with m = n every "
    "batch is then a permutation and MBGD is BGD)",
)
def _(mp):
    sample_batches = gd.sample_batches
    mp.setattr(
        gd,
        "sample_batches",
        lambda n, m, n_iter, rng, replace: sample_batches(n, m, n_iter, rng, replace=False),
    )


@variant(
    "SA-07",
    name="relative-error-of-the-raw-gradient",
    why="|grad f(w, x)| / |E grad f(w, X)| (the true gradient not subtracted)",
)
def _(mp):
    def relative(w, x, mean):
        w, x, mean = (np.asarray(v, dtype=float) for v in (w, x, mean))
        return float(np.linalg.norm(w - x) / np.linalg.norm(w - mean))

    mp.setattr(sa.Reference, "relative_gradient_error", staticmethod(relative))


@variant(
    "SA-07",
    name="relative-error-squared",
    why="the ratio of squared norms |.|^2 / |.|^2 (the square root forgotten)",
)
def _(mp):
    relative_gradient_error = gd.relative_gradient_error
    mp.setattr(
        sa.Reference,
        "relative_gradient_error",
        staticmethod(lambda w, x, mean: relative_gradient_error(w, x, mean) ** 2),
    )
