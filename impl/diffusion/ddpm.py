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
from impl.diffusion.schedules import (
    F64,
    _level,
    _levels,
    _model_output,
    check_abar,
    check_timesteps,
    eps_to_x0,
)


def q_sample(x0, a, eps):
    """(1): x_t from x_0 and standard normal eps, with a = abar_t in [0, 1]."""
    _checks.tensor("x0", x0)
    _level("a", a, "x0", x0)
    _checks.same_shape("eps", _checks.tensor("eps", eps), "x0", x0)
    return a**0.5 * x0 + (1 - a) ** 0.5 * eps


def posterior(x_t, x0, a, b):
    """(3): mean and variance of q(x_tau | x_t, x_0) for abar_t = a <= abar_tau = b, a in
    [0, 1), b in (0, 1]; x_t and x0 finite tensors of one shape (a, b may be tensors that
    broadcast to them)."""
    _levels(a, b, "x_t", _checks.pair("x_t", x_t, "x0", x0))
    beta = 1 - a / b
    mean = (a / b) ** 0.5 * (1 - b) / (1 - a) * x_t + b**0.5 * beta / (1 - a) * x0
    return mean, (1 - b) * beta / (1 - a)


def posterior_variance_article(a, b):
    """(3), the article's form (alpha/beta + 1/(1 - b))^(-1), alpha = a/b, beta = 1 - alpha;
    a in [0, 1), b in (0, 1), a < b (alpha < 1)."""
    _levels(a, b, b_hi_open=True, strict=True)
    alpha = a / b
    return 1 / (alpha / (1 - alpha) + 1 / (1 - b))


def ancestral_step(x_t, eps_hat, a, b, z, variance="posterior"):
    """(4): one DDPM step from abar_t = a in (0, 1) to abar_tau = b in [a, 1] (b = 1: to the
    data); x_t, eps_hat and z finite tensors of one shape; variance "posterior" or "large"."""
    _checks.choice("variance", variance, ("posterior", "large"))
    _checks.pair("x_t", x_t, "eps_hat", eps_hat)
    _checks.pair("x_t", x_t, "z", z)
    _levels(a, b, "x_t", x_t, a_lo_open=True)
    x0_hat = eps_to_x0(x_t, eps_hat, a)
    if b == 1:
        return x0_hat
    mean, var = posterior(x_t, x0_hat, a, b)
    if variance == "large":
        var = 1 - a / b
    return mean + var**0.5 * z


def sample(eps_model, x_T, abar, timesteps, generator, variance="posterior"):
    """(4) over a decreasing sub-sequence; the last step goes to abar = 1 (the data).
    eps_model(x, t) -> eps of x's shape; x_T a finite tensor; abar and timesteps as in
    schedules.check_abar / check_timesteps, abar > 0 at the first timestep; generator a
    torch.Generator or None."""
    _checks.choice("variance", variance, ("posterior", "large"))
    _checks.generator("generator", generator)
    _checks.function("eps_model", eps_model)
    _checks.tensor("x_T", x_T)
    check_abar(abar)
    abar = torch.as_tensor(abar, dtype=F64)
    ts = check_timesteps(timesteps, abar.numel()).tolist()
    if abar[ts[0]] == 0:
        raise ValueError(f"timesteps: abar = 0 at t = {ts[0]}: eps cannot predict x_0 there")
    x = x_T
    for i, t in enumerate(ts):
        b = abar[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = ancestral_step(x, _model_output(eps_model(x, t), x, t), abar[t].item(), b, z, variance)
    return x
