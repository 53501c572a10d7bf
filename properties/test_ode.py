"""The fixed-step integrators (impl/ode.py) against scipy's solve_ivp, on the probability-flow
ODE of a 1-D Gaussian-mixture oracle (SDE-05: solving the PF-ODE). The claim's property calls the
PF-ODE drift and the solver through the `sde` family; the other tests are unit tests of impl/ode.py."""

import numpy as np
import torch
from hypothesis import given, settings
from scipy import integrate

from impl import ode
from impl.diffusion import oracle
from impl.diffusion import sde as sdes
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import floats

F64 = torch.float64
DATA = oracle.isotropic_mixture([[-1.5], [1.0]], 0.5)
VP = sdes.VP()


def score(x, t):
    c, s2 = VP.kernel(t)
    return DATA.score(x, c**2, s2)


def drift(x, t):
    return sdes.ode_drift(VP, score, x, t)


@claim("SDE-05.half")
@settings(max_examples=10)
@given(x1=floats(-3, 3))
def test_euler_and_heun_converge_to_scipy_at_their_orders(sde, x1):
    """solve_ivp (DOP853, rtol = atol = 1e-12) from t = 1 to 1e-3 is the reference; Euler's error
    halves and Heun's quarters per doubling of the steps (within 20%). The PF-ODE drift and the
    fixed-step solver are the family's (`sde`)."""

    def pf_drift(x, t):  # not the module's drift (impl's): the family's
        return sde.ode_drift(VP, score, x, t)

    def rhs(t, y):
        return pf_drift(torch.as_tensor(y, dtype=F64)[None], t)[0].numpy()

    ref = integrate.solve_ivp(rhs, (1.0, 1e-3), [x1], method="DOP853", rtol=1e-12, atol=1e-12).y[
        0, -1
    ]
    for method, order in (("euler", 1), ("heun", 2)):
        errs = [abs(float(sde.ode_solve(pf_drift, torch.tensor([[x1]], dtype=F64), 1.0, 1e-3, n, method)) - ref)
                for n in (200, 400, 800)]  # fmt: skip
        if errs[0] < 1e-4:  # the leading error term nearly vanishes from this start: accuracy only
            assert max(errs) < 1e-4, (method, errs)
            continue
        ratio = errs[1] / errs[2]
        assert 2**order * 0.8 < ratio < 2**order * 1.2, (method, errs)
    current().summary = "our Euler and Heun converge to scipy's DOP853 solution at orders 1 and 2"


def test_adaptive_solver_matches_scipy_directly():
    """It is scipy's RK45 with rtol and atol = rtol / 100: the same steps, bit for bit, on a
    solution that decays to 1e-5 (where atol decides the steps); the drift sees x's dtype."""
    from scipy.integrate import solve_ivp

    x = torch.tensor([[0.5], [-1.0]], dtype=F64)
    got, nfev = ode.ode_solve_adaptive(drift, x, 1.0, 1e-3, rtol=1e-9)
    fine = ode.ode_solve(drift, x, 1.0, 1e-3, 4000, "heun")
    assert nfev > 10 and torch.allclose(got, fine, atol=1e-6)
    y0 = torch.tensor([[1.0], [1e-3]], dtype=F64)
    got, nfev = ode.ode_solve_adaptive(lambda x, t: -10 * x, y0, 0.0, 1.0, rtol=1e-3)
    # atol = 1e-5, not scipy's default 1e-6
    sol = solve_ivp(lambda t, y: -10 * y, (0.0, 1.0), y0.reshape(-1).numpy(), method="RK45",
                    rtol=1e-3, atol=1e-5)  # fmt: skip
    assert torch.equal(got.reshape(-1), torch.as_tensor(sol.y[:, -1])) and nfev == sol.nfev
    seen = set()
    ode.ode_solve_adaptive(lambda x, t: seen.add(x.dtype) or -x, y0.float(), 0.0, 1.0)
    assert seen == {torch.float32}


def test_grid_and_divergence():
    assert ode.grid(1.0, 0.0, 4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    A = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=F64)
    div = ode.divergence_exact(lambda x, t: x @ A.T, torch.randn(3, 2, dtype=F64), 0.0)
    assert torch.allclose(div, torch.full((3,), -3.0, dtype=F64))
    assert np.isclose(
        float(ode.ode_solve(lambda x, t: -x, torch.ones(1, 1, dtype=F64), 0.0, 1.0, 1000)),
        np.exp(-1),
        atol=1e-6,
    )


def test_bad_input_names_the_argument():
    import pytest

    for call, argument in [
        (lambda: ode.grid(0.5, 0.5, 3), "t_end"),
        (lambda: ode.grid(-0.5, 0.5, 3), "t_start"),
        (lambda: ode.grid(0.0, 1.5, 3), "t_end"),
        (lambda: ode.grid(0.0, 1.0, 0), "n"),
        (lambda: ode.ode_solve(lambda x, t: x, torch.zeros(1, 1), 0.0, 1.0, 2, "rk45"), "method"),
        (
            lambda: ode.ode_solve_adaptive(lambda x, t: x, torch.zeros(1, 1), 0.0, 1.0, rtol=0.0),
            "rtol",
        ),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: "):
            call()


def test_float64_stays_float64_and_hutchinson_is_v_J_v():
    """In float64 the divergence and its integral are float64 to the last bits: for a linear
    drift x A^T, div = tr A at every x, its integral over [t0, t1] is tr A (t1 - t0), and the
    Hutchinson estimate with a probe v is v^T A v exactly (Gaussian v: a division by v or a
    sum over the batch would show). RK45 keeps the input dtype, meets rtol = 1e-6 by default
    (atol = rtol / 100: small states too), and rejects rtol outside (0, 1)."""
    import pytest

    A = torch.tensor([[0.1, 0.7], [-0.3, 0.2]], dtype=F64)
    x = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    trace = 0.1 + 0.2
    div = ode.divergence_exact(lambda x, t: x @ A.T, x, 0.0)
    assert div.dtype == F64 and torch.all(div == torch.full((4,), trace, dtype=F64))
    _, integral = ode.solve_with_divergence(lambda x, t: x @ A.T, x, 0.0, 0.3, 3)
    assert integral.dtype == F64
    assert torch.allclose(integral, torch.full((4,), trace * 0.3, dtype=F64), rtol=1e-14, atol=0)
    v = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    hutch = ode.divergence_hutchinson(lambda x, t: x @ A.T, x.clone(), 0.0, v)
    assert torch.allclose(hutch, ((v @ A) * v).sum(-1), rtol=1e-14, atol=1e-15)
    small = torch.tensor([[1e-3], [2.0]], dtype=F64)
    got, _ = ode.ode_solve_adaptive(lambda x, t: -x, small, 0.0, 1.0)
    exact = small * np.exp(-1.0)
    assert torch.all((got - exact).abs() <= 20 * (1e-6 * exact.abs() + 1e-8))
    got32, _ = ode.ode_solve_adaptive(lambda x, t: -x, small.float(), 0.0, 1.0)
    assert got32.dtype == torch.float32
    for bad in (1.0, 1.5):
        with pytest.raises(ValueError, match=r"^rtol: must lie in \(0, 1\)"):
            ode.ode_solve_adaptive(lambda x, t: -x, small, 0.0, 1.0, rtol=bad)
    with pytest.raises(ValueError, match="^n: "):
        ode.grid(0.0, 1.0, True)


def test_adaptive_solver_refuses_a_nan_end_instead_of_looping():
    """Issue 16: ode_solve_adaptive(f, x, 0.0, nan) never returned (solve_ivp loops on a nan
    bound); a non-finite or out-of-range end is now refused at once, naming t_end (or t_start)."""
    import time

    import pytest

    x = torch.ones(2, 1, dtype=F64)
    start = time.monotonic()
    for bad in (float("nan"), float("inf"), -float("inf"), 2.0):
        with pytest.raises(ValueError, match="^t_end: "):
            ode.ode_solve_adaptive(lambda x, t: -x, x, 0.0, bad)
        with pytest.raises(ValueError, match="^t_start: "):
            ode.ode_solve_adaptive(lambda x, t: -x, x, bad, 0.5)
    assert time.monotonic() - start < 5


def test_errors_name_t_start_and_t_end_not_t0():
    """Issue 16: ode.grid said "t0:" about t_start and t_end; each now names its own argument,
    and numpy integer step counts are accepted like Python ones."""
    import pytest

    for call, argument in [
        (lambda: ode.grid(float("nan"), 0.5, 3), "t_start"),
        (lambda: ode.grid(0.5, float("nan"), 3), "t_end"),
        (lambda: ode.grid(0.5, -0.1, 3), "t_end"),
        (lambda: ode.grid(1.5, 0.5, 3), "t_start"),
        (lambda: ode.grid(0.2, 0.2, 3), "t_end"),
        (lambda: ode.ode_solve(lambda x, t: -x, torch.ones(1, 1), 0.3, 0.3, 3), "t_end"),
    ]:
        with pytest.raises(ValueError, match=rf"^{argument}: ") as info:
            call()
        assert "t0" not in str(info.value)
    assert ode.grid(0.0, 1.0, np.int64(2)) == [0.0, 0.5, 1.0]
