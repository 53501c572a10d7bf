"""Gaussian conditional paths and their exact marginals for Gaussian-mixture data (Lipman et al.
2023, "Flow Matching for Generative Modeling", Theorems 1 and 3; the article's section on Gaussian
paths). Time convention of the article: t = 0 is the standard Gaussian, t = 1 is data.

(1) Gaussian path   p_t(x | x1) = N(mu_t(x1), sigma_t^2 I),  mu_t(x1) = a_t x1 (OT, VP) or x1 (VE),
                    flow  psi_t(x) = sigma_t x + mu_t(x1),  inverse  psi_t^{-1}(y) = (y - mu_t)/sigma_t
(2) its velocity    psi'_t(x) = sigma'_t x + mu'_t(x1)          (the time derivative of psi_t)
(3) Theorem 3       u_t(y | x1) = psi'_t(psi_t^{-1}(y)) = sigma'_t/sigma_t (y - mu_t(x1)) + mu'_t(x1)
    The article's middle member psi'_t(sigma'_t y + mu'_t) evaluates psi'_t at another point
    (`middle_member_as_written`, kept to audit it).
(4) the three paths of the article (requirements: mu_0 = 0, sigma_0 = 1, mu_1 = x1, sigma_1 = sigma_min)
    OT  mu_t = t x1, sigma_t = 1 - (1 - sigma_min) t
    VE  mu_t = x1, sigma_t = std_{1-t}, std_s^2 = sigma(s)^2 - sigma(0)^2 with sigma(s) = sm (sM/sm)^s,
        the VE SDE's perturbation kernel (SDE-02): std_0 = 0, std_1 ~ sM >> 1
    VP  mu_t = alpha_{1-t} x1, sigma_t = sqrt(1 - alpha_{1-t}^2), alpha_s = exp(-B(s)/2),
        B(s) = int_0^s beta, beta(s) = b0 + s (b1 - b0) (the VP SDE of SDE-02)
(5) Theorem 1, marginals of a Gaussian mixture q = sum_k pi_k N(m_k, S_k):
    p_t(x) = sum_k pi_k N(x; a_t m_k, a_t^2 S_k + sigma_t^2 I)
    u_t(x) = E[u_t(x | x1) | x_t = x] = sigma'_t/sigma_t (x - a_t E[x1|x]) + a'_t E[x1|x]
    (VE: a_t = 1, a'_t = 0), with the posterior mean (no division by a_t, so t = 0 is fine)
    E[x1 | x] = sum_k r_k(x) (m_k + a_t S_k C_k^{-1} (x - a_t m_k)),  C_k = a_t^2 S_k + sigma_t^2 I.

Times t are numbers in [0, 1] or 0-d tensors (a tensor t carries autograd through p_t, so d/dt
p_t(x) is exact); the fields need sigma_t > 0 (t < 1 for VE, VP and OT with sigma_min = 0).
Points are finite (n, d) float64 batches; data an impl.diffusion.oracle.GaussianMixture.
"""

import math

import torch

from impl import _checks
from impl.diffusion import sde
from impl.diffusion.oracle import GaussianMixture
from impl.flows import matching
from impl.flows.coupling import _batch

F64 = torch.float64


def _time(t, singular_end=False):
    """t in [0, 1] (a number or a 0-d tensor); singular_end: t = 1 refused (sigma_1 = 0)."""
    _checks.real("t", t, 0, 1, hi_open=singular_end, exact=True)
    if isinstance(t, torch.Tensor) and t.ndim != 0:
        raise ValueError(f"t: expected a number or a 0-d tensor, got shape {tuple(t.shape)}")
    return t if isinstance(t, torch.Tensor) else torch.tensor(float(t), dtype=F64)


class GaussianPath:
    """(1): mu_t(x1) = a_t x1 (or x1 when `shifts` is False) and sigma_t, with time derivatives.
    Subclasses give `coefficients(t) -> (a_t, sigma_t)` and `derivatives(t) -> (a'_t, sigma'_t)`
    as 0-d float64 tensors (differentiable in a tensor t)."""

    name = "path"
    singular_end = False  # sigma_1 = 0: the field is not defined at t = 1

    def coefficients(self, t):
        raise NotImplementedError

    def derivatives(self, t):
        raise NotImplementedError


class OT(GaussianPath):
    """(4) OT: a_t = t, sigma_t = 1 - (1 - sigma_min) t; sigma_min in [0, 1)."""

    name = "OT"

    def __init__(self, sigma_min=0.0):
        self.sigma_min = _checks.scalar("sigma_min", sigma_min, 0, 1, hi_open=True)
        self.singular_end = self.sigma_min == 0

    def coefficients(self, t):
        t = _time(t)
        return t, (1 - t) + self.sigma_min * t  # = 1 - (1 - sigma_min) t, exact at t = 0 and 1

    def derivatives(self, t):
        t = _time(t)
        return torch.ones_like(t), torch.full_like(t, -(1 - self.sigma_min))


class VE(GaussianPath):
    """(4) VE: a_t = 1, sigma_t = std_{1-t} of the VE SDE sde.VE(sigma_lo, sigma_hi)
    (0 < sigma_lo < sigma_hi, finite)."""

    name = "VE"
    singular_end = True

    def __init__(self, sigma_lo=0.01, sigma_hi=50.0):
        _checks.scalar("sigma_lo", sigma_lo, 0, None, lo_open=True)
        _checks.scalar("sigma_hi", sigma_hi, 0, None, lo_open=True)
        if not sigma_hi > sigma_lo:
            raise ValueError(f"sigma_hi: must exceed sigma_lo = {sigma_lo!r}, got {sigma_hi!r}")
        self.sde = sde.VE(sigma_lo, sigma_hi)

    def _sigma(self, s):  # sigma(s) = sm (sM/sm)^s, as sde.VE.sigma, differentiable in s
        return self.sde.sm * (self.sde.sM / self.sde.sm) ** s

    def coefficients(self, t):
        t = _time(t)
        s = 1 - t
        return torch.ones_like(t), torch.sqrt(self._sigma(s) ** 2 - self.sde.sm**2)

    def derivatives(self, t):
        t = _time(t, singular_end=True)
        s = 1 - t
        sig = self._sigma(s)
        std = torch.sqrt(sig**2 - self.sde.sm**2)
        dsig_ds = sig * math.log(self.sde.sM / self.sde.sm)
        return torch.zeros_like(t), -sig * dsig_ds / std  # d/dt = -d/ds


class VP(GaussianPath):
    """(4) VP: a_t = alpha_{1-t} = exp(-B(1-t)/2), sigma_t = sqrt(1 - a_t^2), B of the VP SDE
    sde.VP(beta_min, beta_max) (both > 0, finite)."""

    name = "VP"
    singular_end = True

    def __init__(self, beta_min=0.1, beta_max=20.0):
        self.sde = sde.VP(beta_min, beta_max)

    def alpha(self, s):
        """alpha_s = exp(-B(s)/2), s in [0, 1] (a number or a 0-d tensor)."""
        s = _time(s)
        return torch.exp(-self.sde.integral(s) / 2)

    def coefficients(self, t):
        t = _time(t)
        a = self.alpha(1 - t)
        return a, torch.sqrt(1 - a**2)

    def derivatives(self, t):
        t = _time(t, singular_end=True)
        a = self.alpha(1 - t)
        da = self.sde.beta(1 - t) / 2 * a  # d/dt alpha_{1-t} = beta(1-t)/2 alpha_{1-t}
        return da, -a * da / torch.sqrt(1 - a**2)


def _path(path):
    if not isinstance(path, GaussianPath):
        raise TypeError(f"path: expected an impl.flows.marginal GaussianPath, got {path!r:.60}")


def psi(path, x, x1, t):
    """(1): psi_t(x) = sigma_t x + mu_t(x1); x, x1 finite tensors of one shape."""
    _path(path)
    _checks.pair("x", x, "x1", x1)
    a, s = path.coefficients(t)
    return s * x + a * x1


def psi_inverse(path, y, x1, t):
    """(1): psi_t^{-1}(y) = (y - mu_t(x1)) / sigma_t; needs sigma_t > 0."""
    _path(path)
    _checks.pair("y", y, "x1", x1)
    _time(t, path.singular_end)
    a, s = path.coefficients(t)
    return (y - a * x1) / s


def psi_dot(path, x, x1, t):
    """(2): psi'_t(x) = sigma'_t x + mu'_t(x1)."""
    _path(path)
    _checks.pair("x", x, "x1", x1)
    _time(t, path.singular_end)
    da, ds = path.derivatives(t)
    return ds * x + da * x1


def conditional_field(path, y, x1, t):
    """(3): u_t(y | x1) = sigma'_t/sigma_t (y - mu_t(x1)) + mu'_t(x1), through
    matching.conditional_field; y, x1 finite tensors of one shape, t with sigma_t > 0."""
    _path(path)
    _checks.pair("y", y, "x1", x1)
    _time(t, path.singular_end)
    a, s = path.coefficients(t)
    da, ds = path.derivatives(t)
    return matching.conditional_field(y, x1, float(t), a * x1, da * x1, s, ds)


def middle_member_as_written(path, y, x1, t):
    """(3), the article's middle member: psi'_t(sigma'_t(x1) y + mu'_t(x1))."""
    _path(path)
    _checks.pair("y", y, "x1", x1)
    _time(t, path.singular_end)
    da, ds = path.derivatives(t)
    return psi_dot(path, ds * y + da * x1, x1, t)


def conditional_log_density(path, x, x1, t):
    """log p_t(x | x1) = log N(x; mu_t(x1), sigma_t^2 I), summed over the last axis; x, x1
    broadcasting finite tensors with a last axis of one length; sigma_t > 0."""
    _path(path)
    _checks.tensor("x", x)
    _checks.tensor("x1", x1)
    if x.ndim == 0 or x1.ndim == 0 or x.shape[-1] != x1.shape[-1]:
        raise ValueError(f"x: last axis must match x1's, got {tuple(x.shape)}, {tuple(x1.shape)}")
    matching._broadcast(x=x, x1=x1)
    _time(t, path.singular_end)
    a, s = path.coefficients(t)
    d = x.shape[-1]
    z = (x - a * x1) / s
    return -0.5 * (z**2).sum(-1) - d * torch.log(s) - 0.5 * d * math.log(2 * math.pi)


def _mixture(data, x):
    if not isinstance(data, GaussianMixture):
        raise TypeError("data: expected an impl.diffusion.oracle.GaussianMixture")
    _batch("x", x, data.d)


def marginal_log_density(path, data, x, t):
    """(5): log p_t(x) for Gaussian-mixture data (t = 1 allowed when the data have positive
    covariances: p_1 = q convolved with N(0, sigma_1^2 I))."""
    _path(path)
    _mixture(data, x)
    a, s = path.coefficients(t)
    return data.log_density(x, a**2, s**2)


def posterior_mean(path, data, x, t):
    """(5): E[x1 | x_t = x] for Gaussian-mixture data (stable at a_t = 0)."""
    _path(path)
    _mixture(data, x)
    a, s = path.coefficients(t)
    logp, sol = data._components(x, a**2, s**2)  # sol_k = C_k^{-1} (x - a m_k)
    r = torch.softmax(logp, dim=1)  # (n, K)
    comp = data.means[None] + a * torch.einsum("kij,nkj->nki", data.covariances, sol)
    return (r[:, :, None] * comp).sum(1)


def marginal_field(path, data, x, t):
    """(5): u_t(x), the posterior-weighted conditional field (Theorem 1); sigma_t > 0."""
    _path(path)
    _mixture(data, x)
    _time(t, path.singular_end)
    a, s = path.coefficients(t)
    da, ds = path.derivatives(t)
    m = posterior_mean(path, data, x, t)
    return ds / s * (x - a * m) + da * m
