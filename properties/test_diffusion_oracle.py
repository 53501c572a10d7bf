"""The oracle Gaussian mixtures (impl/diffusion/oracle.py): Tweedie's posterior mean (5) and the
class prior, in closed form for a single Gaussian and for labelled components."""

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
