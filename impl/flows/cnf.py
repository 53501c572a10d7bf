"""Continuous normalizing flows (Chen et al. 2018; Grathwohl et al. 2019; seed article 5).

dz/dt = v(z, t), t: 0 -> 1, z_0 ~ p_0.
(1) instantaneous change of variables   d log p_t(z_t) / dt = -tr(dv/dz)(z_t, t)
(2) so  log p_1(z_1) = log p_0(z_0) - int_0^1 tr(dv/dz)(z_t, t) dt, and log p_1 at a point x is
    found by integrating back from x at t = 1 to z_0 at t = 0:
        log p_1(x) = log p_0(z_0) - int_0^1 tr(dv/dz) dt  (the integral along the same path)
(3) continuity equation  d p/dt + div(p v) = 0: v generates the path p_t.

Inputs: v(z, t) a callable returning a tensor of z's shape; points are a finite float batch
(n, d), n, d >= 1; n (steps) a positive integer.
"""

import torch

from impl import _checks
from impl.flows.coupling import _batch
from impl.ode import solve_with_divergence


def push(v, z0, log_p0, n):
    """(2) forward: (z_1, log p_1(z_1)) for samples z_0 (n, d) with known log p_0(z_0), a finite
    tensor of shape (n,); Heun, n steps."""
    v = _checks.shape_keeping("v", v, "z")
    _batch("z0", z0)
    _checks.tensor("log_p0", log_p0)
    if log_p0.shape != z0.shape[:1]:
        raise ValueError(
            f"log_p0: expected shape ({z0.shape[0]},), one value per row of z0, "
            f"got {tuple(log_p0.shape)}"
        )
    n = _checks.positive_int("n", n)
    z1, integral = solve_with_divergence(v, z0, 0.0, 1.0, n)
    return z1, log_p0 - integral


def log_density(v, x, log_p0_fn, n):
    """(2) backward: log p_1(x) for points x (n, d), integrating from t = 1 back to t = 0 (Heun,
    n steps); log_p0_fn(z) returns one log-density per row of z."""
    v = _checks.shape_keeping("v", v, "z")
    _batch("x", x)
    _checks.function("log_p0_fn", log_p0_fn)
    n = _checks.positive_int("n", n)
    z0, integral_back = solve_with_divergence(v, x, 1.0, 0.0, n)  # = -int_0^1 div dt
    log_p0 = log_p0_fn(z0)
    if not isinstance(log_p0, torch.Tensor) or log_p0.shape != x.shape[:1]:
        got = tuple(log_p0.shape) if isinstance(log_p0, torch.Tensor) else type(log_p0).__name__
        raise ValueError(f"log_p0_fn: must return shape ({x.shape[0]},), one per row, got {got}")
    return log_p0 + integral_back
