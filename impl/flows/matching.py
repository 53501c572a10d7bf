"""Flow matching, conditional flow matching and rectified flow (Lipman et al. 2023; Liu et al.
2023; seed article 5). Time convention "t": t = 0 is noise x_0 ~ N(0, I), t = 1 is data x_1.

(1) Gaussian conditional path  p_t(x | x_1) = N(mu_t(x_1), sigma_t^2 I), psi_t(x_0) = sigma_t x_0 + mu_t;
    its field  u_t(x | x_1) = (sigma_t'/sigma_t) (x - mu_t) + mu_t'
(2) OT path  mu_t = t x_1, sigma_t = 1 - (1 - sigma_min) t: along a trajectory the field is the
    constant x_1 - (1 - sigma_min) x_0 (straight lines)
(3) marginal field  u_t(x) = E[u_t(x | x_1) | x_t = x] (the posterior-weighted conditional field);
    for the OT path  u_t(x) = (sigma_t'/sigma_t)(x - t E[x_1|x]) + E[x_1|x], and for mixture data
    E[x_1 | x_t = x] = (x + sigma_t^2 grad log p_t(x)) / t  (Tweedie, kernel x = t x_1 + sigma_t eps)
(4) losses  L_FM = E ||v(x, t) - u_t(x)||^2,  L_CFM = E ||v(x, t) - u_t(x | x_1)||^2:
    L_FM - L_CFM = E||u_t(x)||^2 - E||u_t(x | x_1)||^2 does not depend on v, so the gradients agree
(5) rectified flow  x_t = (1 - t) x_0 + t x_1 (sigma_min = 0), target x_1 - x_0; Euler with dt = 1/N
    from t = 0 to 1. Convention "sigma" (sigma = 1 noise, sigma = 0 data, as in SD3 and diffusers):
    x_sigma = (1 - sigma) x_1 + sigma x_0, sigma = 1 - t, velocity d x/d sigma = x_0 - x_1 = -v_t.
(6) timestep shift  sigma' = s sigma / (1 + (s - 1) sigma)
"""

import torch

from impl.diffusion.oracle import GaussianMixture


def _check_sigma_min(sigma_min):
    if not 0 <= sigma_min < 1:
        raise ValueError(f"sigma_min: must lie in [0, 1), got {sigma_min!r}")


def ot_path(x0, x1, t, sigma_min=0.0):
    """(2): psi_t(x_0) = (1 - (1 - sigma_min) t) x_0 + t x_1."""
    _check_sigma_min(sigma_min)
    return (1 - (1 - sigma_min) * t) * x0 + t * x1


def conditional_field(x, x1, t, mu, dmu, sigma, dsigma):
    """(1): u_t(x | x_1) for a Gaussian path given mu_t(x_1), its time derivative, sigma_t and sigma_t'."""
    if torch.any(torch.as_tensor(sigma) <= 0):
        raise ValueError(f"sigma: the path's standard deviation must be > 0, got {sigma!r}")
    return dsigma / sigma * (x - mu) + dmu


def ot_conditional_field(x, x1, t, sigma_min=0.0):
    """(1) for the OT path (2)."""
    _check_sigma_min(sigma_min)
    return conditional_field(x, x1, t, t * x1, x1, 1 - (1 - sigma_min) * t, -(1 - sigma_min))


def ot_marginal_field(data, x, t, sigma_min=0.0):
    """(3): the exact marginal field of the OT path for Gaussian-mixture data (0 <= t <= 1)."""
    if not isinstance(data, GaussianMixture):
        raise TypeError("data: expected an impl.diffusion.oracle.GaussianMixture")
    if not 0 <= t <= 1:
        raise ValueError(f"t: must lie in [0, 1], got {t!r}")
    sigma = 1 - (1 - sigma_min) * t
    if t == 0:  # x_0 is pure noise, independent of x_1: E[x_1 | x_0] = E[x_1]
        posterior_x1 = (data.weights[:, None] * data.means).sum(0).expand_as(x)
    else:
        posterior_x1 = (x + sigma**2 * data.score(x, t**2, sigma**2)) / t
    return -(1 - sigma_min) / sigma * (x - t * posterior_x1) + posterior_x1


def ot_marginal_log_density(data, x, t, sigma_min=0.0):
    """(3'): log p_t(x) of the OT path for Gaussian-mixture data (0 <= t <= 1; t may be a tensor)."""
    if not isinstance(data, GaussianMixture):
        raise TypeError("data: expected an impl.diffusion.oracle.GaussianMixture")
    if not 0 <= t <= 1:
        raise ValueError(f"t: must lie in [0, 1], got {t!r}")
    _check_sigma_min(sigma_min)
    return data.log_density(x, t**2, (1 - (1 - sigma_min) * t) ** 2)


def rectified_flow_pair(x0, x1, t):
    """(5): (x_t, target velocity)."""
    return (1 - t) * x0 + t * x1, x1 - x0


def euler_t(velocity, x0, n):
    """(5): x_1 from noise x_0 by n Euler steps of dx/dt = velocity(x, t), t: 0 -> 1."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: must be a positive integer, got {n!r}")
    x, dt = x0, 1.0 / n
    for k in range(n):
        x = x + dt * velocity(x, k * dt)
    return x


def euler_sigma(velocity_sigma, x_noise, sigmas):
    """(5), convention "sigma": Euler steps x <- x + (sigma_next - sigma) v_sigma(x, sigma) over a
    decreasing sequence from 1 to 0."""
    sigmas = [float(s) for s in sigmas]
    if any(b >= a for a, b in zip(sigmas, sigmas[1:], strict=False)):
        raise ValueError("sigmas: must be strictly decreasing")
    x = x_noise
    for s, s_next in zip(sigmas, sigmas[1:], strict=False):
        x = x + (s_next - s) * velocity_sigma(x, s)
    return x


def t_velocity_as_sigma(velocity_t):
    """Convert a velocity of convention "t" to convention "sigma": v_sigma(x, sigma) = -v_t(x, 1 - sigma)."""
    return lambda x, sigma: -velocity_t(x, 1 - sigma)


def shift(sigma, s):
    """(6)."""
    if not s > 0:
        raise ValueError(f"s: the shift must be > 0, got {s!r}")
    return s * sigma / (1 + (s - 1) * sigma)


class VelocityMLP(torch.nn.Module):
    """A small v(x, t) network: an MLP on (x, t)."""

    def __init__(self, d, width=128):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d + 1, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, d),
        ).to(torch.float64)  # fmt: skip

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0])[:, None]
        return self.net(torch.cat([x, t], dim=1))


def train_rectified_flow(model, sample_data, steps, generator, batch=512, lr=2e-3):
    """(4)-(5): minimise the conditional loss E ||v(x_t, t) - (x_1 - x_0)||^2."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        x1 = sample_data(batch, generator)
        x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
        t = torch.rand(batch, 1, generator=generator, dtype=x1.dtype)
        x_t, target = rectified_flow_pair(x0, x1, t)
        loss = ((model.net(torch.cat([x_t, t], dim=1)) - target) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model
