"""Schedules, sub-sequences and prediction types (impl/diffusion/schedules.py); bad input."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.diffusion import ddim, ddpm, schedules
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64


def test_named_schedules():
    lin = schedules.linear_betas()
    assert lin[0].item() == 1e-4 and abs(lin[-1].item() - 0.02) < 1e-17 and lin.dtype == F64
    sl = schedules.scaled_linear_betas()
    assert abs(sl[0].item() - 0.00085) < 1e-15 and abs(sl[-1].item() - 0.012) < 1e-15
    assert torch.all(sl.sqrt()[1:] - sl.sqrt()[:-1] > 0)
    cos = schedules.cosine_betas()
    assert torch.all((cos > 0) & (cos <= 0.999))
    assert len(lin) == len(sl) == 1000  # T = 1000 by default
    zero = schedules.alphas_cumprod(schedules.rescale_zero_terminal_snr(lin))
    assert zero[-1].item() == 0 and abs(zero[0].item() - 0.9999) < 1e-15


@given(T=st.integers(2, 1000), end=floats(1e-3, 0.05))
def test_zero_terminal_snr_is_the_affine_map_of_sqrt_abar(T, end):
    """(4): sqrt(abar') = (sqrt(abar) - sqrt(abar_T)) sqrt(abar_0) / (sqrt(abar_0) - sqrt(abar_T)),
    and the returned T betas recompose it: their cumulative product of (1 - beta) is abar'."""
    betas = schedules.linear_betas(T, 1e-4, end)
    s = schedules.alphas_cumprod(betas).sqrt()
    want = ((s - s[-1]) * s[0] / (s[0] - s[-1])) ** 2
    got = schedules.alphas_cumprod(schedules.rescale_zero_terminal_snr(betas))
    assert got.shape == (T,) and got[-1].item() == 0
    # each ratio abar'_t / abar'_{t-1} and its product back: <= 4 u relative per step
    assert_close(got, want, ulps=8 * T, scale=want, what="abar of the rescaled betas - abar'")


@given(a=floats(1e-4, 0.9999), seed=seeds)
def test_prediction_type_conversions_round_trip(a, seed):
    x0, eps = torch.randn(2, 16, generator=seed.torch(), dtype=F64)
    x_t = ddpm.q_sample(x0, a, eps)
    v = schedules.to_v(x0, eps, a)
    # each conversion divides by sqrt(a) or sqrt(1 - a) at most once: 16 u / min(sqrt(a), sqrt(1 - a))
    scale = (x0.abs() + eps.abs() + 1) / min(a, 1 - a) ** 0.5
    assert_close(schedules.eps_to_x0(x_t, eps, a), x0, ulps=16, scale=scale, what="x0 from eps")
    assert_close(schedules.x0_to_eps(x_t, x0, a), eps, ulps=16, scale=scale, what="eps from x0")
    assert_close(schedules.v_to_eps(x_t, v, a), eps, ulps=16, scale=scale, what="eps from v")
    assert_close(schedules.v_to_x0(x_t, v, a), x0, ulps=16, scale=scale, what="x0 from v")


ABAR = schedules.alphas_cumprod(schedules.linear_betas())


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: ddim.sigma_paper(-0.1, 0.5, 0.6), "eta"),
        (lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [10, 10, 0], 0.0), "timesteps"),
        (lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [0, 10], 0.0), "timesteps"),
        (lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [1000], 0.0), "timesteps"),
        (lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [5.0], 0.0), "timesteps"),
        (
            lambda: ddim.sample(
                lambda x, t: x, torch.zeros(1), torch.tensor([0.9, 0.95]), [1, 0], 0.0
            ),
            "abar",
        ),
        (
            lambda: ddim.sample(
                lambda x, t: x, torch.zeros(1), torch.tensor([1.2, 0.5]), [1, 0], 0.0
            ),
            "abar",
        ),
        (
            lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [10, 0], 0.0, sigma="other"),
            "sigma",
        ),
        (lambda: ddim.step(torch.zeros(1), torch.zeros(1), 0.5, 0.6, 0.9, torch.zeros(1)), "sigma"),
        # eta = 3 on 999 -> 0: sigma^2 = 9 (1 - b)(b - a)/(b (1 - a)) > 1 - b (no silent clipping)
        (lambda: ddim.sample(lambda x, t: x, torch.zeros(1), ABAR, [999, 0], 3.0), "eta"),
        (lambda: ddim.plan(ABAR, [999, 500], 10.0, sigma="article"), "eta"),
        (
            lambda: ddpm.ancestral_step(
                torch.zeros(1), torch.zeros(1), 0.5, 0.6, torch.zeros(1), "small"
            ),
            "variance",
        ),
        (lambda: schedules.alphas_cumprod(torch.tensor([0.1, 0.0])), "betas"),
        (lambda: schedules.timesteps(10, 20, "leading"), "n"),
        (lambda: schedules.timesteps(10, 5, "random"), "spacing"),
        (lambda: schedules.linear_betas(0), "T"),
        (
            lambda: ddim.step(torch.zeros(2), torch.zeros(3), 0.5, 0.6, 0.1, torch.zeros(2)),
            "eps_hat",
        ),
        (lambda: ddim.step(torch.zeros(2), torch.zeros(2), 0.5, 0.6, 0.1, torch.zeros(1)), "z"),
        (
            lambda: ddpm.ancestral_step(torch.zeros(2), torch.zeros(2), 0.5, 0.6, torch.zeros(3)),
            "z",
        ),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call()


def test_float16_schedule_that_rounds_abar_to_one_is_rejected():
    """A float16 linear schedule: 1 - 1e-4 rounds to 1, and abar stops decreasing."""
    abar16 = schedules.alphas_cumprod(schedules.linear_betas()).to(torch.float16)
    with pytest.raises(ValueError, match="^abar: .*strictly decreasing"):
        schedules.check_abar(abar16)


def test_cosine_schedule_is_the_ratio_of_f_by_default():
    """(3) with the defaults T = 1000, s = 0.008: abar_t = f(t) / f(0), f(t) = cos^2((t/T + s) /
    (1 + s) pi/2), wherever beta_t is below its cap 0.999; float64 betas."""
    betas = schedules.cosine_betas()
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    f = [math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(1001)]
    abar = schedules.alphas_cumprod(betas)
    uncapped = int((betas < 0.999).sum())
    expected = torch.tensor([f[t] / f[0] for t in range(1, uncapped + 1)], dtype=torch.float64)
    assert torch.allclose(abar[:uncapped], expected, rtol=1e-12, atol=0)
    assert uncapped > 990


def test_abar_and_timestep_checks_accept_exactly_the_valid_sequences():
    """abar: 1-D, non-empty, in [0, 1] with abar_0 > 0 (a zero terminal abar_T is allowed),
    strictly decreasing everywhere (not only against abar_0); timesteps: the same for a 1-D
    integer sequence. One-element sequences are valid."""
    for good in ([0.5], [0.9, 0.5, 0.0]):
        assert schedules.check_abar(torch.tensor(good, dtype=torch.float64)).tolist() == good
    for bad in ([], [[0.9, 0.5]], [0.0], [0.9, 0.5, 0.7], [0.9, -0.1]):
        with pytest.raises(ValueError, match="^abar: "):
            schedules.check_abar(torch.tensor(bad, dtype=torch.float64))
    assert schedules.check_timesteps([7], 10).tolist() == [7]
    for bad in ([[5, 3]], [9, 5, 7], []):
        with pytest.raises(ValueError, match="^timesteps: "):
            schedules.check_timesteps(torch.tensor(bad, dtype=torch.long), 10)


def test_oracle_class_conditional_eps_and_a_deterministic_step_ignores_z():
    """eps_model(abar, y) is the eps* of class y's mixture, not the whole data's; a DDIM step
    with sigma = 0 does not read z (any shape)."""
    from impl.diffusion import oracle

    data = oracle.isotropic_mixture([[-1.0], [2.0]], 0.5, classes=[0, 1])
    x = torch.tensor([[0.3], [-0.7]], dtype=torch.float64)
    cond = data.eps_model(ABAR, 1)(x, 500)
    assert torch.equal(cond, data.restrict(1).eps(x, float(ABAR[500])))
    assert not torch.allclose(cond, data.eps_model(ABAR)(x, 500))
    want = ddim.step(x, 0.1 * x, 0.5, 0.6, 0.0, None)
    assert torch.equal(ddim.step(x, 0.1 * x, 0.5, 0.6, 0.0, torch.zeros(5)), want)


def test_sigma_may_exceed_its_bound_only_by_rounding():
    """A DDIM step needs 0 <= sigma^2 <= 1 - b; sigma^2 may exceed 1 - b by 8 ulps of rounding
    (a factor 1 + 2^-50), not more; NaN and negative sigma are errors."""
    import math

    x, eps, a, b = torch.ones(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0.3, 0.6
    edge = math.sqrt(1 - b)
    while edge**2 <= (1 - b) * (1 + 2**-51):  # just inside the slack, beyond a 2^-51 one
        edge = math.nextafter(edge, 2.0)
    assert edge**2 <= (1 - b) * (1 + 2**-50)
    ddim.step(x, eps, a, b, edge, torch.zeros(2, dtype=torch.float64))
    outside = edge
    while outside**2 <= (1 - b) * (1 + 2**-50):
        outside = math.nextafter(outside, 2.0)
    for bad in (outside, 1.01 * math.sqrt(1 - b), math.nan, -0.1):
        with pytest.raises(ValueError, match="^sigma: "):
            ddim.step(x, eps, a, b, bad, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="^T: "):
        schedules.timesteps(2.5, 1, "leading")


def test_closed_forms_refuse_abar_outside_the_unit_interval():
    """Issue 16, part 2: abar out of [0, 1] was never checked in the closed forms (complex or
    infinite results); each one now names `a`. Numpy integer counts are accepted, floats and
    bools are not."""
    import numpy as np

    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    for call in (
        lambda: schedules.eps_to_x0(x, x, 1.2),
        lambda: schedules.eps_to_x0(x, x, 0.0),  # divides by sqrt(a)
        lambda: schedules.x0_to_eps(x, x, 1.0),  # divides by sqrt(1 - a)
        lambda: schedules.to_v(x, x, -0.5),
        lambda: schedules.v_to_eps(x, x, float("nan")),
        lambda: schedules.v_to_x0(x, x, [0.2, 0.3]),
        lambda: schedules.v_to_x0(x, x, torch.full((5, 1), 0.5)),  # does not broadcast to x_t
    ):
        with pytest.raises((ValueError, TypeError), match=r"^a: "):
            call()
    assert schedules.linear_betas(np.int64(10)).shape == (10,)
    assert schedules.timesteps(np.int32(10), np.int64(4), "leading").tolist() == [6, 4, 2, 0]
    for T in (10.0, True, "10"):
        with pytest.raises(ValueError, match=r"^T: "):
            schedules.linear_betas(T)
    with pytest.raises(ValueError, match=r"^betas: "):
        schedules.alphas_cumprod([0.1, 1.0, 0.2])  # beta = 1 only at the last step
    with pytest.raises(ValueError, match=r"^betas: "):
        schedules.rescale_zero_terminal_snr([0.1])  # abar_0 = abar_T: nothing to shift
    with pytest.raises(ValueError, match=r"^timesteps: "):
        schedules.check_timesteps([3.0, 1.0], 10)
