"""Rejected variants of the continuous-time diffusion claims (SDE-*): misreadings of Song et al.
2021 and the bugs a reimplementation of impl/diffusion/sde.py would plausibly have."""

import math

import torch

from impl.diffusion import oracle, sde
from properties.variants import variant

_reverse_drift = sde.reverse_drift
_ode_drift = sde.ode_drift
_solve_with_divergence = sde.solve_with_divergence
_probes = sde.probes
_consistency_coefficients = sde.consistency_coefficients


# SDE-01: the forward Euler-Maruyama step


@variant("SDE-01", name="em-noise-g-dt", why="Euler-Maruyama noise g dt z in place of g sqrt(dt) z")
def _(mp):
    def euler_maruyama(process, x, t0, t1, n, generator):
        ts = sde.grid(t0, t1, n)
        for t, t_next in zip(ts, ts[1:], strict=False):
            dt = t_next - t
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + process.f(x, t) * dt + process.g(t) * dt * z
        return x

    mp.setattr(sde, "euler_maruyama", euler_maruyama)


@variant("SDE-01", name="em-drift-at-t-next", why="Euler-Maruyama evaluates f and g at t + dt")
def _(mp):
    def euler_maruyama(process, x, t0, t1, n, generator):
        ts = sde.grid(t0, t1, n)
        for t, t_next in zip(ts, ts[1:], strict=False):
            dt = t_next - t
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + process.f(x, t_next) * dt + process.g(t_next) * dt**0.5 * z
        return x

    mp.setattr(sde, "euler_maruyama", euler_maruyama)


# SDE-02: the VP SDE and its kernel


@variant("SDE-02", name="vp-drift-without-half", why="VP drift -beta(t) x in place of -beta x / 2")
def _(mp):
    mp.setattr(sde.VP, "f", lambda self, x, t: -self.beta(t) * x)


@variant("SDE-02", name="vp-kernel-mean-exp-minus-B", why="VP kernel mean x0 exp(-int beta)")
def _(mp):
    def kernel(self, t):
        B = self.integral(t)
        return math.exp(-B), -math.expm1(-B)

    mp.setattr(sde.VP, "kernel", kernel)


# SDE-03: VE and sub-VP


@variant(
    "SDE-03",
    name="ve-sigma-endpoints-swapped",
    why="VE sigma(t) = sigma_max (sigma_min / sigma_max)^t: the geometric schedule run backwards",
)
def _(mp):
    mp.setattr(sde.VE, "sigma", lambda self, t: self.sM * (self.sm / self.sM) ** t)


@variant(
    "SDE-03",
    "SDE-04",
    name="ve-g-without-the-2",
    why="VE g = sigma sqrt(ln(sigma_max/sigma_min)): d sigma^2/dt read as sigma^2 ln(...)",
)
def _(mp):
    mp.setattr(sde.VE, "g", lambda self, t: self.sigma(t) * math.log(self.sM / self.sm) ** 0.5)


@variant(
    "SDE-03",
    name="subvp-kernel-variance-without-square",
    why="sub-VP kernel variance 1 - exp(-B) (the VP one) in place of (1 - exp(-B))^2",
)
def _(mp):
    def kernel(self, t):
        B = self.integral(t)
        return math.exp(-B / 2), -math.expm1(-B)

    mp.setattr(sde.SubVP, "kernel", kernel)


@variant(
    "SDE-03",
    name="subvp-g-without-the-2",
    why="sub-VP g = sqrt(beta (1 - exp(-B))) in place of sqrt(beta (1 - exp(-2B)))",
)
def _(mp):
    mp.setattr(
        sde.SubVP, "g", lambda self, t: (self.beta(t) * -math.expm1(-self.integral(t))) ** 0.5
    )


# SDE-04: the reverse SDE and the predictor-corrector sampler


@variant("SDE-04", name="reverse-drift-score-sign-flipped", why="reverse drift f + g^2 score")
def _(mp):
    mp.setattr(sde, "reverse_drift", lambda p, score, x, t: p.f(x, t) + p.g(t) ** 2 * score(x, t))


@variant(
    "SDE-04",
    name="reverse-drift-with-half",
    why="the reverse SDE with the PF-ODE's drift f - g^2 score / 2 and the noise g dw",
)
def _(mp):
    mp.setattr(sde, "reverse_drift", lambda p, score, x, t: _ode_drift(p, score, x, t))


@variant(
    "SDE-04",
    name="reverse-sde-without-noise",
    why="reverse EM without its g sqrt(dt) z term (the noise treated as optional)",
)
def _(mp):
    def reverse_euler_maruyama(process, score, x, t1, t0, n, generator):
        ts = sde.grid(t1, t0, n)
        for t, t_next in zip(ts, ts[1:], strict=False):
            x = x - _reverse_drift(process, score, x, t) * (t - t_next)
        return x

    mp.setattr(sde, "reverse_euler_maruyama", reverse_euler_maruyama)


@variant(
    "SDE-04",
    name="langevin-step-without-alpha",
    why="the corrector's step size 2 (r |z| / |s|)^2 without Algorithm 5's alpha_i for VP",
)
def _(mp):
    def predictor_corrector(process, score, x, t1, t0, n, generator, snr=0.16):
        ts = sde.grid(t1, t0, n)
        for t, t_next in zip(ts, ts[1:], strict=False):
            dt = t - t_next
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x - _reverse_drift(process, score, x, t) * dt + process.g(t) * dt**0.5 * z
            s = score(x, t_next)
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            eps = 2 * (snr * z.norm(dim=-1).mean() / s.norm(dim=-1).mean().clamp_min(1e-12)) ** 2
            x = x + eps * s + (2 * eps) ** 0.5 * z
        return x

    mp.setattr(sde, "predictor_corrector", predictor_corrector)


# SDE-05: the probability-flow ODE, with and without the 1/2


@variant("SDE-05.half", name="pf-ode-without-half", why="PF-ODE drift f - g^2 score (no 1/2)")
def _(mp):
    mp.setattr(
        sde, "ode_drift", lambda p, score, x, t, half=True: _ode_drift(p, score, x, t, False)
    )


@variant(
    "SDE-05.without-half",
    name="pf-ode-half-always",
    why="half=False silently keeps the 1/2: the circulating variant is never really evaluated",
)
def _(mp):
    mp.setattr(sde, "ode_drift", lambda p, score, x, t, half=True: _ode_drift(p, score, x, t, True))


# SDE-06: score and noise


@variant(
    "SDE-06", name="eps-over-variance", why="s = -eps / (1 - abar) (the variance, not the std)"
)
def _(mp):
    mp.setattr(oracle.GaussianMixture, "eps", lambda self, x, a: -(1 - a) * self.score(x, a))


# SDE-07: the likelihood along the ODE and Hutchinson's estimator


@variant(
    "SDE-07",
    name="likelihood-divergence-sign-flipped",
    why="log p_0(x_0) = log p_1(x_1) - int div(drift) dt (d log p/dt = +div)",
)
def _(mp):
    def solve_with_divergence(*args, **kwargs):
        x, integral = _solve_with_divergence(*args, **kwargs)
        return x, -integral

    mp.setattr(sde, "solve_with_divergence", solve_with_divergence)


@variant(
    "SDE-07",
    name="rademacher-probes-are-gaussian",
    why="probe='rademacher' draws Gaussian probes (still unbiased, not the smaller variance)",
)
def _(mp):
    mp.setattr(sde, "probes", lambda kind, *args, **kwargs: _probes("gaussian", *args, **kwargs))


@variant(
    "SDE-07",
    name="rademacher-probes-0-1",
    why="Rademacher probes drawn in {0, 1} (randint without 2 v - 1): E[v v^T] != I, biased",
)
def _(mp):
    def probes(kind, shape, generator, dtype=torch.float64):
        v = _probes(kind, shape, generator, dtype)
        return (v + 1) / 2 if kind == "rademacher" else v

    mp.setattr(sde, "probes", probes)


# SDE-08: the consistency-model parametrisation


@variant(
    "SDE-08",
    name="c-skip-without-eps",
    why="c_skip = s_d^2 / (t^2 + s_d^2): eps dropped, so f(x, eps) is not exactly x",
)
def _(mp):
    def consistency_coefficients(t, sigma_data=0.5, eps=0.002):
        _, c_out = _consistency_coefficients(t, sigma_data, eps)
        return sigma_data**2 / (t**2 + sigma_data**2), c_out

    mp.setattr(sde, "consistency_coefficients", consistency_coefficients)


@variant(
    "SDE-08",
    name="c-out-root-over-t-minus-eps",
    why="c_out = s_d (t - e) / sqrt(s_d^2 + (t - e)^2): the root of c_skip's denominator",
)
def _(mp):
    def consistency_coefficients(t, sigma_data=0.5, eps=0.002):
        c_skip, _ = _consistency_coefficients(t, sigma_data, eps)
        return c_skip, sigma_data * (t - eps) / (sigma_data**2 + (t - eps) ** 2) ** 0.5

    mp.setattr(sde, "consistency_coefficients", consistency_coefficients)
