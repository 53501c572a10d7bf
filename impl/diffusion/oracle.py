"""Oracle models: Gaussian-mixture data, for which everything a trained network approximates is
known in closed form (seed articles 1, 3, 5, 6).

Data: x_0 ~ sum_k pi_k N(mu_k, S_k) in R^d; component k belongs to class c(k). Under the forward
process x_t = sqrt(a) x_0 + sqrt(1 - a) eps (a = abar_t) each component stays Gaussian:

(1) p_t(x) = sum_k pi_k N(x; m_k, C_k),  m_k = sqrt(a) mu_k,  C_k = a S_k + (1 - a) I
(2) responsibilities r_k(x) = pi_k N(x; m_k, C_k) / p_t(x)
(3) score  grad log p_t(x) = -sum_k r_k(x) C_k^{-1} (x - m_k)
(4) the optimal eps-predictor eps*(x, t) = E[eps | x_t = x] = -sqrt(1 - a) grad log p_t(x)
(5) Tweedie: E[x_0 | x_t = x] = (x + (1 - a) grad log p_t(x)) / sqrt(a)
(6) class posterior p(y | x_t = x) = sum_{k in class y} r_k(x)
(7) conditional on y: the same formulas over the components of class y, weights renormalised.
All computations are in float64.

Domain: weights (K,) positive, summing to 1 (within 1e-12); means (K, d); covariances (K, d, d)
symmetric (within 1e-10 of their largest entry) and positive definite; classes (K,) integers
>= 0; all finite. Points x: (n, d), finite (a list or any real tensor; n = 0 is allowed).
a = abar_t in [0, 1] (in (0, 1] for x0_mean); s2 >= 0 and not a = s2 = 0.
"""

import math

import numpy as np
import torch

from impl import _checks
from impl.diffusion.schedules import F64

SYMMETRY_TOLERANCE = 1e-10  # relative to the largest |entry|: rounding of Q D Q^T passes


def _real(name, value, ndim):
    """`value` (a list, array or tensor of real numbers) as a finite float64 tensor with `ndim`
    dimensions; a tensor keeps its autograd graph."""
    if isinstance(value, torch.Tensor):
        if value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(f"{name}: expected real numbers, got a tensor of {value.dtype}")
        t = value.to(F64)
    else:
        a = np.asarray(value) if not isinstance(value, (str, bytes, dict)) else None
        if a is None or a.dtype.kind not in "fiu":
            raise TypeError(f"{name}: expected real numbers, got {value!r:.60}")
        t = torch.as_tensor(a, dtype=F64)
    if t.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: has a non-finite entry (nan or inf)")
    return t


def _labels(classes):
    """Class labels: integers >= 0 (not bools), as a long tensor."""
    c = classes if isinstance(classes, torch.Tensor) else np.asarray(classes)
    if isinstance(c, torch.Tensor):
        integral = not (c.dtype.is_floating_point or c.dtype.is_complex or c.dtype == torch.bool)
    else:
        integral = c.dtype.kind in "iu"
    if not integral:
        raise TypeError(f"classes: expected integer labels, got {classes!r:.60}")
    c = torch.as_tensor(c, dtype=torch.long)
    if torch.any(c < 0):
        raise ValueError(f"classes: labels must be >= 0, got {c.tolist()}")
    return c


class GaussianMixture:
    def __init__(self, weights, means, covariances, classes=None):
        self.means = _real("means", means, 2)
        K, d = self.means.shape
        if K == 0 or d == 0:
            raise ValueError(f"means: expected K >= 1 components in d >= 1, got shape {(K, d)}")
        self.weights = _real("weights", weights, 1)
        if self.weights.shape != (K,):
            raise ValueError(
                f"weights: expected one weight per component of means {(K, d)}, got shape "
                f"{tuple(self.weights.shape)}"
            )
        if torch.any(self.weights <= 0) or abs(self.weights.sum().item() - 1) > 1e-12:
            raise ValueError(f"weights: must be positive and sum to 1, got {self.weights.tolist()}")
        self.covariances = _real("covariances", covariances, 3)
        if self.covariances.shape != (K, d, d):
            raise ValueError(
                f"covariances: expected shape {(K, d, d)} to match means {(K, d)}, got "
                f"{tuple(self.covariances.shape)}"
            )
        C = self.covariances
        asymmetry = (C - C.transpose(1, 2)).abs().amax(dim=(1, 2))
        scale = C.abs().amax(dim=(1, 2))
        if torch.any(asymmetry > SYMMETRY_TOLERANCE * scale):
            k = int(torch.argmax(asymmetry / scale))
            raise ValueError(f"covariances[{k}]: not symmetric, C - C^T up to {asymmetry[k]:.3g}")
        _, info = torch.linalg.cholesky_ex(C)
        if torch.any(info != 0):
            k = int(torch.nonzero(info)[0])
            raise ValueError(f"covariances[{k}]: not positive definite")
        self.classes = torch.zeros(K, dtype=torch.long) if classes is None else _labels(classes)
        if self.classes.shape != (K,):
            raise ValueError(
                f"classes: expected one class per component, got shape {tuple(self.classes.shape)}"
            )
        self.n_classes = int(self.classes.max()) + 1
        self.d = d

    def restrict(self, y):
        """(7): the data distribution of class y (an integer label)."""
        _checks.integer("y", y)
        keep = self.classes == y
        if not keep.any():
            raise ValueError(f"y: no component has class {y}")
        w = self.weights[keep]
        return GaussianMixture(w / w.sum(), self.means[keep], self.covariances[keep])

    def class_prior(self):
        return torch.zeros(self.n_classes, dtype=F64).index_add_(0, self.classes, self.weights)

    def sample(self, n, generator):
        """(x_0, class labels), n >= 1 draws from `generator` (a torch.Generator or None)."""
        n = _checks.positive_int("n", n)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got {generator!r:.60}")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, dtype=F64)
        L = torch.linalg.cholesky(self.covariances)
        return self.means[k] + torch.einsum("nij,nj->ni", L[k], z), self.classes[k]

    def _components(self, x, a, s2=None):
        """log(pi_k N(x; m_k, C_k)) and C_k^{-1}(x - m_k), for x of shape (n, d). The noised law
        is x = c x_0 + s eps with c = sqrt(a) and s^2 = 1 - a, or s^2 = s2 when given (any SDE's
        perturbation kernel: c = mean coefficient, s2 = variance). Checks x, a and s2."""
        x = _real("x", x, 2)
        if x.shape[1] != self.d:
            raise ValueError(f"x: expected points of dimension d = {self.d}, got {tuple(x.shape)}")
        _checks.scalar("a", a, 0, 1)
        if s2 is not None:
            _checks.scalar("s2", s2, 0, None)
            if a == 0 and s2 == 0:
                raise ValueError("s2: must be > 0 when a = 0 (the noised law would be a point)")
        c2 = a
        s2 = 1 - a if s2 is None else s2
        m = c2**0.5 * self.means  # (K, d)
        C = c2 * self.covariances + s2 * torch.eye(self.d, dtype=F64)
        L = torch.linalg.cholesky(C)  # (K, d, d)
        diff = x[:, None, :] - m[None]  # (n, K, d)
        sol = torch.cholesky_solve(diff.permute(1, 2, 0), L).permute(2, 0, 1)  # (n, K, d)
        logdet = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        quad = (diff * sol).sum(-1)
        logp = torch.log(self.weights) - 0.5 * (quad + logdet + self.d * math.log(2 * math.pi))
        return logp, sol

    def log_density(self, x, a, s2=None):
        """(1): log p_t(x) for abar_t = a (a = 1: the data density); for a general kernel
        x = c x_0 + s eps pass a = c^2 and s2 = s^2."""
        logp, _ = self._components(x, a, s2)
        return torch.logsumexp(logp, dim=1)

    def responsibilities(self, x, a):
        """(2)."""
        logp, _ = self._components(x, a)
        return torch.softmax(logp, dim=1)

    def score(self, x, a, s2=None):
        """(3) (general kernel: a = c^2, s2 = s^2, as in log_density)."""
        logp, sol = self._components(x, a, s2)
        r = torch.softmax(logp, dim=1)
        return -(r[:, :, None] * sol).sum(1)

    def eps(self, x, a):
        """(4)."""
        score = self.score(x, a)  # checks x and a
        return -((1 - a) ** 0.5) * score

    def x0_mean(self, x, a):
        """(5), for a in (0, 1]."""
        _checks.scalar("a", a, 0, 1, lo_open=True)
        score = self.score(x, a)  # checks x
        return (torch.as_tensor(x, dtype=F64) + (1 - a) * score) / a**0.5

    def class_posterior(self, x, a):
        """(6): p(y | x_t = x), shape (n, classes)."""
        r = self.responsibilities(x, a)
        return torch.zeros(r.shape[0], self.n_classes, dtype=F64).index_add_(1, self.classes, r)

    def eps_model(self, abar, y=None):
        """eps*(x, t) at timestep index t of the schedule abar (conditional on class y if given);
        abar: a non-empty 1-D sequence in [0, 1]."""
        abar = _real("abar", abar, 1)
        if abar.numel() == 0 or torch.any((abar < 0) | (abar > 1)):
            raise ValueError("abar: expected a non-empty sequence of values in [0, 1]")
        target = self if y is None else self.restrict(y)
        return lambda x, t: target.eps(x, float(abar[t]))


def isotropic_mixture(means, std, weights=None, classes=None):
    """A mixture with covariance std^2 I for every component (std > 0)."""
    means = _real("means", means, 2)
    _checks.scalar("std", std, 0, None, lo_open=True)
    K, d = means.shape
    weights = torch.full((K,), 1.0 / K, dtype=F64) if weights is None else weights
    return GaussianMixture(
        weights, means, std**2 * torch.eye(d, dtype=F64).expand(K, d, d), classes
    )
