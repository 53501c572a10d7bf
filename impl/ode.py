"""Fixed-step ODE integration shared by the SDE, CNF and flow-matching code.

dx/dt = drift(x, t) from t_start to t_end (either direction) in n equal steps h:
(1) Euler  x <- x + h k1,                      k1 = drift(x, t)            (order 1)
(2) Heun   x <- x + h (k1 + k2) / 2,           k2 = drift(x + h k1, t + h)  (order 2)
(3) with the divergence carried along (Heun):  D <- D + h (div(x, t) + div(x_pred, t + h)) / 2,
    which integrates int div(drift)(x_t, t) dt along the path; div is exact (autograd trace) or
    Hutchinson's v^T (d drift/dx) v for a probe v with E[v v^T] = I (one vector-Jacobian product).
(4) adaptive: scipy's RK45 with relative tolerance rtol, on the flattened batch.
"""

import torch

F64 = torch.float64


def grid(t_start, t_end, n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: the number of steps must be a positive integer, got {n!r}")
    if not (0 <= min(t_start, t_end) and max(t_start, t_end) <= 1) or t_start == t_end:
        raise ValueError(
            f"t0: the time interval [{t_start}, {t_end}] must lie in [0, 1] and not be empty"
        )
    return torch.linspace(t_start, t_end, n + 1, dtype=F64).tolist()


def ode_solve(drift, x, t_start, t_end, n, method="heun"):
    """(1) or (2)."""
    if method not in ("euler", "heun"):
        raise ValueError(f"method: 'euler' or 'heun', got {method!r}")
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
    """tr(d drift / dx) per row of x, by autograd (small d)."""
    x = x.detach().requires_grad_(True)
    out = drift(x, t)
    div = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(x.shape[1]):
        div = div + torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0][:, i]
    return div.detach()


def divergence_hutchinson(drift, x, t, v):
    """(3): v^T (d drift/dx) v per row, for probes v of x's shape."""
    x = x.detach().requires_grad_(True)
    (vjp,) = torch.autograd.grad((drift(x, t) * v).sum(), x)
    return (vjp * v).sum(-1).detach()


def solve_with_divergence(drift, x, t_start, t_end, n, divergence=divergence_exact):
    """(3): (x at t_end, int_{t_start}^{t_end} div(drift)(x_t, t) dt); `divergence(drift, x, t)`."""
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
    of drift evaluations). The drift sees x's dtype."""
    from scipy.integrate import solve_ivp

    if not 0 < rtol < 1:
        raise ValueError(f"rtol: must lie in (0, 1), got {rtol!r}")
    shape = x.shape

    def rhs(t, y):
        return (
            drift(torch.as_tensor(y, dtype=x.dtype).reshape(shape), t).detach().reshape(-1).numpy()
        )

    sol = solve_ivp(
        rhs,
        (t_start, t_end),
        x.detach().reshape(-1).numpy(),
        method="RK45",
        rtol=rtol,
        atol=rtol * 1e-2,
    )
    return torch.as_tensor(sol.y[:, -1], dtype=x.dtype).reshape(shape), sol.nfev
