"""Continuous-time samplers and flows: accuracy against network evaluations (NFE) for the
probability-flow ODE (Euler, Heun, adaptive RK45) and the reverse SDE (Euler-Maruyama), and
coupling-flow throughput.

Accuracy is exact: with 1-D Gaussian data every sampler here is linear in x, so the law it
produces is Gaussian and two evaluations give it; the tracked number is |mean error| +
|variance error| against the true marginal at t = 1e-3 (VP, beta from 0.1 to 20, data N(1, 0.5^2)).
"""

import torch
from scipy import integrate

from impl import ode
from impl.diffusion import oracle, sde
from impl.flows import coupling

F64 = torch.float64
VP = sde.VP()
DATA = oracle.GaussianMixture([1.0], [[1.0]], [[[0.25]]])
T_END = 1e-3


def score(x, t):
    c, s2 = VP.kernel(t)
    return DATA.score(x, c**2, s2)


def law(t):
    c, s2 = VP.kernel(t)
    return c * 1.0, c**2 * 0.25 + s2


def law_error(m, v):
    target = law(T_END)
    return abs(m - target[0]) + abs(v - target[1])


def pushed_law(solve):
    out = solve(torch.tensor([[0.0], [1.0]], dtype=F64))
    phi, psi = float(out[1] - out[0]), float(out[0])
    m1, v1 = law(1.0)
    return phi * m1 + psi, phi**2 * v1


def reverse_em_law(n):
    m, v = law(1.0)
    h = (1.0 - T_END) / n
    for k in range(n):
        t = 1.0 - k * h
        b0 = float(sde.reverse_drift(VP, score, torch.tensor([[0.0]], dtype=F64), t))
        b1 = float(sde.reverse_drift(VP, score, torch.tensor([[1.0]], dtype=F64), t)) - b0
        m, v = m - (b0 + b1 * m) * h, (1 - b1 * h) ** 2 * v + VP.g(t) ** 2 * h
    return m, v


def drift(x, t):
    return sde.ode_drift(VP, score, x, t)


class FixedStepSamplers:
    params = (["PF-ODE Euler", "PF-ODE Heun", "reverse SDE (EM)"], [10, 30, 100, 300])
    param_names = ["sampler", "steps"]

    def setup(self, sampler, steps):
        self.x = torch.randn(10_000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)

    def time_sample_10000(self, sampler, steps):
        if sampler == "reverse SDE (EM)":
            sde.reverse_euler_maruyama(
                VP, score, self.x, 1.0, T_END, steps, torch.Generator().manual_seed(1)
            )
        else:
            ode.ode_solve(
                drift, self.x, 1.0, T_END, steps, "euler" if "Euler" in sampler else "heun"
            )

    def track_law_error(self, sampler, steps):
        if sampler == "reverse SDE (EM)":
            return law_error(*reverse_em_law(steps))
        method = "euler" if "Euler" in sampler else "heun"
        return law_error(*pushed_law(lambda x: ode.ode_solve(drift, x, 1.0, T_END, steps, method)))

    track_law_error.unit = "|mean err| + |var err|"

    def track_nfe(self, sampler, steps):
        return steps * (2 if "Heun" in sampler else 1)

    track_nfe.unit = "network evaluations"


class AdaptiveODE:
    """scipy's RK45 on the PF-ODE at three tolerances."""

    params = [[1e-3, 1e-6, 1e-9]]
    param_names = ["rtol"]

    def _solve(self, rtol, y0):
        return integrate.solve_ivp(lambda t, y: drift(torch.tensor(y[:, None], dtype=F64), t)[:, 0].numpy(),
                                   (1.0, T_END), y0, method="RK45", rtol=rtol, atol=rtol * 1e-2)  # fmt: skip

    def time_solve_two_points(self, rtol):
        self._solve(rtol, [0.0, 1.0])

    def track_law_error(self, rtol):
        sol = self._solve(rtol, [0.0, 1.0])
        return law_error(*pushed_law(lambda x: torch.tensor(sol.y[:, -1][:, None], dtype=F64)))

    track_law_error.unit = "|mean err| + |var err|"

    def track_nfe(self, rtol):
        return self._solve(rtol, [0.0, 1.0]).nfev

    track_nfe.unit = "network evaluations"


class CouplingThroughput:
    """A 6-layer RealNVP (width 64), batch 4096."""

    params = [[2, 64]]
    param_names = ["dimension"]

    def setup(self, d):
        torch.set_num_threads(1)
        self.flow = coupling.realnvp(d, 6, 64, torch.Generator().manual_seed(0))
        self.x = torch.randn(4096, d, generator=torch.Generator().manual_seed(1), dtype=F64)

    def time_forward_and_log_det(self, d):
        with torch.no_grad():
            self.flow(self.x)

    def time_inverse(self, d):
        with torch.no_grad():
            self.flow.inverse(self.x)


PF_ODE_SOLVERS = {
    "ours Euler, 200 steps": lambda x: ode.ode_solve(drift, x, 1.0, T_END, 200, "euler"),
    "ours Heun, 100 steps": lambda x: ode.ode_solve(drift, x, 1.0, T_END, 100, "heun"),
    "scipy RK45, rtol 1e-6": lambda x: torch.tensor(
        AdaptiveODE()._solve(1e-6, x[:, 0].numpy()).y[:, -1][:, None], dtype=F64
    ),
}


class PFODESolvers:
    """The PF-ODE from t = 1 to 1e-3 for the same 1000 points (float64): our fixed-step solvers
    (200 drift evaluations each) against scipy's adaptive RK45 on the same vector of points."""

    params = [list(PF_ODE_SOLVERS)]
    param_names = ["solver"]

    def setup(self, solver):
        self.x = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
        self.solve = PF_ODE_SOLVERS[solver]

    def time_solve_1000_points(self, solver):
        self.solve(self.x)

    def track_law_error(self, solver):
        return law_error(*pushed_law(self.solve))

    track_law_error.unit = "|mean err| + |var err|"
