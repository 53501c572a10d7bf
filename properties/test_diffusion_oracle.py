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


def _mixture_args(**change):
    args = dict(
        weights=[0.4, 0.6],
        means=[[0.1, -0.3], [1.7, 0.9]],
        covariances=[[[0.5, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.7]]],
    )
    return {**args, **change}


def test_a_non_symmetric_covariance_is_refused():
    """Issue 16: GaussianMixture accepted a non-symmetric covariance and silently used its lower
    triangle (Cholesky reads only that); it is now refused, naming covariances. Rounding-level
    asymmetry (Q D Q^T in float64) is still accepted."""
    import pytest

    asymmetric = [[[0.5, 0.3], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.7]]]
    with pytest.raises(ValueError, match=r"^covariances\[0\]: not symmetric"):
        oracle.GaussianMixture(**_mixture_args(covariances=asymmetric))
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=F64))[0]
    rounded = q @ torch.diag(torch.tensor([0.3, 0.6, 1.2], dtype=F64)) @ q.T
    oracle.GaussianMixture([1.0], torch.zeros(1, 3, dtype=F64), rounded[None])


def test_bad_mixture_parameters_name_the_argument():
    """Issue 16: non-positive-definite covariances, negative weights or weights not summing to 1,
    and means, weights and covariances of mismatched shapes, each refused naming its argument."""
    import pytest

    cov = [[0.5, 0.1], [0.1, 0.3]]
    for change, error, argument in [
        (dict(covariances=[cov, [[1.0, 0.0], [0.0, -0.1]]]), ValueError, r"covariances\[1\]"),
        (dict(covariances=[cov, [[1.0, 1.0], [1.0, 1.0]]]), ValueError, r"covariances\[1\]"),
        (dict(covariances=[cov, [[0.0, 0.0], [0.0, 0.0]]]), ValueError, r"covariances\[1\]"),
        (dict(covariances=[cov]), ValueError, "covariances"),
        (dict(covariances=[[0.5, 0.1], [0.1, 0.3]]), ValueError, "covariances"),
        (dict(weights=[-0.4, 1.4]), ValueError, "weights"),
        (dict(weights=[0.4, 0.7]), ValueError, "weights"),
        (dict(weights=[0.2, 0.3, 0.5]), ValueError, "weights"),
        (dict(weights=[float("nan"), 0.6]), ValueError, "weights"),
        (dict(means=[[0.1, -0.3, 0.0], [1.7, 0.9, 0.0]]), ValueError, "covariances"),
        (dict(means=[0.1, -0.3]), ValueError, "means"),
        (dict(means="ab"), TypeError, "means"),
        (dict(classes=[0, -1]), ValueError, "classes"),
        (dict(classes=[0.0, 1.0]), TypeError, "classes"),
        (dict(classes=[0, 1, 1]), ValueError, "classes"),
    ]:
        with pytest.raises(error, match=rf"^{argument}: "):
            oracle.GaussianMixture(**_mixture_args(**change))
    with pytest.raises(ValueError, match="^std: "):
        oracle.isotropic_mixture([[0.0]], 0.0)


def test_bad_method_arguments_name_the_argument():
    """The methods that take data (log_density, score, responsibilities, eps, x0_mean,
    class_posterior, sample, restrict, eps_model) refuse wrong points, noise levels, counts and
    labels by name; an empty batch of points is allowed (a class with no sample)."""
    import pytest

    data = oracle.GaussianMixture(**_mixture_args(classes=[0, 1]))
    x = torch.zeros(3, 2, dtype=F64)
    for call, error, argument in [
        (lambda: data.score(x, 1.2), ValueError, "a"),
        (lambda: data.score(x, float("nan")), ValueError, "a"),
        (lambda: data.log_density(x, 0.5, -1.0), ValueError, "s2"),
        (lambda: data.log_density(x, 0.0, 0.0), ValueError, "s2"),
        (lambda: data.log_density(torch.zeros(3, 3), 0.5), ValueError, "x"),
        (lambda: data.responsibilities(torch.zeros(2), 0.5), ValueError, "x"),
        (lambda: data.eps(torch.full((1, 2), float("inf")), 0.5), ValueError, "x"),
        (lambda: data.x0_mean(x, 0.0), ValueError, "a"),
        (lambda: data.class_posterior("x", 0.5), TypeError, "x"),
        (lambda: data.sample(0, None), ValueError, "n"),
        (lambda: data.sample(2, 3), TypeError, "generator"),
        (lambda: data.restrict(2), ValueError, "y"),
        (lambda: data.restrict(0.5), TypeError, "y"),
        (lambda: data.eps_model([0.5, 1.5]), ValueError, "abar"),
    ]:
        with pytest.raises(error, match=rf"^{argument}: "):
            call()
    assert data.score(torch.zeros(0, 2, dtype=F64), 0.5).shape == (0, 2)
    assert data.sample(np.int64(3), None)[0].shape == (3, 2)
