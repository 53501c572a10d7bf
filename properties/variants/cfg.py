"""Rejected variants of the guidance claims (CFG-*): classifier guidance, classifier-free guidance
and condition dropout (impl/diffusion/guidance.py, cfg_training.py)."""

import torch

from impl.diffusion import cfg_training, guidance, oracle
from properties.variants import variant


@variant(
    "CFG-01",
    name="classifier-of-clean-data",
    why="p(y|x_t) taken from the classifier of the clean data (abar = 1) at the noisy x_t, not "
    "the noised class posterior",
)
def _(mp):
    clean = oracle.GaussianMixture.class_posterior
    mp.setattr(oracle.GaussianMixture, "class_posterior", lambda self, x, a: clean(self, x, 1.0))


@variant(
    "CFG-02",
    "CFG-05",
    name="classifier-guidance-without-sqrt",
    why="eps - gamma grad log p(y|x_t): the eps form without the sqrt(1 - abar_t) factor",
)
def _(mp):
    mp.setattr(guidance, "classifier_guided_eps", lambda eps, a, grad, gamma: eps - gamma * grad)


@variant(
    "CFG-02",
    name="eps-guidance-with-variance",
    why="eps - (1 - abar_t) gamma grad: the mean shift's s^2 = 1 - abar_t carried into the eps "
    "form (x0-style rescale) in place of sqrt(1 - abar_t)",
)
def _(mp):
    mp.setattr(
        guidance, "classifier_guided_eps", lambda eps, a, grad, gamma: eps - (1 - a) * gamma * grad
    )


@variant(
    "CFG-02",
    name="tilt-shift-by-std",
    why="the tilted Gaussian's mean mu + gamma s g (std) in place of mu + gamma s^2 g",
)
def _(mp):
    mp.setattr(guidance, "guided_mean", lambda mu, s2, grad, gamma: mu + gamma * s2**0.5 * grad)


@variant(
    "CFG-02",
    name="guidance-scale-ignored",
    why="the classifier's gradient added at scale 1 whatever gamma (the scale never reaches the "
    "eps form)",
)
def _(mp):
    right = guidance.classifier_guided_eps
    mp.setattr(
        guidance, "classifier_guided_eps", lambda eps, a, grad, gamma: right(eps, a, grad, 1)
    )


@variant(
    "CFG-03.tilted-distribution",
    name="tilt-after-noising",
    why="the tilted distribution at time t taken as p_t(x) p_t(y|x)^gamma / Z_t (the tilt of the "
    "noised marginals, the article's reading) in place of the noised tilt of p(x_0) p(y|x_0)^gamma: "
    "its score is the guided score by construction, which hides the counterexample",
)
def _(mp):
    right = guidance.tilted_score

    def tilt_of_noised(grid, log_p0, log_classifier0, gamma, a, x):
        noised = right(grid, log_p0, log_classifier0, 0.0, a, x)  # grad log p_t(x)
        joint = right(grid, log_p0, log_classifier0, 1.0, a, x)  # grad log p_t(x, y)
        return (1 - gamma) * noised + gamma * joint  # grad log p_t(x) p_t(y|x)^gamma

    mp.setattr(guidance, "tilted_score", tilt_of_noised)


@variant(
    "CFG-03.tradeoff",
    name="guidance-sign-flipped",
    why="eps + sqrt(1 - abar_t) gamma grad: guidance pushes away from the class",
)
def _(mp):
    right = guidance.classifier_guided_eps
    mp.setattr(
        guidance, "classifier_guided_eps", lambda eps, a, grad, gamma: right(eps, a, -grad, gamma)
    )


@variant(
    "CFG-04",
    name="cfg-w-as-interpolation",
    why="the paper's (1 + w) eps_c - w eps_u read as w eps_c + (1 - w) eps_u (the scale off by one)",
)
def _(mp):
    mp.setattr(guidance, "cfg_w", lambda eps_c, eps_u, w: w * eps_c + (1 - w) * eps_u)


@variant(
    "CFG-04",
    "SD-04",
    name="cfg-around-conditional",
    why="eps_c + s (eps_c - eps_u): extrapolation from the conditional prediction (s = 0 gives "
    "eps_c, not eps_u)",
)
def _(mp):
    mp.setattr(guidance, "cfg_s", lambda eps_c, eps_u, s: eps_c + s * (eps_c - eps_u))


@variant(
    "CFG-05",
    name="implied-classifier-without-sqrt",
    why="grad log p(y|x_t) = -(eps_c - eps_u), without the 1 / sqrt(1 - abar_t) rescale",
)
def _(mp):
    mp.setattr(guidance, "implied_classifier_grad", lambda eps_c, eps_u, a: -(eps_c - eps_u))


@variant(
    "CFG-06",
    name="label-dropout-never-applied",
    why="p_uncond ignored: the labels are never replaced by the null label, so the null label's "
    "output is never trained",
)
def _(mp):
    mp.setattr(cfg_training, "drop_labels", lambda y, p_uncond, n_classes, generator: y)


@variant(
    "CFG-06",
    name="dropout-to-class-zero",
    why="dropped labels replaced by class 0 in place of the null label (index n_classes)",
)
def _(mp):
    def drop_to_zero(y, p_uncond, n_classes, generator):
        drop = torch.rand(y.shape[0], generator=generator) < p_uncond
        return torch.where(drop, torch.zeros_like(y), y)

    mp.setattr(cfg_training, "drop_labels", drop_to_zero)


@variant(
    "CFG-06",
    name="p-uncond-as-keep-rate",
    why="p_uncond read as the probability of keeping the label: 90% of the labels dropped",
)
def _(mp):
    right = cfg_training.drop_labels
    mp.setattr(
        cfg_training,
        "drop_labels",
        lambda y, p_uncond, n_classes, generator: right(y, 1 - p_uncond, n_classes, generator),
    )


@variant(
    "CFG-06",
    name="network-ignores-the-label",
    why="the label embedding never reaches the network (every label read as the null label): "
    "eps_c = eps_u, no guidance direction",
)
def _(mp):
    right = cfg_training.EpsMLP.forward
    mp.setattr(
        cfg_training.EpsMLP,
        "forward",
        lambda self, x, a, c: right(self, x, a, torch.full_like(c, self.n_classes)),
    )
