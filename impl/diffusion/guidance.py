"""Classifier guidance and classifier-free guidance (Dhariwal & Nichol 2021; Ho & Salimans 2022;
seed article 6).

(1) Bayes            grad log p(x|y) = grad log p(x) + grad log p(y|x)
(2) tilt             N(x; mu, s^2 I) exp(g . x) is proportional to N(x; mu + s^2 g, s^2 I), so
                     the guided reverse mean is mu + gamma s^2 grad log p(y|x_t)
(3) eps form         eps~ = eps(x_t) - sqrt(1 - abar_t) gamma grad log p(y|x_t)
(4) classifier-free  eps~ = (1 + w) eps(x, y) - w eps(x, null) = eps_u + s (eps_c - eps_u), s = 1 + w
(5) the classifier that (4) implies: p(y|x) = p(x|y) p(y) / p(x), so
                     grad log p(y|x_t) = -(eps_c - eps_u) / sqrt(1 - abar_t)
"""


def guided_mean(mu, s2, grad_log_classifier, gamma):
    """(2): mu + gamma s^2 grad log p(y|x)."""
    return mu + gamma * s2 * grad_log_classifier


def classifier_guided_eps(eps, a, grad_log_classifier, gamma):
    """(3) at abar_t = a."""
    return eps - (1 - a) ** 0.5 * gamma * grad_log_classifier


def cfg_w(eps_c, eps_u, w):
    """(4), the paper's parametrisation: (1 + w) eps_c - w eps_u."""
    return (1 + w) * eps_c - w * eps_u


def cfg_s(eps_c, eps_u, s):
    """(4), the pipelines' guidance_scale s: eps_u + s (eps_c - eps_u)."""
    return eps_u + s * (eps_c - eps_u)


def implied_classifier_grad(eps_c, eps_u, a):
    """(5): grad log p(y|x_t) implied by a conditional and an unconditional eps."""
    return -(eps_c - eps_u) / (1 - a) ** 0.5
