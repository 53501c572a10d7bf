"""Rejected variants of the flow-based models claims (FLOW-*): misreadings of the change of
variables, the coupling layer, the CNF density, the OT path and its fields, rectified flow's two
time conventions and the timestep shift, each patched into impl/flows/."""

import math

import torch

from impl import ode
from impl.flows import cnf, coupling, matching
from properties.variants import variant

# FLOW-01, FLOW-02: change of variables and coupling layers


def _coupling_forward(logdet_of_s):
    def forward(self, x):
        self._check(x)
        s, t = self._st(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * torch.exp(s) + t), logdet_of_s(s)

    return forward


@variant(
    "FLOW-01",
    "FLOW-02",
    name="coupling-logdet-negated",
    why="the coupling reports -sum(s), the log-det of its inverse, as log|det df/dx|",
)
def _(mp):
    mp.setattr(coupling.AffineCoupling, "forward", _coupling_forward(lambda s: -s.sum(-1)))


@variant(
    "FLOW-02",
    name="coupling-logdet-mean-over-dims",
    why="the coupling's log-det averages s over the dimensions instead of summing it",
)
def _(mp):
    mp.setattr(coupling.AffineCoupling, "forward", _coupling_forward(lambda s: s.mean(-1)))


@variant(
    "FLOW-02",
    name="coupling-inverse-exp-plus-s",
    why="the inverse coupling multiplies by exp(+s) instead of exp(-s)",
)
def _(mp):
    def inverse(self, y):
        self._check(y)
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * (y - t) * torch.exp(s), -s.sum(-1)

    mp.setattr(coupling.AffineCoupling, "inverse", inverse)


@variant(
    "FLOW-02",
    name="coupling-inverse-unscales-before-shift",
    why="the inverse coupling computes y exp(-s) - t instead of (y - t) exp(-s)",
)
def _(mp):
    def inverse(self, y):
        self._check(y)
        s, t = self._st(y * self.mask)
        return y * self.mask + (1 - self.mask) * (y * torch.exp(-s) - t), -s.sum(-1)

    mp.setattr(coupling.AffineCoupling, "inverse", inverse)


@variant(
    "FLOW-01",
    name="log-prob-minus-logdet",
    why="log p(x) = log pi(f(x)) - log|det df/dx| (the sign of the inverse map's formula)",
)
def _(mp):
    def log_prob(self, x):
        z, logdet = self(x)
        d = z.shape[1]
        return -0.5 * (z**2).sum(-1) - 0.5 * d * math.log(2 * math.pi) - logdet

    mp.setattr(coupling.Flow, "log_prob", log_prob)


@variant(
    "FLOW-01",
    name="flow-logdet-of-last-layer-only",
    why="the composition keeps the last layer's log-det instead of adding the layers' log-dets",
)
def _(mp):
    def forward(self, x):
        self._check(x)
        logdet = torch.zeros(x.shape[0], dtype=x.dtype)
        for layer in self.layers:
            x, logdet = layer(x)
        return x, logdet

    mp.setattr(coupling.Flow, "forward", forward)


@variant(
    "FLOW-09",
    name="log-prob-without-logdet",
    why="the flow's likelihood is the base density of f(x), the Jacobian term forgotten",
)
def _(mp):
    def log_prob(self, x):
        z, _ = self(x)
        return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    mp.setattr(coupling.Flow, "log_prob", log_prob)


@variant(
    "FLOW-09",
    name="flow-sample-runs-forward",
    why="sampling pushes z through the forward map f instead of its inverse f^-1",
)
def _(mp):
    def sample(self, n, d, generator):
        return self(torch.randn(n, d, generator=generator, dtype=torch.float64))[0]

    mp.setattr(coupling.Flow, "sample", sample)


# FLOW-03: continuous normalizing flows


@variant(
    "FLOW-03",
    name="cnf-plus-divergence",
    why="d log p/dt = +tr(dv/dz): the divergence integral added instead of subtracted",
)
def _(mp):
    def push(v, z0, log_p0, n):
        z1, integral = cnf.solve_with_divergence(v, z0, 0.0, 1.0, n)
        return z1, log_p0 + integral

    def log_density(v, x, log_p0_fn, n):
        z0, integral_back = cnf.solve_with_divergence(v, x, 1.0, 0.0, n)
        return log_p0_fn(z0) - integral_back

    mp.setattr(cnf, "push", push)
    mp.setattr(cnf, "log_density", log_density)


@variant(
    "FLOW-03",
    name="cnf-log-density-integrates-forward",
    why="log p_1(x) found by integrating from x forward in time (0 -> 1) instead of back to t = 0",
)
def _(mp):
    def log_density(v, x, log_p0_fn, n):
        z, integral = cnf.solve_with_divergence(v, x, 0.0, 1.0, n)
        return log_p0_fn(z) - integral

    mp.setattr(cnf, "log_density", log_density)


@variant(
    "FLOW-03",
    "FLOW-09",
    name="cnf-divergence-left-endpoint",
    why="the divergence integral by the left-endpoint rule h div(z_t, t) (order 1) beside Heun's "
    "order-2 state update",
)
def _(mp):
    def solve_with_divergence(drift, x, t_start, t_end, n, divergence=ode.divergence_exact):
        ts = ode.grid(t_start, t_end, n)
        integral = torch.zeros(x.shape[0], dtype=x.dtype)
        for t, t_next in zip(ts, ts[1:], strict=False):
            h = t_next - t
            k1, d1 = drift(x, t).detach(), divergence(drift, x, t)
            k2 = drift(x + h * k1, t_next).detach()
            x = x + h * (k1 + k2) / 2
            integral = integral + h * d1
        return x, integral

    mp.setattr(cnf, "solve_with_divergence", solve_with_divergence)


# FLOW-04, FLOW-05: the OT path's marginal field and density


def _posterior_mean(data, x, t, sigma):
    """E[x_1 | x_t = x] as in matching.ot_marginal_field (3)."""
    if t == 0:
        return (data.weights[:, None] * data.means).sum(0).expand_as(x)
    return (x + sigma**2 * data.score(x, t**2, sigma**2)) / t


@variant(
    "FLOW-04",
    name="marginal-field-not-divided-by-sigma-t",
    why="the marginal field E[x_1 | x] - x: rectified flow's target x_1 - x_t used as the field "
    "at x_t, not divided by 1 - t",
)
def _(mp):
    def field(data, x, t, sigma_min=0.0):
        return _posterior_mean(data, x, t, 1 - (1 - sigma_min) * t) - x

    mp.setattr(matching, "ot_marginal_field", field)


@variant(
    "FLOW-04",
    name="marginal-field-drops-sigma-min-from-derivative",
    why="sigma_t' taken as -1 instead of -(1 - sigma_min) in the marginal field",
)
def _(mp):
    def field(data, x, t, sigma_min=0.0):
        sigma = 1 - (1 - sigma_min) * t
        mean = _posterior_mean(data, x, t, sigma)
        return -1 / sigma * (x - t * mean) + mean

    mp.setattr(matching, "ot_marginal_field", field)


@variant(
    "FLOW-04",
    name="marginal-density-ignores-sigma-min",
    why="the marginal density with noise variance (1 - t)^2 instead of (1 - (1 - sigma_min) t)^2",
)
def _(mp):
    def log_density(data, x, t, sigma_min=0.0):
        return data.log_density(x, t**2, (1 - t) ** 2)

    mp.setattr(matching, "ot_marginal_log_density", log_density)


@variant(
    "FLOW-04",
    "FLOW-05",
    name="marginal-field-prior-weighted",
    why="the conditional field averaged with prior weights: E[x_1] in place of E[x_1 | x_t = x]",
)
def _(mp):
    def field(data, x, t, sigma_min=0.0):
        sigma = 1 - (1 - sigma_min) * t
        mean = (data.weights[:, None] * data.means).sum(0).expand_as(x)
        return -(1 - sigma_min) / sigma * (x - t * mean) + mean

    mp.setattr(matching, "ot_marginal_field", field)


# FLOW-05, FLOW-06: Gaussian conditional paths


@variant(
    "FLOW-05",
    "FLOW-06",
    name="conditional-field-wrong-sign",
    why="u_t(x | x_1) = -(sigma_t'/sigma_t)(x - mu_t) + mu_t': the sign of the contraction flipped",
)
def _(mp):
    def field(x, x1, t, mu, dmu, sigma, dsigma):
        return -dsigma / sigma * (x - mu) + dmu

    mp.setattr(matching, "conditional_field", field)


@variant(
    "FLOW-06",
    name="ot-path-without-sigma-min",
    why="the OT path x_t = t x_1 + (1 - t) x_0, sigma_min left out of 1 - (1 - sigma_min) t",
)
def _(mp):
    mp.setattr(matching, "ot_path", lambda x0, x1, t, sigma_min=0.0: t * x1 + (1 - t) * x0)


# FLOW-07: rectified flow and its two time conventions


@variant(
    "FLOW-07",
    name="t-to-sigma-without-minus",
    why="v_sigma(x, sigma) = v_t(x, 1 - sigma): the time reversal's minus sign dropped",
)
def _(mp):
    mp.setattr(matching, "t_velocity_as_sigma", lambda v: lambda x, sigma: v(x, 1 - sigma))


@variant(
    "FLOW-07",
    name="rectified-target-x1-minus-xt",
    why="the rectified-flow target x_1 - x_t instead of x_1 - x_0",
)
def _(mp):
    def pair(x0, x1, t):
        x_t = (1 - t) * x0 + t * x1
        return x_t, x1 - x_t

    mp.setattr(matching, "rectified_flow_pair", pair)


@variant(
    "FLOW-07",
    name="euler-t-evaluates-at-step-end",
    why="Euler in t evaluates the velocity at the end of each step, (k + 1) dt, not at k dt",
)
def _(mp):
    def euler_t(velocity, x0, n):
        x, dt = x0, 1.0 / n
        for k in range(n):
            x = x + dt * velocity(x, min((k + 1) * dt, 1 - 1e-9))
        return x

    mp.setattr(matching, "euler_t", euler_t)


# FLOW-08: the timestep shift


@variant(
    "FLOW-08",
    name="shift-inverted",
    why="sigma' = sigma / (s + (1 - s) sigma): the shift by 1/s, which lowers sigma for s > 1",
)
def _(mp):
    mp.setattr(matching, "shift", lambda sigma, s: sigma / (s + (1 - s) * sigma))


@variant(
    "FLOW-08",
    name="shift-denominator-1-plus-s-sigma",
    why="sigma' = s sigma / (1 + s sigma): the -1 of (s - 1) dropped, so sigma = 1 is not fixed",
)
def _(mp):
    mp.setattr(matching, "shift", lambda sigma, s: s * sigma / (1 + s * sigma))
