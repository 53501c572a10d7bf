"""The oracle Gaussian mixtures (impl/diffusion/oracle.py): Tweedie's posterior mean (5) and the
class prior, in closed form for a single Gaussian and for labelled components."""

import numpy as np
import torch

from impl.diffusion import oracle

F64 = torch.float64


def test_tweedie_mean_of_one_gaussian_in_closed_form():
    """x_t = sqrt(a) x_0 + sqrt(1 - a) eps with x_0 ~ N(m, s^2 I): E[x_0 | x_t = x] =
    m + s^2 sqrt(a) / (a s^2 + 1 - a) (x - sqrt(a) m)."""
    m, s2, a = torch.tensor([0.7, -1.2], dtype=F64), 0.64, 0.3
    data = oracle.GaussianMixture([1.0], m[None], s2 * torch.eye(2, dtype=F64)[None])
    x = torch.tensor([[0.1, 0.4], [-2.0, 1.5]], dtype=F64)
    expected = m + s2 * a**0.5 / (a * s2 + 1 - a) * (x - a**0.5 * m)
    assert torch.allclose(data.x0_mean(x, a), expected, rtol=1e-13, atol=1e-15)


def test_class_prior_sums_the_weights_of_each_class():
    eye = torch.eye(1, dtype=F64)[None].repeat(3, 1, 1)
    data = oracle.GaussianMixture([0.2, 0.5, 0.3], [[0.0], [1.0], [2.0]], eye, classes=[0, 1, 0])
    assert torch.allclose(data.class_prior(), torch.tensor([0.5, 0.5], dtype=F64), rtol=1e-15)


def test_log_density_under_any_kernel_and_list_input():
    """x = c x_0 + s eps with x_0 ~ sum_k pi_k N(m_k, C_k): log p = logsumexp_k log(pi_k
    N(x; c m_k, c^2 C_k + s^2 I)), here with a VE-like kernel (c = 1, s^2 = 4, not 1 - c^2),
    against scipy. Python lists give the float64 result (not a float32 tensor's)."""
    from scipy import stats as sps

    means = [[0.1, -0.3], [1.7, 0.9]]
    covs = [[[0.5, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.7]]]
    data = oracle.GaussianMixture([0.4, 0.6], means, covs)
    x = [[0.3, 0.2], [-1.1, 2.4], [1.9, 0.7]]
    a, s2 = 0.81, 4.0
    dens = [  # numpy float64
        w * sps.multivariate_normal(a**0.5 * np.array(m), a * np.array(c) + s2 * np.eye(2)).pdf(x)
        for w, m, c in zip([0.4, 0.6], means, covs, strict=True)
    ]
    want = torch.tensor(sum(dens), dtype=F64).log()
    # float64 on both sides (Cholesky here, scipy's eigh there): a 2 x 2 solve and a log of a
    # sum of two densities, each within ~10 u relative of |log p| ~ 4: 1e-13 relative
    assert torch.allclose(data.log_density(x, a, s2), want, rtol=1e-13, atol=0)
    xt = torch.tensor(x, dtype=F64)
    assert torch.equal(data.log_density(x, a, s2), data.log_density(xt, a, s2))
    assert torch.equal(data.responsibilities(x, a), data.responsibilities(xt, a))
    assert torch.equal(data.x0_mean(x, a), data.x0_mean(xt, a))
