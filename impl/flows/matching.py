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

import numbers

import torch

from impl import _checks
from impl.diffusion.oracle import GaussianMixture
from impl.flows.coupling import _batch, _data


def _broadcast(**arrays):
    """The broadcast shape of the named tensors and numbers (in order); the first that does not
    broadcast with those before it is named in the error."""
    shape, seen = torch.Size(), []
    for name, v in arrays.items():
        s = v.shape if isinstance(v, torch.Tensor) else torch.Size()
        try:
            shape = torch.broadcast_shapes(shape, s)
        except RuntimeError:
            raise ValueError(
                f"{name}: shape {tuple(s)} does not broadcast with {', '.join(seen)}: "
                f"{tuple(shape)}"
            ) from None
        seen.append(name)
    return shape


def _pair(x0, x1, t):
    """Two finite tensors of one shape and a time t in [0, 1] broadcasting to it."""
    _checks.tensor("x0", x0)
    _checks.tensor("x1", x1)
    _checks.same_shape("x1", x1, "x0", x0)
    _checks.real("t", t, 0, 1, exact=True)
    _checks.broadcasts("t", t, "x0", x0)


def _check_sigma_min(sigma_min):
    _checks.scalar("sigma_min", sigma_min, 0, 1, hi_open=True, exact=True)


def ot_path(x0, x1, t, sigma_min=0.0):
    """(2): psi_t(x_0) = (1 - (1 - sigma_min) t) x_0 + t x_1. x0, x1: finite tensors of one shape;
    t in [0, 1], a number or a tensor broadcasting to x0's shape; sigma_min in [0, 1)."""
    _pair(x0, x1, t)
    _check_sigma_min(sigma_min)
    return (1 - (1 - sigma_min) * t) * x0 + t * x1


def conditional_field(x, x1, t, mu, dmu, sigma, dsigma):
    """(1): u_t(x | x_1) for a Gaussian path given mu_t(x_1), its time derivative, sigma_t and sigma_t'.
    x, x1: finite tensors; t in [0, 1]; mu, dmu, dsigma: finite numbers or tensors; sigma > 0; all
    broadcasting together."""
    _checks.tensor("x", x)
    _checks.tensor("x1", x1)
    _checks.real("t", t, 0, 1, exact=True)
    _checks.real("mu", mu, exact=True)
    _checks.real("dmu", dmu, exact=True)
    _checks.real("sigma", sigma, 0, lo_open=True, exact=True)
    _checks.real("dsigma", dsigma, exact=True)
    _broadcast(x=x, x1=x1, t=t, mu=mu, dmu=dmu, sigma=sigma, dsigma=dsigma)
    return dsigma / sigma * (x - mu) + dmu


def ot_conditional_field(x, x1, t, sigma_min=0.0):
    """(1) for the OT path (2). x, x1: finite tensors, t in [0, 1] (t < 1 if sigma_min = 0: the
    path has no noise left at t = 1), all broadcasting together; sigma_min in [0, 1)."""
    _checks.tensor("x", x)
    _checks.tensor("x1", x1)
    _check_sigma_min(sigma_min)
    _checks.real("t", t, 0, 1, hi_open=sigma_min == 0, exact=True)
    _broadcast(x=x, x1=x1, t=t)
    return conditional_field(x, x1, t, t * x1, x1, 1 - (1 - sigma_min) * t, -(1 - sigma_min))


def _mixture_args(data, x, t, sigma_min):
    if not isinstance(data, GaussianMixture):
        raise TypeError("data: expected an impl.diffusion.oracle.GaussianMixture")
    _batch("x", x, data.d)
    _checks.real("t", t, 0, 1, exact=True)
    if isinstance(t, torch.Tensor) and t.ndim != 0:
        raise ValueError(f"t: expected a number or a 0-d tensor, got shape {tuple(t.shape)}")
    _check_sigma_min(sigma_min)


def ot_marginal_field(data, x, t, sigma_min=0.0):
    """(3): the exact marginal field of the OT path for Gaussian-mixture data. x: a finite batch
    (n, data.d); t in [0, 1] (a number or a 0-d tensor; t < 1 if sigma_min = 0); sigma_min in
    [0, 1)."""
    _mixture_args(data, x, t, sigma_min)
    if sigma_min == 0 and t == 1:
        raise ValueError("t: must be < 1 when sigma_min = 0 (sigma_1 = 0: the field is singular)")
    sigma = 1 - (1 - sigma_min) * t
    if t == 0:  # x_0 is pure noise, independent of x_1: E[x_1 | x_0] = E[x_1]
        posterior_x1 = (data.weights[:, None] * data.means).sum(0).expand_as(x)
    else:
        posterior_x1 = (x + sigma**2 * data.score(x, t**2, sigma**2)) / t
    return -(1 - sigma_min) / sigma * (x - t * posterior_x1) + posterior_x1


def ot_marginal_log_density(data, x, t, sigma_min=0.0):
    """(3'): log p_t(x) of the OT path for Gaussian-mixture data; arguments as in
    ot_marginal_field, t = 1 allowed (p_1 is the data density when sigma_min = 0)."""
    _mixture_args(data, x, t, sigma_min)
    return data.log_density(x, t**2, (1 - (1 - sigma_min) * t) ** 2)


def rectified_flow_pair(x0, x1, t):
    """(5): (x_t, target velocity). x0, x1: finite tensors of one shape; t in [0, 1], a number or
    a tensor broadcasting to x0's shape."""
    _pair(x0, x1, t)
    return (1 - t) * x0 + t * x1, x1 - x0


def euler_t(velocity, x0, n):
    """(5): x_1 from noise x_0 (a finite tensor) by n >= 1 Euler steps of dx/dt = velocity(x, t),
    t: 0 -> 1; velocity returns a tensor of x's shape."""
    velocity = _checks.shape_keeping("velocity", velocity)
    _checks.tensor("x0", x0)
    n = _checks.positive_int("n", n)
    x, dt = x0, 1.0 / n
    for k in range(n):
        x = x + dt * velocity(x, k * dt)
    return x


def euler_sigma(velocity_sigma, x_noise, sigmas):
    """(5), convention "sigma": Euler steps x <- x + (sigma_next - sigma) v_sigma(x, sigma) over a
    strictly decreasing sequence of at least two sigmas >= 0 (from 1 to 0 for a whole sampling
    run); x_noise a finite tensor. The step needs no sigma <= 1, and schedules computed in
    float32 may start above it (diffusers' shifted flow-matching sigmas start at 1 + 1.2e-7)."""
    velocity_sigma = _checks.shape_keeping("velocity_sigma", velocity_sigma)
    _checks.tensor("x_noise", x_noise)
    a = _checks.vector("sigmas", sigmas)
    _checks.number("sigmas", a, 0)
    if a.size < 2:
        raise ValueError(f"sigmas: at least two are needed (one step), got {a.size}")
    sigmas = [float(s) for s in a]
    if any(b >= a for a, b in zip(sigmas, sigmas[1:], strict=False)):
        raise ValueError("sigmas: must be strictly decreasing")
    x = x_noise
    for s, s_next in zip(sigmas, sigmas[1:], strict=False):
        x = x + (s_next - s) * velocity_sigma(x, s)
    return x


def t_velocity_as_sigma(velocity_t):
    """Convert a velocity of convention "t" to convention "sigma": v_sigma(x, sigma) = -v_t(x, 1 - sigma)."""
    _checks.function("velocity_t", velocity_t)
    return lambda x, sigma: -velocity_t(x, 1 - sigma)


def shift(sigma, s):
    """(6). sigma in [0, 1] (a number, a Fraction or a tensor); s > 0 finite."""
    _checks.real("sigma", sigma, 0, 1, exact=True)
    _checks.real("s", s, 0, lo_open=True, exact=True)
    return s * sigma / (1 + (s - 1) * sigma)


class VelocityMLP(torch.nn.Module):
    """A small v(x, t) network: an MLP on (x, t), of dimension d >= 1 and width >= 1."""

    def __init__(self, d, width=128):
        super().__init__()
        self.d = _checks.positive_int("d", d)
        width = _checks.positive_int("width", width)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(self.d + 1, width), torch.nn.SiLU(),
            torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, self.d),
        ).to(torch.float64)  # fmt: skip

    def forward(self, x, t):
        """x: a finite batch (n, d) of the network's dtype (float64); t in [0, 1]: a number, or a
        tensor of shape (1,) or (n,)."""
        _batch("x", x, self.d, self.net[0].weight.dtype)
        _checks.real("t", t, 0, 1, exact=True)
        t = torch.as_tensor(float(t) if isinstance(t, numbers.Real) else t, dtype=x.dtype)
        if t.shape not in ((), (1,), x.shape[:1]):
            raise ValueError(f"t: expected a number or shape ({x.shape[0]},), got {tuple(t.shape)}")
        t = t.expand(x.shape[0])[:, None]
        return self.net(torch.cat([x, t], dim=1))


def train_rectified_flow(model, sample_data, steps, generator, batch=512, lr=2e-3):
    """(4)-(5): minimise the conditional loss E ||v(x_t, t) - (x_1 - x_0)||^2.

    model: a VelocityMLP; sample_data(n, generator): a finite (n, d) tensor of the model's dtype;
    steps >= 0; generator: a torch.Generator or None; batch >= 1; lr > 0 (finite)."""
    if not isinstance(model, VelocityMLP):
        raise TypeError(f"model: expected a VelocityMLP, got {type(model).__name__}")
    _checks.function("sample_data", sample_data)
    steps = _checks.integer("steps", steps, 0)
    _checks.generator("generator", generator)
    batch = _checks.positive_int("batch", batch)
    lr = float(_checks.scalar("lr", lr, 0, lo_open=True))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        x1 = _data(sample_data, batch, generator, model.d, model.net[0].weight.dtype)
        x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype)
        t = torch.rand(batch, 1, generator=generator, dtype=x1.dtype)
        x_t, target = rectified_flow_pair(x0, x1, t)
        loss = ((model.net(torch.cat([x_t, t], dim=1)) - target) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model
