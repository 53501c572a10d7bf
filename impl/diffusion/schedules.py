"""Noise schedules, timestep sub-sequences and prediction types (seed articles 1, 6 and 8).

DDPM notation: beta_t, alpha_t = 1 - beta_t, abar_t = prod_{i<=t} alpha_i. (The DDIM paper writes
alpha_t for our abar_t.) Timesteps are indices k = 0..T-1 as in diffusers: abar[k] is the paper's
abar at t = k + 1, and "k = -1" is the data itself (abar = 1). Schedules are float64.

(1) linear          beta from 1e-4 to 0.02 over T = 1000 (DDPM)
(2) scaled linear   sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012) (Stable Diffusion)
(3) cosine          abar(t) = f(t)/f(0), f(t) = cos^2(pi/2 (t/T + s)/(1 + s)), s = 0.008, beta <= 0.999
(4) zero terminal SNR (Lin et al. 2024): sqrt(abar) shifted and scaled so that abar_{T-1} = 0 and
    abar_0 is unchanged
(5) sub-sequences of n steps, decreasing: leading (multiples of T // n), trailing (from T - 1 down
    in steps of T / n), linspace (round(linspace(0, T - 1, n))), and the DDIM paper's
    linear tau_i = floor(c i), c = T / n, and quadratic tau_i = floor(c i^2), c = 0.8 T / (n - 1)^2.
(6) prediction types at a timestep with a = abar_t:
    x0 = (x_t - sqrt(1-a) eps) / sqrt(a);  v = sqrt(a) eps - sqrt(1-a) x0;
    eps = sqrt(a) v + sqrt(1-a) x_t;       x0 = sqrt(a) x_t - sqrt(1-a) v.
"""

import math
from fractions import Fraction

import numpy as np
import torch

from impl import _checks

F64 = torch.float64


def _level(name, a, x_name=None, x=None, lo_open=False, hi_open=False):
    """A noise level abar in [0, 1] (an open end excluded): a number, or a tensor that
    broadcasts to `x` (one level per batch row)."""
    _checks.real(name, a, 0, 1, lo_open=lo_open, hi_open=hi_open)
    return a if x is None else _checks.broadcasts(name, a, x_name, x)


def _ordered(a, b, strict=False):
    """b >= a (b > a if strict): abar_tau = b at the earlier time tau <= t, abar_t = a (per
    entry for tensors)."""
    a_, b_ = (np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for v in (a, b))
    if not np.all(b_ > a_ if strict else b_ >= a_):
        raise ValueError(
            f"b: abar_tau must be {'>' if strict else '>='} abar_t = a (tau before t), "
            f"got a = {a!r:.60}, b = {b!r:.60}"
        )


def _levels(a, b, x_name=None, x=None, a_lo_open=False, b_hi_open=False, strict=False):
    """abar_t = a in [0, 1) (or (0, 1)), abar_tau = b in (0, 1] (or (0, 1)), a <= b (a < b)."""
    _level("a", a, x_name, x, lo_open=a_lo_open, hi_open=True)
    _level("b", b, x_name, x, lo_open=True, hi_open=b_hi_open)
    _ordered(a, b, strict)


def _model_output(eps, x, t):
    """The model's eps at timestep t: a finite tensor of x's shape."""
    if not isinstance(eps, torch.Tensor) or eps.shape != x.shape:
        got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
        raise ValueError(f"eps_model: returned {got} at t = {t} for x of shape {tuple(x.shape)}")
    if not torch.isfinite(eps.sum()) and not torch.isfinite(eps).all():
        raise ValueError(f"eps_model: returned a non-finite eps (nan or inf) at t = {t}")
    return eps


def linear_betas(T=1000, beta_start=1e-4, beta_end=0.02):
    """(1). T a positive integer, beta_start and beta_end in (0, 1]."""
    T = _checks.positive_int("T", T)
    _checks.real("beta_start", beta_start, 0, 1, lo_open=True)
    _checks.real("beta_end", beta_end, 0, 1, lo_open=True)
    return torch.linspace(beta_start, beta_end, T, dtype=F64)


def scaled_linear_betas(T=1000, beta_start=0.00085, beta_end=0.012):
    """(2). T a positive integer, beta_start and beta_end in (0, 1]."""
    T = _checks.positive_int("T", T)
    _checks.real("beta_start", beta_start, 0, 1, lo_open=True)
    _checks.real("beta_end", beta_end, 0, 1, lo_open=True)
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=F64) ** 2


def cosine_betas(T=1000, s=0.008, max_beta=0.999):
    """(3). T a positive integer, the offset s in [0, 1], max_beta in (0, 1]."""
    T = _checks.positive_int("T", T)
    _checks.real("s", s, 0, 1)
    _checks.real("max_beta", max_beta, 0, 1, lo_open=True)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return torch.tensor([min(1 - f(k + 1) / f(k), max_beta) for k in range(T)], dtype=F64)


def alphas_cumprod(betas):
    """abar_t = prod_{i<=t} (1 - beta_i); betas a non-empty 1-D sequence with 0 < beta_t < 1
    (beta = 1 allowed last, abar = 0)."""
    b = _checks.vector("betas", betas)
    if not np.all((b > 0) & (b <= 1)) or np.any(b[:-1] == 1):
        k = int(np.flatnonzero((b <= 0) | (b > 1) | np.r_[b[:-1] == 1, False])[0])
        raise ValueError(
            f"betas: every beta_t must lie in (0, 1), beta = 1 only last; betas[{k}] = {b[k]!r}"
        )
    return torch.cumprod(1 - torch.as_tensor(betas, dtype=F64), 0)


def check_abar(abar):
    """abar must be a non-empty 1-D sequence, float64-representable, strictly decreasing and in
    [0, 1]; abar_0 in (0, 1] (a zero terminal abar is allowed)."""
    a = _checks.vector("abar", abar)
    if not np.all((a >= 0) & (a <= 1)) or not a[0] > 0:
        raise ValueError("abar: every abar_t must lie in [0, 1] and abar_0 > 0")
    if np.any(a[1:] >= a[:-1]):
        k = int(np.flatnonzero(a[1:] >= a[:-1])[0])
        raise ValueError(
            f"abar: must be strictly decreasing; abar[{k + 1}] = {float(a[k + 1])!r} >= "
            f"abar[{k}] = {float(a[k])!r} (a low-precision schedule that rounds to 1?)"
        )
    return torch.as_tensor(abar)


def rescale_zero_terminal_snr(betas):
    """(4): betas whose abar ends at exactly 0 (the terminal step has beta = 1); at least two
    betas whose abar decreases from the first step to the last."""
    s = alphas_cumprod(betas).sqrt()
    s0, sT = s[0].clone(), s[-1].clone()
    if not s0 > sT:
        raise ValueError("betas: abar must decrease from the first step to the last (T >= 2)")
    s = (s - sT) * s0 / (s0 - sT)
    abar = s**2
    if not torch.all(abar[:-1] > 0):
        raise ValueError("betas: abar underflows to 0 before the last step")
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def timesteps(T, n, spacing):
    """(5): n decreasing timesteps in [0, T - 1] (duplicates are kept: see DDIM-08), in exact
    rational arithmetic: rounding is half to even, as numpy's and torch's, but of the exact value
    (a float formula lands just below or above a half or a whole number: float64's floor(i T / n)
    gives 14 for 11 * 30 / 22 = 15). T and n positive integers, n <= T."""
    T, n = _checks.positive_int("T", T), _checks.positive_int("n", n)
    if n > T:
        raise ValueError(f"n: {n} steps exceed the T = {T} timesteps")
    i = [Fraction(k) for k in range(n)]
    if spacing == "leading":
        ts = [k * (T // n) for k in i]
    elif spacing == "trailing":
        ts = [round(T - k * Fraction(T, n)) - 1 for k in i]
    elif spacing == "linspace":
        ts = [round(k * Fraction(T - 1, max(n - 1, 1))) for k in i]
    elif spacing == "ddim-linear":
        ts = [math.floor(k * Fraction(T, n)) for k in i]
    elif spacing == "ddim-quadratic":
        ts = [math.floor(k**2 * Fraction(4 * T, 5 * max(n - 1, 1) ** 2)) for k in i]
    else:
        raise ValueError(
            f"spacing: one of leading, trailing, linspace, ddim-linear, ddim-quadratic; got {spacing!r}"
        )
    return torch.tensor(sorted((int(t) for t in ts), reverse=True), dtype=torch.long)


def check_timesteps(timesteps, T):
    """A strictly decreasing non-empty 1-D sequence of integer timesteps in [0, T - 1]; T a
    positive integer."""
    T = _checks.positive_int("T", T)
    ts = _checks.vector("timesteps", timesteps, kinds="iu")
    if ts.min() < 0 or ts.max() > T - 1:
        raise ValueError(
            f"timesteps: must lie in [0, {T - 1}], got [{int(ts.min())}, {int(ts.max())}]"
        )
    if np.any(ts[1:] >= ts[:-1]):
        raise ValueError(f"timesteps: must be strictly decreasing, got {ts.tolist()}")
    return torch.as_tensor(ts)


def eps_to_x0(x_t, eps, a):
    """(6). x_t and eps real finite tensors of one shape; a in (0, 1] (a number, or a tensor
    that broadcasts to x_t)."""
    _level("a", a, "x_t", _checks.pair("x_t", x_t, "eps", eps), lo_open=True)
    return (x_t - (1 - a) ** 0.5 * eps) / a**0.5


def x0_to_eps(x_t, x0, a):
    """(6), a in [0, 1)."""
    _level("a", a, "x_t", _checks.pair("x_t", x_t, "x0", x0), hi_open=True)
    return (x_t - a**0.5 * x0) / (1 - a) ** 0.5


def to_v(x0, eps, a):
    """(6), a in [0, 1]."""
    _level("a", a, "x0", _checks.pair("x0", x0, "eps", eps))
    return a**0.5 * eps - (1 - a) ** 0.5 * x0


def v_to_eps(x_t, v, a):
    """(6), a in [0, 1]."""
    _level("a", a, "x_t", _checks.pair("x_t", x_t, "v", v))
    return a**0.5 * v + (1 - a) ** 0.5 * x_t


def v_to_x0(x_t, v, a):
    """(6), a in [0, 1]."""
    _level("a", a, "x_t", _checks.pair("x_t", x_t, "v", v))
    return a**0.5 * x_t - (1 - a) ** 0.5 * v
