"""Score-based diffusion in continuous time: SDEs, their reverse, the probability-flow ODE, and
likelihoods (Song et al. 2021; seed article 3). t runs in [0, 1]; x has shape (n, d).

(1) forward SDE        dx = f(x, t) dt + g(t) dw; Euler-Maruyama: x + f dt + g sqrt(dt) z
(2) perturbation kernel x_t | x_0 ~ N(c(t) x_0, s(t)^2 I) for the three linear SDEs:
    VP     beta(t) = b0 + t (b1 - b0), B(t) = int_0^t beta:  f = -beta x / 2, g = sqrt(beta),
           c = exp(-B/2), s^2 = 1 - exp(-B). DDPM with beta_i = beta(i/N)/N tends to it.
    sub-VP f as VP, g = sqrt(beta (1 - exp(-2B))), c = exp(-B/2), s^2 = (1 - exp(-B))^2
    VE     sigma(t) = sm (sM/sm)^t: f = 0, g = sigma(t) sqrt(2 ln(sM/sm)),
           c = 1, s^2 = sigma(t)^2 - sigma(0)^2
(3) reverse SDE        dx = [f - g^2 grad log p_t(x)] dt + g dw_bar, integrated from t = 1 to 0
(4) probability flow   dx/dt = f - g^2 grad log p_t(x) / 2: the same marginals p_t for every t.
    (A variant without the 1/2 circulates; it does not preserve them.)
(5) likelihood         d log p_t(x_t)/dt = -div(drift) along (4):
                       log p_0(x_0) = log p_1(x_1) + int_0^1 div(drift)(x_t, t) dt
    Hutchinson: div = E[v^T J v] for probes with E[v v^T] = I (Rademacher or Gaussian); with
    symmetric part S of J, Var(Rademacher) = 2 sum_{i != j} S_ij^2 <= Var(Gaussian) = 2 ||S||_F^2.
(7) predictor-corrector (Song et al. 2021, Algorithms 2 and 3 with the Langevin corrector of
    Algorithms 4 and 5): for each grid step t -> t_next, a reverse EM step (predictor), then at the
    new time t_next one Langevin step x <- x + e score(x, t_next) + sqrt(2 e) z with
    e = 2 alpha (snr mean|z| / mean|score|)^2, norms averaged over the batch; alpha = 1 - beta_i
    with the step's DDPM beta_i = beta(t_next) (t - t_next) for VP and sub-VP, alpha = 1 for VE.
    It returns x after the last corrector, as the Algorithms do. (The released score_sde code
    instead runs the corrector first at each t, then the predictor from t, and returns the last
    predictor's noise-free mean; not done here.)
(6) consistency-model parametrisation: f(x, t) = c_skip(t) x + c_out(t) F(x, t),
    c_skip = s_d^2 / ((t - e)^2 + s_d^2), c_out = s_d (t - e) / sqrt(s_d^2 + t^2), s_d = 0.5,
    e = 0.002: f(x, e) = x exactly.

Domain: times t in [0, 1] (the consistency map's t >= eps instead); beta_min, beta_max, sigma_min
< sigma_max, snr, sigma_data, eps finite and > 0; x a finite real floating tensor, of shape
(n, d) with n >= 1 for the samplers and the likelihood; n (steps) a positive integer (Python or
numpy); sde one of VP, SubVP, VE; score(x, t) callable; generator a torch.Generator or None
(torch's default one).
"""

import math

import torch

from impl import _checks
from impl.ode import (
    _interval,
    divergence_exact,
    divergence_hutchinson,
    grid,
    solve_with_divergence,
)

F64 = torch.float64


def _positive(name, value):
    return _checks.scalar(name, value, 0, None, lo_open=True)


def _time(t):
    return _checks.scalar("t", t, 0, 1)


def _process(sde):
    if not isinstance(sde, (VP, VE)):
        raise TypeError(f"sde: expected a VP, SubVP or VE instance, got {sde!r:.60}")


class VP:
    def __init__(self, beta_min=0.1, beta_max=20.0):
        _positive("beta_min", beta_min)
        _positive("beta_max", beta_max)
        self.b0, self.b1 = beta_min, beta_max

    def beta(self, t):
        _time(t)
        return self.b0 + t * (self.b1 - self.b0)

    def integral(self, t):
        _time(t)
        return self.b0 * t + (self.b1 - self.b0) * t**2 / 2

    def f(self, x, t):
        _checks.tensor("x", x)
        return -0.5 * self.beta(t) * x

    def g(self, t):
        return self.beta(t) ** 0.5  # beta checks t

    def kernel(self, t):
        """(c(t), s(t)^2) of (2)."""
        B = self.integral(t)  # checks t
        return math.exp(-B / 2), -math.expm1(-B)


class SubVP(VP):
    def g(self, t):
        return (self.beta(t) * -math.expm1(-2 * self.integral(t))) ** 0.5  # beta checks t

    def kernel(self, t):
        B = self.integral(t)  # checks t
        return math.exp(-B / 2), math.expm1(-B) ** 2


class VE:
    def __init__(self, sigma_min=0.01, sigma_max=50.0):
        _positive("sigma_min", sigma_min)
        _positive("sigma_max", sigma_max)
        if not sigma_max > sigma_min:
            raise ValueError(f"sigma_max: must exceed sigma_min = {sigma_min!r}, got {sigma_max!r}")
        self.sm, self.sM = sigma_min, sigma_max

    def sigma(self, t):
        _time(t)
        return self.sm * (self.sM / self.sm) ** t

    def f(self, x, t):
        _checks.tensor("x", x)
        _time(t)
        return torch.zeros_like(x)

    def g(self, t):
        return self.sigma(t) * (2 * math.log(self.sM / self.sm)) ** 0.5

    def kernel(self, t):
        return 1.0, self.sigma(t) ** 2 - self.sm**2  # sigma checks t


def euler_maruyama(sde, x, t0, t1, n, generator):
    """(1) from t0 to t1 (0 <= t0 < t1 <= 1) in n steps."""
    _process(sde)
    _checks.batch("x", x, ndim=2)
    _interval(t0, t1, "t0", "t1")
    if t1 < t0:
        raise ValueError(f"t1: the forward SDE runs forward in time, got t0 = {t0}, t1 = {t1}")
    n = _checks.positive_int("n", n)
    _checks.generator("generator", generator)
    ts = grid(t0, t1, n)
    for t, t_next in zip(ts, ts[1:], strict=False):
        dt = t_next - t
        x = (
            x
            + sde.f(x, t) * dt
            + sde.g(t) * dt**0.5 * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        )
    return x


def _drift_arguments(sde, score, x, t):
    _process(sde)
    _checks.function("score", score)
    _checks.tensor("x", x)
    _time(t)


def reverse_drift(sde, score, x, t):
    """(3): f - g^2 score."""
    _drift_arguments(sde, score, x, t)
    return sde.f(x, t) - sde.g(t) ** 2 * score(x, t)


def ode_drift(sde, score, x, t, half=True):
    """(4): f - g^2 score / 2 (half=False: the variant without the 1/2)."""
    _drift_arguments(sde, score, x, t)
    _checks.flag("half", half)
    return sde.f(x, t) - (0.5 if half else 1.0) * sde.g(t) ** 2 * score(x, t)


def _reverse_arguments(sde, score, x, t1, t0, n, generator):
    _process(sde)
    _checks.function("score", score)
    _checks.batch("x", x, ndim=2)
    _interval(t1, t0, "t1", "t0")
    if t0 > t1:
        raise ValueError(
            f"t0: the reverse SDE runs backwards, from t1 = {t1} down to t0, got t0 = {t0}"
        )
    _checks.generator("generator", generator)
    return _checks.positive_int("n", n)


def reverse_euler_maruyama(sde, score, x, t1, t0, n, generator):
    """(3) from t1 down to t0 (0 <= t0 < t1 <= 1) in n steps."""
    n = _reverse_arguments(sde, score, x, t1, t0, n, generator)
    ts = grid(t1, t0, n)
    for t, t_next in zip(ts, ts[1:], strict=False):
        dt = t - t_next  # > 0
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x - reverse_drift(sde, score, x, t) * dt + sde.g(t) * dt**0.5 * z
    return x


def hutchinson(jvp_probe, v):
    """v^T J v for a probe v (a finite tensor, rows = probes), given jvp_probe(v) = J v."""
    _checks.function("jvp_probe", jvp_probe)
    _checks.batch("v", v)
    return (v * jvp_probe(v)).sum(-1)


def probes(kind, shape, generator, dtype=F64):
    """Hutchinson probes v with E[v v^T] = I: "rademacher" (+-1 with probability 1/2 each) or
    "gaussian" (N(0, I)), drawn from `generator`."""
    _checks.choice("kind", kind, ("rademacher", "gaussian"))
    if not isinstance(shape, (tuple, list, torch.Size)) or not shape:
        raise TypeError(f"shape: expected a non-empty tuple of sizes, got {shape!r:.60}")
    for k, size in enumerate(shape):
        _checks.positive_int(f"shape[{k}]", size)
    _checks.generator("generator", generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a real floating torch dtype, got {dtype!r:.60}")
    v = torch.randn(shape, generator=generator, dtype=dtype)
    return torch.sign(v) if kind == "rademacher" else v


def log_likelihood(sde, score, prior_log_density, x0, n, t_eps=0.0, generator=None, probe=None):
    """(5): log p_0(x_0) by Heun steps of the augmented ODE (x, log-density change) from t_eps to 1,
    with the exact divergence, or Hutchinson's estimate when probe is "rademacher" or "gaussian"
    (one fixed probe per point for the whole path). x0 (n, d); t_eps in [0, 1)."""
    _process(sde)
    _checks.function("score", score)
    _checks.function("prior_log_density", prior_log_density)
    _checks.batch("x0", x0, ndim=2)
    n = _checks.positive_int("n", n)
    _checks.scalar("t_eps", t_eps, 0, 1, hi_open=True)
    _checks.generator("generator", generator)
    if probe is not None:
        _checks.choice("probe", probe, ("rademacher", "gaussian"))
    divergence = divergence_exact
    if probe is not None:
        v = probes(probe, x0.shape, generator, x0.dtype)

        def divergence(drift, x, t):
            return divergence_hutchinson(drift, x, t, v)

    def drift(x, t):
        return ode_drift(sde, score, x, t)

    x1, integral = solve_with_divergence(drift, x0, t_eps, 1.0, n, divergence)
    return prior_log_density(x1) + integral


def predictor_corrector(sde, score, x, t1, t0, n, generator, snr=0.16):
    """(7) from t1 down to t0 (0 <= t0 < t1 <= 1) in n predictor steps, one corrector step after
    each; snr > 0."""
    n = _reverse_arguments(sde, score, x, t1, t0, n, generator)
    _positive("snr", snr)
    ts = grid(t1, t0, n)
    steps = list(zip(ts, ts[1:], strict=False))
    alphas = [1 - sde.beta(u) * (t - u) if isinstance(sde, VP) else 1.0 for t, u in steps]
    if min(alphas) <= 0:
        raise ValueError(f"n: {n} steps make a DDPM beta_i = beta(t) dt >= 1 (alpha_i <= 0)")
    for (t, t_next), alpha in zip(steps, alphas, strict=True):
        dt = t - t_next
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x - reverse_drift(sde, score, x, t) * dt + sde.g(t) * dt**0.5 * z
        s = score(x, t_next)
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        # one step size from batch-averaged norms (per-sample norms blow up where the score vanishes)
        ratio = snr * z.norm(dim=-1).mean() / s.norm(dim=-1).mean().clamp_min(1e-12)
        eps = 2 * alpha * ratio**2
        x = x + eps * s + (2 * eps) ** 0.5 * z
    return x


def consistency_coefficients(t, sigma_data=0.5, eps=0.002):
    """(6): (c_skip(t), c_out(t)) for t >= eps > 0, sigma_data > 0."""
    _positive("sigma_data", sigma_data)
    _positive("eps", eps)
    _checks.scalar("t", t)
    if t < eps:
        raise ValueError(f"t: must be >= eps = {eps}, got {t!r}")
    c_skip = sigma_data**2 / ((t - eps) ** 2 + sigma_data**2)
    c_out = sigma_data * (t - eps) / (sigma_data**2 + t**2) ** 0.5
    return c_skip, c_out


def consistency_function(F, x, t, sigma_data=0.5, eps=0.002):
    """(6): f(x, t) = c_skip(t) x + c_out(t) F(x, t)."""
    _checks.function("F", F)
    _checks.batch("x", x)
    c_skip, c_out = consistency_coefficients(t, sigma_data, eps)
    return c_skip * x + c_out * F(x, t)
