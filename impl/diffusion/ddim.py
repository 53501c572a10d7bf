"""DDIM: the non-Markovian generalisation of DDPM (Song et al. 2021; seed article 1).

With a = abar_t, b = abar_tau (tau < t) and the model's eps_theta(x_t, t):

(1) undetermined coefficients: for sigma^2 <= 1 - b, x_tau = lambda x_0 + k x_t + sigma eps,
    k = sqrt((1 - b - sigma^2)/(1 - a)), lambda = sqrt(b) - k sqrt(a), keeps q(x_tau|x_0) =
    N(sqrt(b) x_0, (1 - b) I) for every sigma (the non-Markovian family).
(2) update      x0_hat = (x_t - sqrt(1 - a) eps_theta)/sqrt(a)
                x_tau  = sqrt(b) x0_hat + sqrt(1 - b - sigma^2) eps_theta + sigma z
(3) the paper's sigma(eta) = eta sqrt((1 - b)/(1 - a)) sqrt(1 - a/b); eta = 1 is the DDPM posterior
    step on (t, tau) with beta = 1 - a/b, eta = 0 is deterministic.
(4) the article's sigma = eta sqrt((1 - b)/(1 - a)) sqrt(1 - alpha_t), with the single-step
    alpha_t = abar_t / abar_{t-1}; it equals (3) only when tau = t - 1.
(5) ODE view: xbar = x/sqrt(abar), s = sqrt((1 - abar)/abar); DDIM with eta = 0 is exactly the Euler
    step xbar_tau = xbar_t + (s_tau - s_t) eps_theta(x_t, t) of d xbar = eps(xbar/sqrt(s^2 + 1)) d s.
(6) inversion: the eta = 0 update run forward in t (from tau to t) maps x_0 back to x_T.
(7) SLERP between x_T endpoints: sin((1 - u) th)/sin(th) x_a + sin(u th)/sin(th) x_b,
    cos(th) = <x_a, x_b>/(|x_a| |x_b|); parallel endpoints (th = 0) interpolate linearly,
    antiparallel ones (th = pi, no unique great circle) are an error.
The article's sampler: T = 1000, linear betas, 20 steps at int(linspace(999, 0, 20)) (truncated),
stopping at tau = 0 (sample(..., to_data=False)); by default sample() takes one more step, to
abar = 1, as the DDIM paper's code does.
"""

import torch

from impl import _checks
from impl.diffusion.schedules import (
    F64,
    _levels,
    _model_output,
    check_abar,
    check_timesteps,
)


def _eta(eta):
    _checks.real("eta", eta, 0)


def sigma_paper(eta, a, b):
    """(3). eta >= 0; abar_t = a in [0, 1), abar_tau = b in (0, 1], a <= b."""
    _eta(eta)
    _levels(a, b)
    return eta * ((1 - b) / (1 - a)) ** 0.5 * (1 - a / b) ** 0.5


def sigma_article(eta, a, b, alpha_t):
    """(4): single-step alpha_t = abar_t / abar_{t-1} in [0, 1] in place of a/b; eta, a, b as
    in (3)."""
    _eta(eta)
    _levels(a, b)
    _checks.real("alpha_t", alpha_t, 0, 1)
    return eta * ((1 - b) / (1 - a)) ** 0.5 * (1 - alpha_t) ** 0.5


def _direction(b, sigma):
    """sqrt(1 - b - sigma^2); sigma^2 may exceed 1 - b only by rounding (8 ulps)."""
    sigma = float(_checks.scalar("sigma", sigma))
    if sigma < 0 or sigma**2 > (1 - b) * (1 + 2**-50):
        raise ValueError(
            f"sigma: need 0 <= sigma^2 <= 1 - abar_tau = {1 - b!r}, got sigma = {sigma!r}"
        )
    return max(1 - b - sigma**2, 0.0) ** 0.5


def coefficients(a, b, sigma):
    """(1): (lambda, k) of x_tau = lambda x_0 + k x_t + sigma eps; a in [0, 1), b in (0, 1],
    a <= b, 0 <= sigma^2 <= 1 - b."""
    a, b = float(_checks.scalar("a", a)), float(_checks.scalar("b", b))
    _levels(a, b)
    k = _direction(b, sigma) / (1 - a) ** 0.5
    return b**0.5 - k * a**0.5, k


def step(x_t, eps_hat, a, b, sigma, z):
    """(2): one DDIM step from abar_t = a in (0, 1) to abar_tau = b in [a, 1] with
    0 <= sigma^2 <= 1 - b (tensors; one new tensor, in-place updates: x_tau = sqrt(b/a) x_t +
    (sqrt(1 - b - sigma^2) - sqrt(b (1 - a)/a)) eps_hat + sigma z). x_t, eps_hat and z finite
    tensors of one shape; z is not read (may be None) when sigma = 0."""
    _checks.pair("x_t", x_t, "eps_hat", eps_hat)
    a, b = float(_checks.scalar("a", a)), float(_checks.scalar("b", b))
    _levels(a, b, a_lo_open=True)
    direction = _direction(b, sigma)
    sigma = float(sigma)
    if sigma:
        _checks.pair("x_t", x_t, "z", z)
        if torch.promote_types(torch.result_type(x_t, eps_hat), z.dtype) != torch.result_type(
            x_t, eps_hat
        ):
            raise ValueError(f"z: dtype {z.dtype} is wider than x_t's {x_t.dtype}")
    x0_hat = torch.add(x_t, eps_hat, alpha=-((1 - a) ** 0.5)).mul_(1 / a**0.5)  # eps_to_x0
    out = x0_hat.mul_(b**0.5).add_(eps_hat, alpha=direction)
    return out.add_(z, alpha=sigma) if sigma else out


def article_timesteps(T=1000, n=20):
    """The article's schedule: linspace(T - 1, 0, n) truncated towards zero, in integers:
    t_k = floor((T - 1)(n - 1 - k) / (n - 1)), k = 0..n-1 (a float linspace can land just below
    an integer and truncate one lower: float64 gives 14.999999999999998 -> 14 at T = 31,
    n = 23, k = 11). n = 1 gives [T - 1]. T and n positive integers, n <= T."""
    T, n = _checks.positive_int("T", T), _checks.positive_int("n", n)
    if n > T:
        raise ValueError(f"n: {n} steps exceed the T = {T} timesteps")
    if n == 1:
        return torch.tensor([T - 1])
    k = torch.arange(n)
    return (T - 1) * (n - 1 - k) // (n - 1)


def single_step_alpha(abar, t):
    """(4)'s alpha_t = abar_t / abar_{t-1}, the one-step alpha of DDPM (abar_{-1} = 1: the data).
    abar as in schedules.check_abar; t an integer index into it."""
    check_abar(abar)
    abar = torch.as_tensor(abar, dtype=F64)
    t = _checks.integer("t", t, 0, len(abar) - 1)
    return abar[t].item() / (abar[t - 1].item() if t > 0 else 1.0)


def step_sigma(rule, eta, abar, t, b):
    """The sampler's sigma on the step from timestep t to abar_tau = b: (3) or (4) for rule
    "paper" or "article"."""
    _checks.choice("rule", rule, ("paper", "article"))
    check_abar(abar)
    abar = torch.as_tensor(abar, dtype=F64)
    a = abar[_checks.integer("t", t, 0, len(abar) - 1)].item()
    if rule == "paper":
        return sigma_paper(eta, a, b)
    return sigma_article(eta, a, b, single_step_alpha(abar, t))


def plan(abar, timesteps, eta, sigma="paper", to_data=True):
    """The sampler's steps [(t, a, b, s)]: from each timestep t (a = abar_t) to the next one
    (b = abar_tau) with s = step_sigma(sigma, eta, ...). to_data=True (the DDIM paper's code,
    diffusers with set_alpha_to_one) adds one last step from the last timestep to the data
    (b = 1, where s = 0); to_data=False stops at the last timestep, as the article's sampler,
    whose 20 timesteps int(linspace(999, 0, 20)) give 19 steps, the last one to tau = 0.
    sigma^2 must not exceed 1 - b: eta > 1 can break that (ValueError naming eta; no clipping).
    abar and timesteps as in schedules.check_abar / check_timesteps; to_data a bool."""
    _checks.choice("sigma", sigma, ("paper", "article"))
    _eta(eta)
    _checks.flag("to_data", to_data)
    check_abar(abar)
    abar = torch.as_tensor(abar, dtype=F64)
    ts = check_timesteps(timesteps, abar.numel()).tolist()
    targets = [abar[tau].item() for tau in ts[1:]] + ([1.0] if to_data else [])
    steps = []
    for t, b in zip(ts, targets, strict=False):
        s = step_sigma(sigma, eta, abar, t, b)
        if s**2 > (1 - b) * (1 + 2**-50):
            raise ValueError(
                f"eta: {eta!r} gives sigma^2 = {s**2!r} > 1 - abar_tau = {1 - b!r} on the step "
                f"from t = {t}: a DDIM step needs sigma^2 <= 1 - abar_tau"
            )
        steps.append((t, abar[t].item(), b, s))
    return steps


def sample(eps_model, x_T, abar, timesteps, eta, generator=None, sigma="paper", to_data=True):
    """(2) over a decreasing sub-sequence, the steps of `plan` (see there for `to_data`);
    z ~ N(0, I) in x's dtype from `generator` (a torch.Generator or None), drawn only on steps
    with s > 0. `sigma`: "paper" (3) or "article" (4). eps_model(x, t) -> eps of x's shape;
    x_T a finite tensor; abar > 0 at the first timestep."""
    _checks.function("eps_model", eps_model)
    _checks.tensor("x_T", x_T)
    _checks.generator("generator", generator)
    steps = plan(abar, timesteps, eta, sigma, to_data)
    if steps and steps[0][1] == 0:
        raise ValueError(f"timesteps: abar = 0 at t = {steps[0][0]}: eps cannot predict x_0 there")
    x = x_T
    for t, a, b, s in steps:
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype) if s > 0 else None
        x = step(x, _model_output(eps_model(x, t), x, t), a, b, s, z)
    return x


def invert(eps_model, x0, abar, timesteps):
    """(6): x_0 -> x_T with the deterministic update run forward through increasing timesteps
    (the model is evaluated at the current, less noisy point: an approximation that improves
    as the steps get smaller). eps_model, abar and timesteps as in sample; x0 a finite tensor."""
    _checks.function("eps_model", eps_model)
    _checks.tensor("x0", x0)
    check_abar(abar)
    abar = torch.as_tensor(abar, dtype=F64)
    ts = check_timesteps(timesteps, abar.numel()).flip(0).tolist()  # increasing
    x, b, t_prev = x0, 1.0, None
    for t in ts:
        a = abar[t].item()
        t_model = t_prev if t_prev is not None else t
        eps = _model_output(eps_model(x, t_model), x, t_model)
        x = a**0.5 * ((x - (1 - b) ** 0.5 * eps) / b**0.5) + (1 - a) ** 0.5 * eps
        b, t_prev = a, t
    return x


def ode_euler_step(x_t, eps_hat, a, b):
    """(5): x_tau from the Euler step in (xbar, s) coordinates; a in (0, 1), b in [a, 1];
    x_t and eps_hat finite tensors of one shape."""
    _levels(a, b, "x_t", _checks.pair("x_t", x_t, "eps_hat", eps_hat), a_lo_open=True)
    s_t, s_tau = ((1 - a) / a) ** 0.5, ((1 - b) / b) ** 0.5
    xbar_tau = x_t / a**0.5 + (s_tau - s_t) * eps_hat
    return b**0.5 * xbar_tau


def slerp(x_a, x_b, u):
    """(7). x_a, x_b finite non-zero tensors of one shape; u in [0, 1].

    Antiparallel is decided on the computed cosine, not on theta: the computed
    c = <x_a, x_b> / (|x_a| |x_b|) of d entries is within (2 d + 6) eps of the exact cosine
    (eps of the dtype: the dot product's n-term sum by d eps |x_a| |x_b|, each norm by
    (d/2 + 1) eps, the product and quotient by 2 eps), so c <= -1 + (2 d + 6) eps cannot be told
    apart from -1 and is an error: theta within sqrt(2 (2 d + 6) eps) of pi (1e-7 at d = 3 in
    float64), where 1/sin(theta) would amplify rounding beyond 1e7 anyway. (A cut-off of 1e-12 on
    pi - theta is below arccos's own resolution there: arccos(-1 + eps) = pi - 2.1e-8.)"""
    _checks.pair("x_a", x_a, "x_b", x_b)
    _checks.real("u", u, 0, 1)
    norm_a, norm_b = x_a.norm(), x_b.norm()
    for name, norm in (("x_a", norm_a), ("x_b", norm_b)):
        if not norm > 0:
            raise ValueError(f"{name}: has zero norm: no direction to interpolate")
    cos = torch.sum(x_a * x_b) / (norm_a * norm_b)
    tol = (2 * x_a.numel() + 6) * torch.finfo(cos.dtype).eps
    if cos <= -1 + tol:
        raise ValueError("x_b: antiparallel to x_a (theta = pi): no unique great circle")
    theta = torch.arccos(cos.clamp(-1, 1))
    if theta.abs() < 1e-12:
        return (1 - u) * x_a + u * x_b
    return (torch.sin((1 - u) * theta) * x_a + torch.sin(u * theta) * x_b) / torch.sin(theta)
