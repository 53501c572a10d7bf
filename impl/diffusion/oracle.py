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
"""

import math

import torch

from impl.diffusion.schedules import F64


class GaussianMixture:
    def __init__(self, weights, means, covariances, classes=None):
        self.weights = torch.as_tensor(weights, dtype=F64)
        self.means = torch.as_tensor(means, dtype=F64)
        self.covariances = torch.as_tensor(covariances, dtype=F64)
        K, d = self.means.shape if self.means.ndim == 2 else (None, None)
        if K is None or self.weights.shape != (K,) or self.covariances.shape != (K, d, d):
            raise ValueError(
                "weights: expected weights (K,), means (K, d), covariances (K, d, d); got "
                f"{tuple(self.weights.shape)}, {tuple(self.means.shape)}, {tuple(self.covariances.shape)}"
            )
        if torch.any(self.weights <= 0) or abs(self.weights.sum().item() - 1) > 1e-12:
            raise ValueError("weights: must be positive and sum to 1")
        try:
            torch.linalg.cholesky(self.covariances)
        except RuntimeError:
            raise ValueError("covariances: must be symmetric positive definite") from None
        self.classes = (
            torch.zeros(K, dtype=torch.long) if classes is None else torch.as_tensor(classes)
        )
        if self.classes.shape != (K,):
            raise ValueError(
                f"classes: expected one class per component, got shape {tuple(self.classes.shape)}"
            )
        self.n_classes = int(self.classes.max()) + 1
        self.d = d

    def restrict(self, y):
        """(7): the data distribution of class y."""
        keep = self.classes == y
        if not keep.any():
            raise ValueError(f"y: no component has class {y}")
        w = self.weights[keep]
        return GaussianMixture(w / w.sum(), self.means[keep], self.covariances[keep])

    def class_prior(self):
        return torch.zeros(self.n_classes, dtype=F64).index_add_(0, self.classes, self.weights)

    def sample(self, n, generator):
        """(x_0, class labels), n draws."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, dtype=F64)
        L = torch.linalg.cholesky(self.covariances)
        return self.means[k] + torch.einsum("nij,nj->ni", L[k], z), self.classes[k]

    def _components(self, x, a, s2=None):
        """log(pi_k N(x; m_k, C_k)) and C_k^{-1}(x - m_k), for x of shape (n, d). The noised law
        is x = c x_0 + s eps with c = sqrt(a) and s^2 = 1 - a, or s^2 = s2 when given (any SDE's
        perturbation kernel: c = mean coefficient, s2 = variance)."""
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
        logp, _ = self._components(torch.as_tensor(x, dtype=F64), a, s2)
        return torch.logsumexp(logp, dim=1)

    def responsibilities(self, x, a):
        """(2)."""
        logp, _ = self._components(torch.as_tensor(x, dtype=F64), a)
        return torch.softmax(logp, dim=1)

    def score(self, x, a, s2=None):
        """(3) (general kernel: a = c^2, s2 = s^2, as in log_density)."""
        logp, sol = self._components(torch.as_tensor(x, dtype=F64), a, s2)
        r = torch.softmax(logp, dim=1)
        return -(r[:, :, None] * sol).sum(1)

    def eps(self, x, a):
        """(4)."""
        return -((1 - a) ** 0.5) * self.score(x, a)

    def x0_mean(self, x, a):
        """(5)."""
        return (torch.as_tensor(x, dtype=F64) + (1 - a) * self.score(x, a)) / a**0.5

    def class_posterior(self, x, a):
        """(6): p(y | x_t = x), shape (n, classes)."""
        r = self.responsibilities(x, a)
        return torch.zeros(r.shape[0], self.n_classes, dtype=F64).index_add_(1, self.classes, r)

    def eps_model(self, abar, y=None):
        """eps*(x, t) at timestep index t of the schedule abar (conditional on class y if given)."""
        target = self if y is None else self.restrict(y)
        return lambda x, t: target.eps(x, float(abar[t]))


def isotropic_mixture(means, std, weights=None, classes=None):
    """A mixture with covariance std^2 I for every component."""
    means = torch.as_tensor(means, dtype=F64)
    K, d = means.shape
    weights = torch.full((K,), 1.0 / K, dtype=F64) if weights is None else weights
    return GaussianMixture(
        weights, means, std**2 * torch.eye(d, dtype=F64).expand(K, d, d), classes
    )
