"""Gradient descent on the mean objective: BGD, MBGD, SGD (seed article 7; Zhao, ch. 6.4).

Objective J(w) = E[f(w, X)] with f(w, x) = 1/2 ||w - x||^2, so grad_w f(w, x) = w - x,
E grad_w f(w, X) = w - E[X] and the minimiser is w* = E[X]. With samples {x_i}_{i=1}^n and
step sizes alpha_k (default alpha_k = 1/k):

(1) BGD   w_{k+1} = w_k - alpha_k (1/n) sum_{i=1}^{n} grad f(w_k, x_i)
          with alpha_k = 1/k: w_{k+1} = xbar (the sample mean) for every k >= 1.
(2) MBGD  w_{k+1} = w_k - alpha_k (1/m) sum_{j in I_k} grad f(w_k, x_j)
          with alpha_k = 1/k: w_{k+1} = (1/k) sum_{j<=k} xbar^{(j)}, the average of batch means.
(3) SGD   w_{k+1} = w_k - alpha_k grad f(w_k, x_k)
          with alpha_k = 1/k: w_{k+1} = (1/k) sum_{j<=k} x_j, the running mean.
    MBGD with m = n and I_k drawn *with replacement* is not BGD: I_k is a multiset, and its mean
    equals xbar only when I_k happens to be a permutation (probability n!/n^n for distinct x).
(4) Relative error of the stochastic gradient (SGD acts like GD far from w*, noisily near it):
    delta_k = |grad f(w_k, x_k) - E grad f(w_k, X)| / |E grad f(w_k, X)|
            = |E[X] - x_k| / |w_k - w*|.

Arrays of Python Fractions (dtype object) are computed exactly; floats in their own precision.
Domain: samples x (n >= 1 of them) and w_1 finite real numbers, w_1 a number or an array of the
sample shape; step sizes alpha_k finite and > 0, one per iteration; n_iter, n, m positive
integers (Python or numpy); grad a callable grad(w, x_batch).
"""

import numpy as np

from impl import _checks
from impl.rl.approximation import _inputs


def mean_objective_grad(w, x):
    """grad_w f(w, x) = w - x for f(w, x) = 1/2 ||w - x||^2 (x may hold a batch along axis 0).
    w and x finite real numbers; x of w's shape, or (m, *w.shape) for a batch."""
    w, x = _inputs.reals("w", w), _inputs.reals("x", x)
    if x.shape != w.shape and x.shape[1:] != w.shape:
        raise ValueError(
            f"x: shape {x.shape} is neither w's shape {w.shape} nor a batch (m, *{w.shape})"
        )
    return w - x


def _alpha(alpha, n_iter):
    if alpha is None:
        return None
    alpha = _inputs.steps("alpha", alpha)
    if alpha.shape[0] != n_iter:
        raise ValueError(f"alpha: {alpha.shape[0]} step sizes for {n_iter} iterations")
    return alpha


def _start(x, w1, grad):
    """The samples, w_1 broadcast to the sample shape, and grad, checked."""
    x = _inputs.samples("x", x)
    w = np.broadcast_to(_inputs.start("w1", w1, x.shape[1:]), x.shape[1:])
    return x, w, _checks.function("grad", grad)


def bgd(x, w1, n_iter, alpha=None, grad=mean_objective_grad):
    """(1): iterates w_1..w_{K+1}, each step using the full-batch mean gradient."""
    x, w, grad = _start(x, w1, grad)
    n_iter = _checks.positive_int("n_iter", n_iter)
    return _run(w, lambda w, k: grad(w, x).mean(axis=0), n_iter, _alpha(alpha, n_iter))


def mbgd(x, w1, batches, alpha=None, grad=mean_objective_grad):
    """(2): iterates w_1..w_{K+1}; `batches` is a (K, m) array of sample indices I_k, integers
    in [0, n - 1]."""
    x, w, grad = _start(x, w1, grad)
    try:
        batches = np.asarray(batches)
    except ValueError:
        raise ValueError("batches: not a rectangular (K, m) array (ragged nesting)") from None
    if batches.ndim != 2 or 0 in batches.shape or batches.dtype.kind not in "iu":
        raise ValueError(
            f"batches: expected a non-empty (K, m) integer array, got shape {batches.shape}"
        )
    if batches.min() < 0 or batches.max() >= x.shape[0]:
        raise ValueError(f"batches: indices must lie in [0, {x.shape[0] - 1}]")
    n_iter = batches.shape[0]
    return _run(
        w, lambda w, k: grad(w, x[batches[k - 1]]).mean(axis=0), n_iter, _alpha(alpha, n_iter)
    )


def sgd(x, w1, alpha=None, grad=mean_objective_grad):
    """(3): iterates w_1..w_{n+1}, step k using the single sample x_k."""
    x, w, grad = _start(x, w1, grad)
    n_iter = x.shape[0]
    return _run(w, lambda w, k: grad(w, x[k - 1]), n_iter, _alpha(alpha, n_iter))


def _run(w, grad_k, n_iter, alpha):
    """w_{k+1} = w_k - alpha_k grad_k(w_k) for k = 1..K (alpha_k = 1/k, as a division, if None)."""
    iterates = [w]
    for k in range(1, n_iter + 1):
        g = grad_k(w, k)
        w = w - g / k if alpha is None else w - alpha[k - 1] * g
        iterates.append(w)
    return np.stack([np.asarray(i) for i in iterates])


def sample_batches(n, m, n_iter, rng, replace):
    """K mini-batches I_k of m indices from {0..n-1}, with or without replacement within a batch
    (`replace` a bool; m <= n without replacement), drawn by the numpy generator `rng`."""
    n, m = _checks.positive_int("n", n), _checks.positive_int("m", m)
    n_iter = _checks.positive_int("n_iter", n_iter)
    rng = _checks.rng("rng", rng, legacy=True)
    _checks.flag("replace", replace)
    if not replace and m > n:
        raise ValueError(f"m: a batch of {m} without replacement needs m <= n = {n}")
    return np.stack([rng.choice(n, size=m, replace=replace) for _ in range(n_iter)])


def relative_gradient_error(w, x, mean):
    """(4): |grad f(w, x) - E grad f(w, X)| / |E grad f(w, X)| for E[X] = `mean` (w != mean);
    w, x and mean finite real numbers of one shape, computed in float64."""
    w = _inputs.reals("w", w).astype(float)
    x = _inputs.reals("x", x).astype(float)
    mean = _inputs.reals("mean", mean).astype(float)
    if x.shape != w.shape:
        raise ValueError(f"x: shape {x.shape} does not match w's {w.shape}")
    if mean.shape != w.shape:
        raise ValueError(f"mean: shape {mean.shape} does not match w's {w.shape}")
    full = w - mean
    if not np.any(full):
        raise ValueError("w: the relative error is undefined at w = E[X] (zero true gradient)")
    return float(np.linalg.norm(mean_objective_grad(w, x) - full) / np.linalg.norm(full))
