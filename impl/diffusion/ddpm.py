"""DDPM: forward marginal, posterior and ancestral sampling (Ho et al. 2020; seed article 1).

Indices follow schedules.py (abar[k] for k = 0..T-1; abar = 1 before step 0). For any pair of
timesteps tau < t write a = abar_t, b = abar_tau and beta = 1 - a/b (the one-step beta when
tau = t - 1, "beta recomputed" on a sub-sequence):

(1) forward marginal     q(x_t | x_0) = N(sqrt(a) x_0, (1 - a) I);  x_t = sqrt(a) x_0 + sqrt(1 - a) eps
(2) one-step kernel      q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I); composing (2) gives (1)
(3) posterior            q(x_tau | x_t, x_0) = N(mu~, beta~ I),
                         mu~ = sqrt(a/b) (1 - b)/(1 - a) x_t + sqrt(b) beta/(1 - a) x_0,
                         beta~ = (1 - b) beta / (1 - a); the article also writes it as
                         beta~ = (alpha/beta + 1/(1 - b))^(-1) with alpha = a/b
(4) ancestral step       x_tau = mu~(x_t, x0_hat) + sigma z, x0_hat from the predicted eps,
                         sigma^2 = beta~ ("posterior", the DDPM default) or beta ("large")
"""

import torch

from impl import _checks
from impl.diffusion.schedules import F64, check_abar, check_timesteps, eps_to_x0


def q_sample(x0, a, eps):
    """(1): x_t from x_0 and standard normal eps, with a = abar_t in [0, 1]."""
    _checks.tensor("x0", x0)
    _checks.number("a", a, 0, 1)
    _checks.same_shape("eps", _checks.tensor("eps", eps), "x0", x0)
    return a**0.5 * x0 + (1 - a) ** 0.5 * eps


def posterior(x_t, x0, a, b):
    """(3): mean and variance of q(x_tau | x_t, x_0) for abar_t = a < abar_tau = b."""
    beta = 1 - a / b
    mean = (a / b) ** 0.5 * (1 - b) / (1 - a) * x_t + b**0.5 * beta / (1 - a) * x0
    return mean, (1 - b) * beta / (1 - a)


def posterior_variance_article(a, b):
    """(3), the article's form (alpha/beta + 1/(1 - b))^(-1), alpha = a/b, beta = 1 - alpha."""
    alpha = a / b
    return 1 / (alpha / (1 - alpha) + 1 / (1 - b))


def ancestral_step(x_t, eps_hat, a, b, z, variance="posterior"):
    """(4): one DDPM step from abar_t = a to abar_tau = b (b = 1: to the data)."""
    if variance not in ("posterior", "large"):
        raise ValueError(f"variance: 'posterior' or 'large', got {variance!r}")
    for name, value in (("eps_hat", eps_hat), ("z", z)):
        if tuple(value.shape) != tuple(x_t.shape):
            raise ValueError(
                f"{name}: shape {tuple(value.shape)} does not match x_t's {tuple(x_t.shape)}"
            )
    x0_hat = eps_to_x0(x_t, eps_hat, a)
    if b == 1:
        return x0_hat
    mean, var = posterior(x_t, x0_hat, a, b)
    if variance == "large":
        var = 1 - a / b
    return mean + var**0.5 * z


def sample(eps_model, x_T, abar, timesteps, generator, variance="posterior"):
    """(4) over a decreasing sub-sequence; the last step goes to abar = 1 (the data)."""
    abar = check_abar(torch.as_tensor(abar, dtype=F64))
    ts = check_timesteps(timesteps, abar.numel()).tolist()
    x = x_T
    for i, t in enumerate(ts):
        b = abar[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = ancestral_step(x, eps_model(x, t), abar[t].item(), b, z, variance)
    return x
