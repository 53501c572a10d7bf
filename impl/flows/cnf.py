"""Continuous normalizing flows (Chen et al. 2018; Grathwohl et al. 2019; seed article 5).

dz/dt = v(z, t), t: 0 -> 1, z_0 ~ p_0.
(1) instantaneous change of variables   d log p_t(z_t) / dt = -tr(dv/dz)(z_t, t)
(2) so  log p_1(z_1) = log p_0(z_0) - int_0^1 tr(dv/dz)(z_t, t) dt, and log p_1 at a point x is
    found by integrating back from x at t = 1 to z_0 at t = 0:
        log p_1(x) = log p_0(z_0) - int_0^1 tr(dv/dz) dt  (the integral along the same path)
(3) continuity equation  d p/dt + div(p v) = 0: v generates the path p_t.
"""

from impl.ode import solve_with_divergence


def push(v, z0, log_p0, n):
    """(2) forward: (z_1, log p_1(z_1)) for samples z_0 with known log p_0(z_0); Heun, n steps."""
    z1, integral = solve_with_divergence(v, z0, 0.0, 1.0, n)
    return z1, log_p0 - integral


def log_density(v, x, log_p0_fn, n):
    """(2) backward: log p_1(x), integrating from t = 1 back to t = 0 (Heun, n steps)."""
    z0, integral_back = solve_with_divergence(v, x, 1.0, 0.0, n)  # = -int_0^1 div dt
    return log_p0_fn(z0) + integral_back
