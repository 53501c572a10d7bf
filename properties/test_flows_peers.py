"""Peers for flows: zuko's coupling flows through the FLOW-02 properties, and diffusers'
FlowMatchEulerDiscreteScheduler (timestep shift and Euler step) against impl/flows/matching.py.
Findings about peers, not evidence for the article's claims: each is marked @finding(claim id)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.flows import matching
from properties.catalogue import finding
from properties.evidence import current, refute
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

zuko = pytest.importorskip("zuko", reason="zuko is a test dependency")
diffusers = pytest.importorskip("diffusers", reason="diffusers is a test dependency")
F64 = torch.float64


@finding("FLOW-02")
@settings(max_examples=20)
@given(d=st.integers(2, 5), transforms=st.integers(1, 4), seed=seeds)
def test_zuko_realnvp_is_invertible_with_the_autograd_log_det(d, transforms, seed):
    torch.manual_seed(int(seed) % 2**31)
    transform = (
        zuko.flows.RealNVP(features=d, transforms=transforms, hidden_features=(16, 16))
        .double()()
        .transform
    )
    x = torch.randn(4, d, generator=seed.torch(), dtype=F64)
    z, ladj = transform.call_and_ladj(x)
    back = transform.inv(z)
    assert_close(
        back.detach(),
        x,
        ulps=0,
        abs_floor=1e-10 * (1 + x.abs()),
        what="zuko: inverse(forward(x)) - x",
    )
    jac = torch.stack(
        [
            torch.linalg.slogdet(
                torch.autograd.functional.jacobian(lambda u: transform(u[None])[0], r)
            )[1]
            for r in x
        ]
    )
    assert_close(
        ladj.detach(),
        jac,
        ulps=0,
        abs_floor=1e-9 * (1 + jac.abs()),
        what="zuko: log|det| - slogdet(autograd)",
    )
    current().summary = (
        "zuko's RealNVP passes FLOW-02: invertible, log-det = slogdet of the autograd Jacobian"
    )


@finding("FLOW-07")
@given(shift=floats(1.0, 5.0), n=st.integers(2, 50), seed=seeds)
def test_diffusers_flow_match_euler_step_is_the_sigma_euler_step(shift, n, seed):
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(n)
    sigmas = scheduler.sigmas.to(F64)
    x, v = torch.randn(2, 1, 8, generator=seed.torch(), dtype=F64)
    for i, t in enumerate(scheduler.timesteps):
        got = scheduler.step(v, t, x).prev_sample
        want = matching.euler_sigma(lambda y, s: v, x, [float(sigmas[i]), float(sigmas[i + 1])])
        assert_close(
            got, want, ulps=0, abs_floor=4 * 2.0**-24 * (x.abs() + v.abs() + 1), what=f"step {i}"
        )
        x = got
    current().summary = "diffusers' flow-match Euler step is x + (sigma_next - sigma) v"


@finding("FLOW-08")
def test_finding_diffusers_flow_match_shifts_its_smallest_sigma_twice():
    """diffusers builds the training sigmas as shift(t/T) and takes sigma_min = shift(1/T) from them;
    set_timesteps then spaces sigmas linearly from 1 to that (already shifted) sigma_min and shifts
    them again. The schedule is shift(linspace(1, shift(1/T), n)), not shift(linspace(1, 1/T, n)):
    its smallest sigma is shift(shift(1/T))."""

    def single_shift(case):
        s, n = case
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=s)
        scheduler.set_timesteps(n)
        base = torch.linspace(1.0, 1 / 1000, n, dtype=F64)
        return bool(
            torch.allclose(scheduler.sigmas[:-1].to(F64), matching.shift(base, s), atol=1e-6)
        )

    cases = st.tuples(st.sampled_from([3.0, 2.0, 1.5]), st.integers(2, 50))
    s, n = refute(cases, single_shift, claim="diffusers flow-match shift",
                  describe=lambda c: f"shift = {c[0]}, n = {c[1]}")  # fmt: skip
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(shift=s)
    scheduler.set_timesteps(n)
    twice = matching.shift(torch.linspace(1.0, matching.shift(1 / 1000, s), n, dtype=F64), s)
    assert torch.allclose(scheduler.sigmas[:-1].to(F64), twice, atol=1e-6), (
        "the double shift explains it"
    )
    current().record(smallest_sigma=float(scheduler.sigmas[-2]), shift_once=matching.shift(1 / 1000, s),
                     shift_twice=matching.shift(matching.shift(1 / 1000, s), s))  # fmt: skip
    current().summary = (
        f"finding: diffusers FlowMatchEuler (shift = {s}, n = {n}) ends at sigma = "
        f"{float(scheduler.sigmas[-2]):.4f} = shift(shift(1/T)), not {matching.shift(1 / 1000, s):.4f}"
    )
