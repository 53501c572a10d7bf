"""Peer findings: diffusers' DDIMScheduler and DDPMScheduler against the DDIM/DDPM mathematics
(marked @finding: evidence about diffusers, not about the article's claims), over their
configuration space (beta schedule, timestep spacing, prediction type, set_alpha_to_one,
steps_offset, variance type, zero terminal SNR, eta, number of steps), with clipping and
thresholding off. Both sides get the same model output and the same noise.

diffusers keeps alphas_cumprod in float32; the reference is evaluated in float64 on those same
float32 values, so the comparison measures diffusers' arithmetic: float32 coefficients carry
about 8 u32 relative error each (u32 = 2^-24), amplified by 1/sqrt(abar_t) in x0_hat and by
1/(1 - abar_t/abar_tau) in the recomputed beta (large on consecutive steps).
"""

import math
from fractions import Fraction

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.diffusion import ddim, ddpm, schedules
from properties.catalogue import finding
from properties.evidence import current, refute
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

diffusers = __import__("pytest").importorskip("diffusers", reason="diffusers is a test dependency")
U32 = 2.0**-24
SPACINGS = ["leading", "trailing", "linspace", "ddim-linear", "ddim-quadratic"]
F64 = torch.float64


def configs(spacings, zero_snr=True):
    return st.fixed_dictionaries({
        "beta_schedule": st.sampled_from(["linear", "scaled_linear", "squaredcos_cap_v2"]),
        "timestep_spacing": st.sampled_from(spacings),
        "prediction_type": st.sampled_from(["epsilon", "sample", "v_prediction"]),
        "steps_offset": st.sampled_from([0, 1]),
        "rescale_betas_zero_snr": st.booleans() if zero_snr else st.just(False),
    })  # fmt: skip


def model_input(prediction_type, x_t, eps, a):
    """What a model of this prediction type outputs for (x_t, eps) at abar_t = a."""
    x0 = schedules.eps_to_x0(x_t, eps, a)
    return {"epsilon": eps, "sample": x0, "v_prediction": schedules.to_v(x0, eps, a)}[
        prediction_type
    ]


def budget(x_t, eps, z, a, b, sigma):
    big = x_t.abs() + eps.abs() + z.abs() + 1
    beta = 1 - a / b if b > a else 1.0
    return (
        64 * U32 * big * (1 / max(a, 1e-12) ** 0.5 + 1) * (1 + 1 / max(1 - a, 1e-12))
        + 16 * U32 * sigma * z.abs() / beta
    )


def pairs_of(scheduler, final):
    ts = scheduler.timesteps.tolist()
    return [(t, ts[i + 1] if i + 1 < len(ts) else None) for i, t in enumerate(ts)], final


DIVISORS = [n for n in range(1, 101) if 1000 % n == 0]


@finding("DDIM-04")
@settings(max_examples=60)
@given(config=configs(["leading", "trailing"]), alpha_to_one=st.booleans(), data=st.data(),
       eta=floats(0.0, 1.0), seed=seeds)  # fmt: skip
def test_diffusers_ddim_step_is_the_ddim_update(config, alpha_to_one, data, eta, seed):
    """Where diffusers' stride T // n is the spacing it visits (leading; trailing with n | T; see
    the finding below for the rest), its step is the DDIM update to the next timestep:
    sqrt(b) x_0 + sqrt(1 - b - sigma^2) eps + sigma z, given the true x_0 and eps."""
    n = data.draw(
        st.sampled_from(DIVISORS)
        if config["timestep_spacing"] == "trailing"
        else st.integers(1, 100)
    )
    if config["rescale_betas_zero_snr"] and config["prediction_type"] != "v_prediction":
        config["rescale_betas_zero_snr"] = False  # eps/x0 prediction is undefined at abar = 0
    scheduler = diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=alpha_to_one, **config)
    scheduler.set_timesteps(n)
    abar = scheduler.alphas_cumprod.to(F64)
    final = 1.0 if alpha_to_one else abar[0].item()
    gen = seed.torch()
    for t, nxt in pairs_of(scheduler, final)[0]:
        a, b = abar[t].item(), (abar[nxt].item() if nxt is not None else final)
        x0, eps, z = torch.randn(3, 16, generator=gen, dtype=F64)
        x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
        out = {"epsilon": eps, "sample": x0, "v_prediction": schedules.to_v(x0, eps, a)}[
            config["prediction_type"]
        ]
        got = scheduler.step(out, t, x_t, eta=eta, variance_noise=z).prev_sample
        sigma = min(ddim.sigma_paper(eta, a, b), (1 - b) ** 0.5) if b < 1 else 0.0
        want = b**0.5 * x0 + max(1 - b - sigma**2, 0.0) ** 0.5 * eps + sigma * z
        assert_close(got, want, ulps=0, abs_floor=budget(x_t, eps, z, a, b, sigma),
                     what=f"diffusers DDIM step at t = {t} -> {nxt}")  # fmt: skip
    current().summary = (
        "diffusers DDIMScheduler (leading; trailing with n | T) steps to the next timestep"
    )


@finding("DDIM-05")
@settings(max_examples=60)
@given(config=configs(["leading", "trailing", "linspace"], zero_snr=False),
       variance=st.sampled_from(["fixed_small", "fixed_large"]), n=st.integers(1, 100), seed=seeds)  # fmt: skip
def test_diffusers_ddpm_step_is_the_posterior_step(config, variance, n, seed):
    scheduler = diffusers.DDPMScheduler(clip_sample=False, variance_type=variance, **config)
    scheduler.set_timesteps(n)
    abar = scheduler.alphas_cumprod.to(F64)
    gen = seed.torch()
    for t, nxt in pairs_of(scheduler, 1.0)[0]:
        if variance == "fixed_large" and nxt is None and t > 0:
            continue  # the last step of a sub-sequence ending above 0: see the finding below
        a, b = abar[t].item(), (abar[nxt].item() if nxt is not None else 1.0)
        x_t, eps = torch.randn(
            2, 1, 16, generator=gen, dtype=F64
        )  # diffusers wants (batch, channels)
        noise_seed = int(torch.randint(0, 2**31, (1,), generator=gen))
        z = torch.randn(1, 16, generator=torch.Generator().manual_seed(noise_seed), dtype=F64)
        out = model_input(config["prediction_type"], x_t, eps, a)
        got = scheduler.step(
            out, t, x_t, generator=torch.Generator().manual_seed(noise_seed)
        ).prev_sample
        kind = "posterior" if variance == "fixed_small" else "large"
        want = ddpm.ancestral_step(x_t, eps, a, b, z if t > 0 else 0 * z, kind)
        sigma = (1 - a / b) ** 0.5 if b < 1 else 0.0
        assert_close(got, want, ulps=0, abs_floor=budget(x_t, eps, z, a, b, sigma),
                     what=f"diffusers DDPM step ({variance}) at t = {t} -> {nxt}")  # fmt: skip
    current().summary = (
        "diffusers DDPMScheduler steps to the next timestep with the posterior (or beta) variance"
    )


@finding("DDIM-08.linear")
def test_finding_diffusers_ddim_steps_to_timesteps_it_never_visits():
    """diffusers' DDIMScheduler steps from t to t - T // n whatever the spacing; with
    timestep_spacing = "linspace", or "trailing" when n does not divide T, the next timestep it
    visits is another one, so the sample's noise level and the timestep the model is told
    disagree from then on."""

    def consistent(case):
        spacing, n = case
        s = diffusers.DDIMScheduler(timestep_spacing=spacing)
        s.set_timesteps(n)
        ts = s.timesteps.tolist()
        return all(t - 1000 // n == nxt for t, nxt in zip(ts, ts[1:], strict=False))

    cases = st.tuples(st.sampled_from(["trailing", "linspace"]), st.integers(2, 100))
    spacing, n = refute(cases, consistent, claim="diffusers DDIM spacing",
                        describe=lambda c: f"timestep_spacing = {c[0]!r}, n = {c[1]}")  # fmt: skip
    s = diffusers.DDIMScheduler(timestep_spacing=spacing)
    s.set_timesteps(n)
    ts = s.timesteps.tolist()
    bad = next((t, nxt) for t, nxt in zip(ts, ts[1:], strict=False) if t - 1000 // n != nxt)
    current().record(
        timesteps=ts,
        first_mismatch=f"step from {bad[0]} to {bad[0] - 1000 // n}, next visit {bad[1]}",
    )
    current().summary = (
        f"finding: diffusers DDIM, {spacing}, n = {n}: steps from {bad[0]} to {bad[0] - 1000 // n} but then "
        f"evaluates the model at {bad[1]}"
    )


@finding("DDIM-05")
def test_finding_diffusers_ddpm_fixed_large_adds_noise_to_the_output():
    """DDPMScheduler with variance_type = "fixed_large" adds noise of variance 1 - abar_t/1 on the
    final step whenever the last timestep t is above 0 (trailing spacing): the returned sample is
    x0_hat plus almost unit noise. The posterior ("fixed_small") variance is 0 there."""

    def clean_output(case):
        spacing, n = case
        s = diffusers.DDPMScheduler(
            clip_sample=False, variance_type="fixed_large", timestep_spacing=spacing
        )
        s.set_timesteps(n)
        t = int(s.timesteps[-1])
        x_t = torch.randn(1, 8, generator=torch.Generator().manual_seed(0), dtype=F64)
        out = s.step(
            torch.zeros_like(x_t), t, x_t, generator=torch.Generator().manual_seed(1)
        ).prev_sample
        x0_hat = x_t / s.alphas_cumprod[t].to(F64) ** 0.5
        return bool(torch.allclose(out, x0_hat, atol=1e-4))

    cases = st.tuples(st.sampled_from(["trailing", "leading", "linspace"]), st.integers(1, 100))
    spacing, n = refute(cases, clean_output, claim="diffusers DDPM fixed_large final step",
                        describe=lambda c: f"timestep_spacing = {c[0]!r}, n = {c[1]}")  # fmt: skip
    s = diffusers.DDPMScheduler(variance_type="fixed_large", timestep_spacing=spacing)
    s.set_timesteps(n)
    t = int(s.timesteps[-1])
    current().record(last_timestep=t, added_noise_std=float((1 - s.alphas_cumprod[t]) ** 0.5))
    current().summary = (
        f"finding: diffusers DDPM fixed_large, {spacing}, n = {n}: the final step (t = {t} -> data) adds noise "
        f"of std {float((1 - s.alphas_cumprod[t]) ** 0.5):.3f} to the output"
    )


def _spacing_values(T, n, spacing):
    """(exact values before rounding, in increasing order; the DDIM paper code's float values of
    the same, or None where diffusers' DDIMScheduler is the peer)."""
    i = np.arange(n)
    if spacing == "leading":
        return [Fraction(k * (T // n)) for k in range(n)], None  # integers: no boundary
    if spacing == "trailing":
        return [Fraction(T * (k + 1), n) for k in range(n)], None  # rounded, then minus 1
    if spacing == "linspace":
        return [Fraction(k * (T - 1), max(n - 1, 1)) for k in range(n)], None
    if spacing == "ddim-linear":
        return [Fraction(k * T, n) for k in range(n)], np.floor(i * (T / n))
    c = 0.8 * T / max(n - 1, 1) ** 2
    return [Fraction(4 * T * k * k, 5 * max(n - 1, 1) ** 2) for k in range(n)], np.floor(i**2 * c)


@finding("DDIM-08.linear", "DDIM-08.quadratic")
@given(T=st.integers(2, 1000), data=st.data(), spacing=st.sampled_from(SPACINGS))
def test_timesteps_are_the_exact_spacings_and_floats_differ_only_at_ties(T, data, spacing):
    """Our sub-sequences are the exact values rounded (half to even) or floored, and equal
    diffusers' DDIMScheduler (leading, trailing, linspace; steps_offset 0) and the DDIM paper's
    float formulas (linear floor(i T / n), quadratic floor(0.8 T i^2 / (n - 1)^2)) except where
    the exact value sits on the rounding boundary (a half for round, a whole number for floor),
    where their float rounding decides."""
    n = data.draw(st.integers(1, min(T, 100)), label="n")
    exact, floats_ = _spacing_values(T, n, spacing)
    if floats_ is None:
        s = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
        s.set_timesteps(n)
        theirs = s.timesteps.tolist()[::-1]
        if spacing == "trailing" and len(theirs) == n + 1 and theirs[0] == -1:
            theirs = theirs[1:]  # the extra timestep -1: see the finding below
        want = [round(v) - (spacing == "trailing") for v in exact]
        tie = [v.denominator == 2 for v in exact]
    else:
        theirs = [int(f) for f in floats_]
        want = [math.floor(v) for v in exact]
        tie = [v.denominator == 1 for v in exact]
    # every sequence here increases with the position i: compare position by position
    assert schedules.timesteps(T, n, spacing).tolist() == want[::-1]
    for w, t, b in zip(want, theirs, tie, strict=True):
        assert w == t or b, (w, t)


def _trailing_overshoots(cls, Ts, n_max):
    """The (T, n), n <= min(T, n_max), where the scheduler's trailing timesteps are not n."""
    bad = []
    for T in Ts:
        s = cls(num_train_timesteps=T, timestep_spacing="trailing")
        for n in range(1, min(T, n_max) + 1):
            s.set_timesteps(n)
            if len(s.timesteps) != n:
                bad.append((T, n))
    return bad


# diffusers 0.42.1, counted by enumeration (both schedulers give the same sets)
TRAILING_OVERSHOOTS = {"T <= 1000, n <= min(T, 100)": 3389, "T = 1000, n <= 1000": 62}


@finding("DDIM-08.linear")
def test_finding_diffusers_trailing_spacing_can_add_timestep_minus_one():
    """diffusers' DDIMScheduler and DDPMScheduler, timestep_spacing = "trailing", compute the
    timesteps as round(arange(T, 0, -T / n)) - 1 in floats: where T / n is not exact, the float
    arange can reach one element past n (its last element a rounding error above 0), and the
    scheduler then has n + 1 timesteps, the last one -1 (not a timestep of [0, T - 1]; as an
    index, -1 reads the last, noisiest entry of alphas_cumprod). Ours: the n exact values.
    Enumerated with the schedulers themselves (0.5 s each): the affected (T, n) with
    n <= min(T, 100), T <= 1000 number 3389, the smallest T = 15, n = 13 (timesteps
    [14, 13, ..., 1, 0, -1]); at T = 1000, 62 of the step counts n <= 1000 (61, 103, 121, 122,
    201, ...); T = 359, n = 29 ends [..., 24, 11, -1] (the thorough profile's first case). Every
    affected case is the n exact values (up to ties, as below) followed by -1. Pinned: the
    counts, the minimal case and the shape; an upgrade that fixes or changes it fails this test."""
    from diffusers import DDIMScheduler, DDPMScheduler

    counts = {}
    for cls in (DDIMScheduler, DDPMScheduler):
        bad = _trailing_overshoots(cls, range(1, 1001), 100)
        at_1000 = [n for _, n in _trailing_overshoots(cls, [1000], 1000)]
        assert len(bad) == TRAILING_OVERSHOOTS["T <= 1000, n <= min(T, 100)"], len(bad)
        assert len(at_1000) == TRAILING_OVERSHOOTS["T = 1000, n <= 1000"], len(at_1000)
        assert min(bad) == (15, 13) and at_1000[:5] == [61, 103, 121, 122, 201], (min(bad), at_1000)
        for T, n in bad[::50] + [(359, 29)]:
            s = cls(num_train_timesteps=T, timestep_spacing="trailing")
            s.set_timesteps(n)
            ts = s.timesteps.tolist()
            exact = _spacing_values(T, n, "trailing")[0][::-1]
            assert len(ts) == n + 1 and ts[-1] == -1, (T, n, ts)
            assert all(
                t == round(v) - 1 or v.denominator == 2 for t, v in zip(ts, exact, strict=False)
            )
        counts[cls.__name__] = {"affected (T, n), T <= 1000, n <= min(T, 100)": len(bad),
                                "affected n at T = 1000, n <= 1000": len(at_1000),
                                "first n at T = 1000": at_1000[:8]}  # fmt: skip
    s = DDIMScheduler(num_train_timesteps=15, timestep_spacing="trailing")
    s.set_timesteps(13)
    ours = schedules.timesteps(15, 13, "trailing").tolist()
    s359 = DDIMScheduler(num_train_timesteps=359, timestep_spacing="trailing")
    s359.set_timesteps(29)
    current().record(minimal_case="num_train_timesteps = 15, n = 13",
                     diffusers_timesteps=s.timesteps.tolist(), ours=ours,
                     T_359_n_29_last_three=s359.timesteps.tolist()[-3:], **counts)  # fmt: skip
    current().summary = (
        f"finding: diffusers {diffusers.__version__} DDIM/DDPM, trailing, T = 15, n = 13: 14 timesteps, "
        f"the last -1 (ours: 13, the last 0); 3389 of the (T, n) with T <= 1000, n <= min(T, 100), and "
        f"62 step counts at T = 1000"
    )


# The `diffusion` family's diffusers adapter (properties/adapters/diffusion.py: Diffusers) -------
# Its claims run in the peer matrix (python -m properties.peers, tox -e peers); here one cheap
# smoke check of each function it overrides, against the reference on one input.


def test_diffusers_adapter_smoke():
    from properties.adapters.diffusion import Diffusers, Reference

    abar = schedules.alphas_cumprod(schedules.linear_betas())
    x_t, eps, z = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    a, b = abar[600].item(), abar[400].item()
    sigma = Reference.sigma_paper(0.7, a, b)
    for got, want in (
        (
            Diffusers.ddim_step(x_t, eps, a, b, sigma, z),
            Reference.ddim_step(x_t, eps, a, b, sigma, z),
        ),
        (
            Diffusers.ddim_step(x_t, eps, a, 1.0, 0.0, z),
            Reference.ddim_step(x_t, eps, a, 1.0, 0.0, z),
        ),
        (Diffusers.ddpm_step(x_t, eps, a, b, z), Reference.ddpm_step(x_t, eps, a, b, z)),
        (
            Diffusers.ddpm_step(x_t, eps, a, b, z, "large"),
            Reference.ddpm_step(x_t, eps, a, b, z, "large"),
        ),
        (Diffusers.q_sample(x_t, a, eps), Reference.q_sample(x_t, a, eps)),
    ):
        assert_close(got, want, ulps=64, scale=10, what="diffusers adapter - reference")
    model = lambda x, t: 0.2 * x + 1e-3 * t  # noqa: E731
    ts = Reference.timesteps(1000, 10, "leading")
    assert Diffusers.timesteps(1000, 10, "leading").tolist() == ts.tolist()
    for eta in (0.0, 1.0):
        got = Diffusers.ddim_sample(model, x_t, abar, ts, eta, torch.Generator().manual_seed(1))
        want = Reference.ddim_sample(model, x_t, abar, ts, eta, torch.Generator().manual_seed(1))
        assert_close(got, want, ulps=256, scale=10, what=f"diffusers DDIM sampler, eta = {eta}")
    got = Diffusers.ddpm_sample(model, x_t, abar, [900, 500, 0], torch.Generator().manual_seed(2))
    want = Reference.ddpm_sample(model, x_t, abar, [900, 500, 0], torch.Generator().manual_seed(2))
    assert_close(got, want, ulps=256, scale=10, what="diffusers DDPM sampler")


@finding("DDIM-10")
def test_finding_diffusers_euler_step_rounds_the_sample_to_float32():
    """EulerDiscreteScheduler.step casts the sample to float32 ("upcast to avoid precision
    issues"; a downcast for float64 input) and computes the rest in the model output's dtype: on
    float64 input its Euler step in sigma is the float64 step of the sample rounded to float32,
    about 1e-7 relative from the float64 step (so DDIM-10's float64 identity fails through this
    adapter; the mathematics holds up to that rounding of the input). DPMSolverMultistepScheduler
    casts its sample too (its first-order step is DDIM(eta = 0): the diffusers-dpmsolver peer)."""
    from properties.adapters.diffusion import Diffusers, Reference

    abar = schedules.alphas_cumprod(schedules.linear_betas())
    x_t, eps = torch.randn(2, 64, generator=torch.Generator().manual_seed(0), dtype=F64)
    a, b = abar[700].item(), abar[500].item()
    got = Diffusers.ode_euler_step(x_t, eps, a, b)
    want = Reference.ode_euler_step(x_t, eps, a, b)
    gap = float((got - want).abs().max() / want.abs().max())  # relative to the largest entry
    assert got.dtype == F64 and 1e-10 < gap < 1e-6, gap
    # = the float64 step of xbar = x_t / sqrt(a) rounded to float32 (the adapter's sqrt(a), sqrt(b))
    xbar32 = (x_t / a**0.5).float().double()
    rounded = b**0.5 * (xbar32 + (((1 - b) / b) ** 0.5 - ((1 - a) / a) ** 0.5) * eps)
    assert_close(
        got, rounded, ulps=64, scale=float(want.abs().max()), what="Euler of the float32 sample"
    )
    # DPMSolverMultistepScheduler's first-order step (= DDIM(eta = 0)) casts its sample to
    # float32 too: the same size of gap (not only the cast: a float32 sample does not close it)
    from properties.adapters.diffusion import DiffusersDPMSolver

    dpm = DiffusersDPMSolver.ode_euler_step(x_t, eps, a, b)
    dpm_gap = float((dpm - want).abs().max() / want.abs().max())
    assert 1e-10 < dpm_gap < 1e-6, dpm_gap
    current().record(worst_relative_gap_to_float64=gap, dpm_solver_1_gap=dpm_gap)
    current().summary = (
        f"finding: diffusers {diffusers.__version__} EulerDiscreteScheduler rounds a float64 sample to "
        f"float32 before its step: {gap:.1e} relative from the float64 Euler step (= DDIM(eta = 0))"
    )


@finding("DDIM-05")
def test_finding_diffusers_ddpm_fixed_small_final_step_adds_1e_10_noise():
    """DDPMScheduler clamps the posterior variance to 1e-20 (it takes its log elsewhere): on the
    final step from a timestep t > 0 to the data, where the posterior variance is 0, the
    "fixed_small" step adds sqrt(1e-20) z = 1e-10 z to x0_hat (float64 tables, the adapter's
    sampler; with diffusers' float32 tables the float32 coefficients' error hides it)."""
    from properties.adapters.diffusion import Diffusers, Reference

    abar = schedules.alphas_cumprod(schedules.linear_betas())
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    model = lambda x, t: 0.2 * x + 1e-3 * t  # noqa: E731
    gaps = {}
    for ts in ([500, 200, 50], [500, 200, 0]):
        got = Diffusers.ddpm_sample(model, x_T, abar, ts, torch.Generator().manual_seed(9))
        want = Reference.ddpm_sample(model, x_T, abar, ts, torch.Generator().manual_seed(9))
        gaps[ts[-1]] = float((got - want).abs().max())
    assert gaps[0] < 1e-14 and 1e-11 < gaps[50] < 1e-9, gaps
    current().record(gap_last_t_50=gaps[50], gap_last_t_0=gaps[0])
    current().summary = (
        f"finding: diffusers DDPM fixed_small, last timestep 50: the output is x0_hat + 1e-10 z "
        f"(gap {gaps[50]:.1e}; last timestep 0: {gaps[0]:.0e})"
    )


def test_diffusers_sigma_form_adapter_smoke():
    """The `sde` family's diffusers peer (--target sde=diffusers, properties/adapters/
    sde_diffusers.py), the default gate's smoke check of it: Heun's
    sampler = the reference's to float64 rounding; Euler's to the float32 rounding of its sample
    (the DDIM-10 finding above)."""
    from properties.adapters import resolve
    from properties.adapters.sde import Reference

    Diffusers = resolve("sde", "diffusers")

    def denoiser(x, s):
        return x / (1 + s[:, None] ** 2) + 0.1 * torch.sin(x)

    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 10
    sigmas = Reference.get_sigmas_karras(5, 0.1, 10.0)
    heun = Diffusers.sample_heun(denoiser, x, sigmas)
    assert_close(heun, Reference.sample_heun(denoiser, x, sigmas), ulps=64, scale=10, what="Heun")
    euler = Diffusers.sample_euler(denoiser, x, sigmas)
    assert_close(euler, Reference.sample_euler(denoiser, x, sigmas), ulps=0, abs_floor=1e-6,
                 what="Euler (float32 sample)")  # fmt: skip
    drift = lambda y, t: -y * (1 + t)  # noqa: E731
    got = Diffusers.ode_solve(drift, x, 0.0, 1.0, 8, "heun")
    assert_close(got, Reference.ode_solve(drift, x, 0.0, 1.0, 8, "heun"), ulps=64, scale=10,
                 what="Heun as the ODE solver")  # fmt: skip
