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
"""

import numpy as np

from impl import _checks


def mean_objective_grad(w, x):
    """grad_w f(w, x) = w - x for f(w, x) = 1/2 ||w - x||^2 (x may hold a batch along axis 0)."""
    return w - x


def _alpha(alpha, n_iter):
    if alpha is None:
        return None
    alpha = _checks.steps("alpha", alpha)
    if alpha.shape[0] != n_iter:
        raise ValueError(f"alpha: {alpha.shape[0]} step sizes for {n_iter} iterations")
    return alpha


def bgd(x, w1, n_iter, alpha=None, grad=mean_objective_grad):
    """(1): iterates w_1..w_{K+1}, each step using the full-batch mean gradient."""
    x = _checks.samples("x", x)
    w = _checks.start("w1", w1, x.shape[1:])
    n_iter = _checks.positive_int("n_iter", n_iter)
    return _run(w, lambda w, k: grad(w, x).mean(axis=0), n_iter, _alpha(alpha, n_iter))


def mbgd(x, w1, batches, alpha=None, grad=mean_objective_grad):
    """(2): iterates w_1..w_{K+1}; `batches` is a (K, m) array of sample indices I_k."""
    x = _checks.samples("x", x)
    w = _checks.start("w1", w1, x.shape[1:])
    batches = np.asarray(batches)
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
    x = _checks.samples("x", x)
    w = _checks.start("w1", w1, x.shape[1:])
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
    """K mini-batches I_k of m indices from {0..n-1}, with or without replacement within a batch."""
    n, m = _checks.positive_int("n", n), _checks.positive_int("m", m)
    n_iter = _checks.positive_int("n_iter", n_iter)
    if not replace and m > n:
        raise ValueError(f"m: a batch of {m} without replacement needs m <= n = {n}")
    return np.stack([rng.choice(n, size=m, replace=replace) for _ in range(n_iter)])


def relative_gradient_error(w, x, mean):
    """(4): |grad f(w, x) - E grad f(w, X)| / |E grad f(w, X)| for E[X] = `mean` (w != mean)."""
    w, x, mean = (np.asarray(v, dtype=float) for v in (w, x, mean))
    if not w.shape == x.shape == mean.shape:
        raise ValueError(f"x: shapes of w {w.shape}, x {x.shape} and mean {mean.shape} differ")
    full = w - mean
    if not np.any(full):
        raise ValueError("w: the relative error is undefined at w = E[X] (zero true gradient)")
    return float(np.linalg.norm(mean_objective_grad(w, x) - full) / np.linalg.norm(full))
