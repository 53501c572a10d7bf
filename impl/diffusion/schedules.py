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

import torch

F64 = torch.float64


def _positive_int(name, n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}: must be a positive integer, got {n!r}")


def linear_betas(T=1000, beta_start=1e-4, beta_end=0.02):
    """(1)."""
    _positive_int("T", T)
    return torch.linspace(beta_start, beta_end, T, dtype=F64)


def scaled_linear_betas(T=1000, beta_start=0.00085, beta_end=0.012):
    """(2)."""
    _positive_int("T", T)
    return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=F64) ** 2


def cosine_betas(T=1000, s=0.008, max_beta=0.999):
    """(3)."""
    _positive_int("T", T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    return torch.tensor([min(1 - f(k + 1) / f(k), max_beta) for k in range(T)], dtype=F64)


def alphas_cumprod(betas):
    """abar_t = prod_{i<=t} (1 - beta_i); checks 0 < beta_t < 1 (beta = 1 allowed last, abar = 0)."""
    betas = torch.as_tensor(betas, dtype=F64)
    if betas.ndim != 1 or betas.numel() == 0:
        raise ValueError(f"betas: expected a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
    if not torch.all((betas > 0) & (betas <= 1)):
        raise ValueError("betas: every beta_t must lie in (0, 1]")
    return torch.cumprod(1 - betas, 0)


def check_abar(abar):
    """abar must be float64-representable, decreasing and in [0, 1]; abar_0 in (0, 1]."""
    abar = torch.as_tensor(abar)
    if abar.ndim != 1 or abar.numel() == 0:
        raise ValueError(f"abar: expected a non-empty 1-D tensor, got shape {tuple(abar.shape)}")
    if not torch.all((abar >= 0) & (abar <= 1)) or not abar[0] > 0:
        raise ValueError("abar: every abar_t must lie in [0, 1] and abar_0 > 0")
    if torch.any(abar[1:] >= abar[:-1]):
        k = int(torch.nonzero(abar[1:] >= abar[:-1])[0])
        raise ValueError(
            f"abar: must be strictly decreasing; abar[{k + 1}] = {abar[k + 1].item()!r} >= "
            f"abar[{k}] = {abar[k].item()!r} (a low-precision schedule that rounds to 1?)"
        )
    return abar


def rescale_zero_terminal_snr(betas):
    """(4): betas whose abar ends at exactly 0 (the terminal step has beta = 1)."""
    s = alphas_cumprod(betas).sqrt()
    s0, sT = s[0].clone(), s[-1].clone()
    s = (s - sT) * s0 / (s0 - sT)
    abar = s**2
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1 - alphas


def timesteps(T, n, spacing):
    """(5): n decreasing timesteps in [0, T - 1] (duplicates are kept: see DDIM-08), in exact
    rational arithmetic: rounding is half to even, as numpy's and torch's, but of the exact value
    (a float formula lands just below or above a half or a whole number: float64's floor(i T / n)
    gives 14 for 11 * 30 / 22 = 15)."""
    _positive_int("T", T)
    _positive_int("n", n)
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


def check_timesteps(ts, T):
    """A strictly decreasing sequence of integer timesteps in [0, T - 1]."""
    ts = torch.as_tensor(ts)
    if ts.ndim != 1 or ts.numel() == 0 or ts.dtype.is_floating_point:
        raise ValueError("timesteps: expected a non-empty 1-D integer sequence")
    if ts.min() < 0 or ts.max() > T - 1:
        raise ValueError(
            f"timesteps: must lie in [0, {T - 1}], got [{int(ts.min())}, {int(ts.max())}]"
        )
    if torch.any(ts[1:] >= ts[:-1]):
        raise ValueError(f"timesteps: must be strictly decreasing, got {ts.tolist()}")
    return ts


def eps_to_x0(x_t, eps, a):
    """(6)."""
    return (x_t - (1 - a) ** 0.5 * eps) / a**0.5


def x0_to_eps(x_t, x0, a):
    return (x_t - a**0.5 * x0) / (1 - a) ** 0.5


def to_v(x0, eps, a):
    return a**0.5 * eps - (1 - a) ** 0.5 * x0


def v_to_eps(x_t, v, a):
    return a**0.5 * v + (1 - a) ** 0.5 * x_t


def v_to_x0(x_t, v, a):
    return a**0.5 * x_t - (1 - a) ** 0.5 * v
