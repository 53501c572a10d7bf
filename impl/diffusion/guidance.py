"""Classifier guidance and classifier-free guidance (Dhariwal & Nichol 2021; Ho & Salimans 2022;
seed article 6).

(1) Bayes            grad log p(x|y) = grad log p(x) + grad log p(y|x)
(2) tilt             N(x; mu, s^2 I) exp(g . x) is proportional to N(x; mu + s^2 g, s^2 I), so
                     the guided reverse mean is mu + gamma s^2 grad log p(y|x_t)
(3) eps form         eps~ = eps(x_t) - sqrt(1 - abar_t) gamma grad log p(y|x_t)
(4) classifier-free  eps~ = (1 + w) eps(x, y) - w eps(x, null) = eps_u + s (eps_c - eps_u), s = 1 + w
(5) the classifier that (4) implies: p(y|x) = p(x|y) p(y) / p(x), so
                     grad log p(y|x_t) = -(eps_c - eps_u) / sqrt(1 - abar_t)
(6) the tilted distribution p_gamma(x_0) = p(x_0) p(y|x_0)^gamma / Z noised to abar_t = a:
                     p_gamma,t(x) = int p_gamma(x_0) N(x; sqrt(a) x_0, (1 - a)) dx_0, whose score
                     is E[-(x - sqrt(a) x_0) / (1 - a)] over x_0 ~ p_gamma(x_0) N(x; sqrt(a) x_0,
                     1 - a) / p_gamma,t(x); in 1-D by quadrature on a uniform grid of x_0
                     (`tilted_score`). Guidance with scale gamma uses (3) instead; the two agree
                     at gamma = 1 (and gamma = 0), not in general.
"""

import torch

from impl import _checks
from impl.diffusion.schedules import _level


def guided_mean(mu, s2, grad_log_classifier, gamma):
    """(2): mu + gamma s^2 grad log p(y|x). mu and the gradient finite tensors of one shape;
    the variance s2 >= 0 (a number, or a tensor that broadcasts to mu); gamma a real number."""
    _checks.pair("mu", mu, "grad_log_classifier", grad_log_classifier)
    _checks.broadcasts("s2", _checks.real("s2", s2, 0), "mu", mu)
    _checks.real("gamma", gamma)
    return mu + gamma * s2 * grad_log_classifier


def classifier_guided_eps(eps, a, grad_log_classifier, gamma):
    """(3) at abar_t = a in [0, 1]; eps and the gradient finite tensors of one shape; gamma a
    real number (negative: guidance away from the class)."""
    _level("a", a, "eps", _checks.pair("eps", eps, "grad_log_classifier", grad_log_classifier))
    _checks.real("gamma", gamma)
    return eps - (1 - a) ** 0.5 * gamma * grad_log_classifier


def cfg_w(eps_c, eps_u, w):
    """(4), the paper's parametrisation: (1 + w) eps_c - w eps_u; eps_c, eps_u finite tensors of
    one shape, w a real number."""
    _checks.pair("eps_c", eps_c, "eps_u", eps_u)
    _checks.real("w", w)
    return (1 + w) * eps_c - w * eps_u


def cfg_s(eps_c, eps_u, s):
    """(4), the pipelines' guidance_scale s: eps_u + s (eps_c - eps_u); s a real number."""
    _checks.pair("eps_c", eps_c, "eps_u", eps_u)
    _checks.real("s", s)
    return eps_u + s * (eps_c - eps_u)


def implied_classifier_grad(eps_c, eps_u, a):
    """(5): grad log p(y|x_t) implied by a conditional and an unconditional eps; a in [0, 1)."""
    _level("a", a, "eps_c", _checks.pair("eps_c", eps_c, "eps_u", eps_u), hi_open=True)
    return -(eps_c - eps_u) / (1 - a) ** 0.5


def tilted_score(grid, log_p0, log_classifier0, gamma, a, x):
    """(6) at the points x (n,): the score of the noised tilted density, 1-D, by quadrature.

    grid (m,): uniform, increasing x_0 nodes covering the data's mass (m >= 1; uniform to
    1e-6 of the spacing plus rounding); log_p0, log_classifier0 (m,): log p(x_0) and
    log p(y|x_0) at the nodes, finite. gamma a real number, a in (0, 1). Returns (n,)."""
    _checks.tensor("grid", grid, ndim=1)
    if grid.numel() == 0:
        raise ValueError("grid: empty; at least one node is needed")
    h = grid[1:] - grid[:-1]
    slack = 1e-6 * h.mean() + 16 * grid.abs().max() * torch.finfo(grid.dtype).eps
    if h.numel() and not (torch.all(h > 0) and torch.all((h - h.mean()).abs() <= slack)):
        raise ValueError("grid: the nodes must be increasing and uniformly spaced")
    for name, values in (("log_p0", log_p0), ("log_classifier0", log_classifier0)):
        _checks.same_shape("grid", grid, name, _checks.tensor(name, values))
    _checks.real("gamma", gamma)
    _checks.real("a", a, 0, 1, lo_open=True, hi_open=True)
    _checks.tensor("x", x, ndim=1)
    mean = a**0.5 * grid  # (m,)
    log_k = -0.5 * (x[:, None] - mean) ** 2 / (1 - a) + log_p0 + gamma * log_classifier0
    r = torch.softmax(log_k, dim=1)  # posterior weights of the nodes given x
    return (r * (-(x[:, None] - mean) / (1 - a))).sum(1)
