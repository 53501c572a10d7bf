"""Fixed-step ODE integration shared by the SDE, CNF and flow-matching code.

dx/dt = drift(x, t) from t_start to t_end (either direction) in n equal steps h:
(1) Euler  x <- x + h k1,                      k1 = drift(x, t)            (order 1)
(2) Heun   x <- x + h (k1 + k2) / 2,           k2 = drift(x + h k1, t + h)  (order 2)
(3) with the divergence carried along (Heun):  D <- D + h (div(x, t) + div(x_pred, t + h)) / 2,
    which integrates int div(drift)(x_t, t) dt along the path; div is exact (autograd trace) or
    Hutchinson's v^T (d drift/dx) v for a probe v with E[v v^T] = I (one vector-Jacobian product).
(4) adaptive: scipy's RK45 with relative tolerance rtol, on the flattened batch.

Domain of every public function: times t_start != t_end (and t) in [0, 1]; n a positive integer
(Python or numpy); x a finite real floating torch tensor with at least one row ((n, d) where a
divergence is taken); drift(x, t) and divergence(drift, x, t) callables.
"""

import torch

from impl import _checks

F64 = torch.float64


def _interval(t_start, t_end, start_name="t_start", end_name="t_end"):
    """Two distinct times in [0, 1] (the names are the caller's arguments)."""
    _checks.scalar(start_name, t_start, 0, 1)
    _checks.scalar(end_name, t_end, 0, 1)
    if t_start == t_end:
        raise ValueError(
            f"{end_name}: must differ from {start_name} = {t_start!r} (empty interval)"
        )


def grid(t_start, t_end, n):
    """n + 1 equally spaced times from t_start to t_end (distinct, both in [0, 1]; n >= 1)."""
    n = _checks.positive_int("n", n)
    _interval(t_start, t_end)
    return torch.linspace(float(t_start), float(t_end), n + 1, dtype=F64).tolist()


def ode_solve(drift, x, t_start, t_end, n, method="heun"):
    """(1) or (2); method "euler" or "heun"."""
    _checks.function("drift", drift)
    _checks.batch("x", x)
    _checks.choice("method", method, ("euler", "heun"))
    ts = grid(t_start, t_end, n)
    for t, t_next in zip(ts, ts[1:], strict=False):
        h = t_next - t
        k1 = drift(x, t)
        if method == "euler":
            x = x + h * k1
        else:
            x = x + h * (k1 + drift(x + h * k1, t_next)) / 2
    return x


def divergence_exact(drift, x, t):
    """tr(d drift / dx) per row of x (n, d), by autograd (small d); t in [0, 1]."""
    _checks.function("drift", drift)
    _checks.batch("x", x, ndim=2)
    _checks.scalar("t", t, 0, 1)
    x = x.detach().requires_grad_(True)
    out = drift(x, t)
    div = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[1]):
        div = div + torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0][:, i]
    return div.detach()


def divergence_hutchinson(drift, x, t, v):
    """(3): v^T (d drift/dx) v per row of x (n, d), for probes v of x's shape; t in [0, 1]."""
    _checks.function("drift", drift)
    _checks.batch("x", x, ndim=2)
    _checks.scalar("t", t, 0, 1)
    _checks.same_shape("v", _checks.tensor("v", v), "x", x)
    x = x.detach().requires_grad_(True)
    (vjp,) = torch.autograd.grad((drift(x, t) * v).sum(), x)
    return (vjp * v).sum(-1).detach()


def solve_with_divergence(drift, x, t_start, t_end, n, divergence=divergence_exact):
    """(3): (x at t_end, int_{t_start}^{t_end} div(drift)(x_t, t) dt) for x (n, d);
    `divergence(drift, x, t)`."""
    _checks.function("drift", drift)
    _checks.batch("x", x, ndim=2)
    _checks.function("divergence", divergence)
    ts = grid(t_start, t_end, n)
    integral = torch.zeros(x.shape[0], dtype=x.dtype)
    for t, t_next in zip(ts, ts[1:], strict=False):
        h = t_next - t
        k1, d1 = drift(x, t).detach(), divergence(drift, x, t)
        x_pred = x + h * k1
        k2, d2 = drift(x_pred, t_next).detach(), divergence(drift, x_pred, t_next)
        x = x + h * (k1 + k2) / 2
        integral = integral + h * (d1 + d2) / 2
    return x, integral


def ode_solve_adaptive(drift, x, t_start, t_end, rtol=1e-6):
    """(4): scipy's RK45 on the whole batch with atol = rtol / 100; returns (x at t_end, number
    of drift evaluations). The drift sees x's dtype. rtol in (0, 1)."""
    from scipy.integrate import solve_ivp

    _checks.function("drift", drift)
    _checks.batch("x", x)
    _interval(t_start, t_end)  # a nan or infinite end made solve_ivp loop forever
    _checks.scalar("rtol", rtol, 0, 1, lo_open=True, hi_open=True)
    shape = x.shape

    def rhs(t, y):
        return (
            drift(torch.as_tensor(y, dtype=x.dtype).reshape(shape), t).detach().reshape(-1).numpy()
        )

    sol = solve_ivp(
        rhs,
        (float(t_start), float(t_end)),
        x.detach().reshape(-1).numpy(),
        method="RK45",
        rtol=rtol,
        atol=rtol * 1e-2,
    )
    return torch.as_tensor(sol.y[:, -1], dtype=x.dtype).reshape(shape), sol.nfev
