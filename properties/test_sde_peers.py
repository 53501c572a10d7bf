"""Family `sde` in Karras et al.'s sigma form (the convention of k-diffusion and most image tools),
the smoke checks of the family's peer adapters (torchsde, torchdiffeq, k-diffusion; the full
claim properties run on them in the peer matrix, `--target sde=NAME`), and the peers' findings.

The sigma form: x_K = x / sqrt(abar) at sigma = sqrt((1 - abar) / abar) (DDPM's x_t = sqrt(abar)
x_0 + sqrt(1 - abar) eps becomes x_K = x_0 + sigma eps), a denoiser D(x_K, sigma) predicting x_0,
and d = (x_K - D) / sigma = eps. The PF-ODE of this VE form is dx_K / d sigma = d (SDE-05 with
f = 0, g^2 = d sigma^2 / dt); DDIM(eta = 0) is its Euler step (DDIM-10). With Gaussian data
N(mu, s^2) the marginal at sigma is N(mu, s^2 + sigma^2) and the exact denoiser is
D = mu + s^2 / (s^2 + sigma^2) (x - mu): every sampler is then linear in x, and its law is computed,
not sampled.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.diffusion import oracle
from properties.adapters import resolve
from properties.catalogue import claim, finding
from properties.evidence import current
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53
MIXTURE = oracle.isotropic_mixture([[-1.0, 0.5], [1.5, -0.5]], 0.5)
SIGMA_MIN, SIGMA_MAX = 0.05, 20.0


def karras(n, lo, hi, rho=7.0, zero=False):
    """n + 1 sigmas from hi down to lo (Karras et al. 2022, (5)), in float64; a final 0 if zero."""
    ramp = torch.linspace(0, 1, n + 1, dtype=F64)
    sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=F64)]) if zero else sigmas


def abar_of(sigma):
    return 1.0 / (1.0 + float(sigma) ** 2)


def mixture_denoiser(x, sigma):
    """The exact x_0 prediction of MIXTURE in the sigma form, from its eps-predictor at abar."""
    s = float(sigma[0])
    assert torch.all(sigma == s), "one sigma per call"
    a = abar_of(s)
    return x - s * MIXTURE.eps(x * a**0.5, a)


def gaussian_denoiser(mu, s):
    return lambda x, sigma: mu + s**2 / (s**2 + sigma.reshape(-1, 1) ** 2) * (x - mu)


def ddim_written_out(x_K, sigmas, eta=0.0, generator=None):
    """DDIM (the paper's sigma(eta)) on the abar levels of `sigmas`, from x_T = sqrt(abar) x_K,
    with MIXTURE's exact eps: x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a),
    x_tau = sqrt(b) x0_hat + sqrt(1 - b - sig^2) eps + sig z; returned in the sigma form."""
    x = x_K * abar_of(sigmas[0]) ** 0.5
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
        a, b = abar_of(s), abar_of(s_next)
        eps = MIXTURE.eps(x, a)
        x0_hat = (x - (1 - a) ** 0.5 * eps) / a**0.5
        sig = eta * ((1 - b) / (1 - a)) ** 0.5 * (1 - a / b) ** 0.5 if s_next > 0 else 0.0
        x = b**0.5 * x0_hat + (1 - b - sig**2) ** 0.5 * eps
        if sig:
            x = x + sig * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x / abar_of(sigmas[-1]) ** 0.5


@claim("DDIM-10")
@settings(max_examples=20)
@given(
    seed=seeds,
    n=st.integers(1, 20),
    sigma_max=floats(1.0, 80.0),
    rho=floats(1.0, 10.0),
    zero=st.booleans(),
)
def test_ddim_eta_zero_is_the_euler_sampler_in_sigma(sde, seed, n, sigma_max, rho, zero):
    """DDIM(eta = 0) over any decreasing sigmas (Karras spacing, rho drawn; with or without the
    final step to sigma = 0, abar = 1) equals the family's sample_euler in the sigma form, with
    the denoiser built from the same eps-predictor. Rounding: each step's conversions and sums
    are a few u of |x_K| + sigma |eps| (|eps| <= |x_K| / sigma + 3 here), carried by later steps."""
    sigmas = karras(n, 0.01, sigma_max, rho, zero)
    x_K = sigma_max * torch.randn(6, 2, generator=seed.torch(), dtype=F64)
    got = sde.sample_euler(mixture_denoiser, x_K, sigmas)
    want = ddim_written_out(x_K, sigmas)
    scale = 16 * (n + 1) * (x_K.abs().max() + 4 * sigma_max)
    assert_close(got, want, ulps=1, scale=scale, what="sample_euler - DDIM(eta = 0), sigma form")
    current().summary = (
        "DDIM(eta = 0) is the Euler sampler dx_K = d dsigma of the sigma form (x_K = x/sqrt(abar),"
        " sigma = sqrt((1 - abar)/abar))"
    )


def sigma_form_law(sampler, mu, s, n):
    """|mean error| + |variance error| at SIGMA_MIN of the sampler's push-forward of
    N(mu, s^2 + SIGMA_MAX^2) over n Karras steps, Gaussian data N(mu, s^2), exact denoiser."""
    out = sampler(gaussian_denoiser(mu, s), torch.tensor([[0.0], [1.0]], dtype=F64),
                  karras(n, SIGMA_MIN, SIGMA_MAX))  # fmt: skip
    phi, psi = (out[1] - out[0]).item(), out[0].item()
    mean, var = phi * mu + psi, phi**2 * (s**2 + SIGMA_MAX**2)
    return abs(mean - mu) + abs(var - (s**2 + SIGMA_MIN**2))


@claim("SDE-05.half")
@settings(max_examples=6)
@given(mu=floats(-2, 2), s=floats(0.2, 2.0))
def test_sigma_form_samplers_keep_the_pf_ode_marginals(sde, mu, s):
    """The PF-ODE of the sigma form, dx_K / d sigma = (x_K - D) / sigma, pushes
    N(mu, s^2 + 20^2) to N(mu, s^2 + 0.05^2) (Gaussian data, exact denoiser): over 25 to 200
    Karras steps (rho = 7) sample_euler's law error halves per doubling (order 1; measured 1.93
    to 1.99), sample_heun's and sample_dpm_2's quarter (order 2; measured 4.02 to 4.13)."""
    ratios = {}
    for name, order in (("sample_euler", 1), ("sample_heun", 2), ("sample_dpm_2", 2)):
        errs = [sigma_form_law(getattr(sde, name), mu, s, n) for n in (25, 50, 100, 200)]
        ratios[name] = [round(errs[i] / errs[i + 1], 3) for i in range(3)]
        assert all(2**order * 0.8 < r < 2**order * 1.2 for r in ratios[name]), (name, errs)
        current().worst(f"{name}: law error at 200 steps", errs[-1])
    current().summary = (
        "sigma form: Euler order 1, Heun and DPM-2 order 2 towards the PF-ODE's marginal"
    )


def ancestral_law_error(sde, mu, s, n, eta):
    """Law of sample_euler_ancestral over n Karras steps (no final 0), step by step: each step is
    x -> A x + c + G z (Gaussian data, exact denoiser), read off three one-step runs with seeded
    generators (x = 0 and 1 with the same noise give A; two noises give G)."""
    sigmas, (m, v), D = karras(n, SIGMA_MIN, SIGMA_MAX), (mu, s**2 + SIGMA_MAX**2), None
    D = gaussian_denoiser(mu, s)
    z_a, z_b = (torch.randn(1, 1, generator=torch.Generator().manual_seed(k), dtype=F64).item()
                for k in (1, 2))  # fmt: skip
    for k in range(n):

        def run(x, seed, step=sigmas[k : k + 2]):
            x = torch.tensor([[x]], dtype=F64)
            gen = torch.Generator().manual_seed(seed)
            return sde.sample_euler_ancestral(D, x, step, gen, eta).item()

        at_0, at_1, at_0_b = run(0.0, 1), run(1.0, 1), run(0.0, 2)
        G = (at_0 - at_0_b) / (z_a - z_b)
        A = at_1 - at_0
        m, v = A * m + at_0 - G * z_a, A**2 * v + G**2
    return abs(m - mu) + abs(v - (s**2 + SIGMA_MIN**2))


@claim("SDE-04")
@settings(max_examples=4)
@given(mu=floats(-2, 2), s=floats(0.2, 2.0), eta=st.sampled_from([0.5, 1.0]))
def test_ancestral_sampler_generates_the_data_law(sde, mu, s, eta):
    """The ancestral sampler (DDPM's step for eta = 1; DDIM(eta)'s in general) in the sigma form,
    from N(mu, s^2 + 20^2) to sigma = 0.05, Gaussian data, exact denoiser: its law is computed
    exactly step by step and tends to N(mu, s^2 + 0.05^2) at order 1 (the error ratio per
    doubling of the steps 50, 100, 200 lies in 1.6 to 2.5; measured 1.87 to 1.97). Dropping the
    noise, or adding it at the wrong size, leaves an error that does not vanish."""
    errs = [ancestral_law_error(sde, mu, s, n, eta) for n in (50, 100, 200)]
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(1.6 < r < 2.5 for r in ratios), errs
    current().worst("ancestral law error at 200 steps", errs[-1])
    current().summary = "the ancestral sampler's law tends to the data law at order 1"


# Smoke checks of the peer adapters (the default gate): one direct comparison each ----------------


def needs_kdiffusion():
    """Skip unless k-diffusion is installed (its package is not imported: see the adapter)."""
    import importlib.util

    if importlib.util.find_spec("k_diffusion") is None:
        pytest.skip("k-diffusion is not installed")


def _library(name):
    from importlib.metadata import version

    return f"{name} {version(name)}"


def _vp_case():
    from impl.diffusion import sde as sdes

    vp = sdes.VP()
    data = oracle.isotropic_mixture([[0.3, -0.2]], 0.8)

    def score(x, t):
        c, s2 = vp.kernel(t)
        return data.score(x, c**2, s2)

    x = torch.linspace(-1, 1, 8, dtype=F64).reshape(4, 2)
    return vp, score, x


def test_smoke_torchsde():
    pytest.importorskip("torchsde")
    ref, peer = resolve("sde"), resolve("sde", "torchsde")
    vp, score, x = _vp_case()
    for n in (1, 7):
        a = ref.euler_maruyama(vp, x, 0.1, 0.6, n, torch.Generator().manual_seed(n))
        b = peer.euler_maruyama(vp, x, 0.1, 0.6, n, torch.Generator().manual_seed(n))
        assert torch.allclose(a, b, rtol=0, atol=1e-14)
        a = ref.reverse_euler_maruyama(vp, score, x, 0.6, 0.1, n, torch.Generator().manual_seed(n))
        b = peer.reverse_euler_maruyama(vp, score, x, 0.6, 0.1, n, torch.Generator().manual_seed(n))
        assert torch.allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["torchdiffeq", "torchdiffeq-adjoint"])
def test_smoke_torchdiffeq(name):
    pytest.importorskip("torchdiffeq")
    ref, peer = resolve("sde"), resolve("sde", name)
    vp, score, x = _vp_case()

    def drift(y, t):
        return ref.ode_drift(vp, score, y, t)

    for method in ("euler", "heun"):
        a, b = (p.ode_solve(drift, x, 1.0, 1e-3, 10, method) for p in (ref, peer))
        assert torch.allclose(a, b, rtol=0, atol=1e-14)
    c1, s21 = vp.kernel(1.0)

    def prior(y):
        return -0.5 * (y**2).sum(1) / s21

    for probe in (None, "rademacher"):
        a, b = (p.log_likelihood(vp, score, prior, x, 5, generator=torch.Generator().manual_seed(0),
                                 probe=probe) for p in (ref, peer))  # fmt: skip
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_smoke_kdiffusion():
    needs_kdiffusion()
    ref, peer = resolve("sde"), resolve("sde", "kdiffusion")
    sigmas = karras(6, 0.02, 40.0, zero=True)
    x = 40 * torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    for name in ("sample_euler", "sample_heun", "sample_dpm_2"):
        a, b = (getattr(p, name)(mixture_denoiser, x, sigmas) for p in (ref, peer))
        assert torch.allclose(a, b, rtol=0, atol=1e-12), name
    a, b = (p.sample_euler_ancestral(mixture_denoiser, x, sigmas, torch.Generator().manual_seed(1))
            for p in (ref, peer))  # fmt: skip
    assert torch.allclose(a, b, rtol=0, atol=1e-12)


# Findings ----------------------------------------------------------------------------------------


@finding("SDE-01")
def test_finding_torchsde_fixed_dt_adds_a_sliver_step():
    """torchsde's sdeint with a fixed dt steps t <- t + dt while t < the output time: when the
    n float additions fall short of t1 by a rounding error it takes an (n + 1)-th step, a sliver
    of length ~1e-16 with its own Brownian increment sqrt(sliver) z ~ 1e-8 z. Minimal case:
    ts = [0.1, 0.6], dt = 0.5 / 7: 8 steps. (The family's torchsde adapter calls sdeint once
    per interval with dt twice its length, so the properties ask the scheme itself.)"""
    torchsde = pytest.importorskip("torchsde")
    from properties.adapters.sde import _GeneratorBrownian, _TorchsdeProblem

    class Counting(_GeneratorBrownian):
        def __call__(self, ta, tb=None, return_U=False, return_A=False):
            self.queries.append(float(tb - ta))
            return super().__call__(ta, tb)

    problem = _TorchsdeProblem(lambda y, t: -y, lambda t: 1.0)
    x = torch.zeros(1, 1, dtype=F64)
    ts = torch.tensor([0.1, 0.6], dtype=F64)
    extra = []
    for n in range(1, 101):
        bm = Counting(x, torch.Generator().manual_seed(0))
        bm.queries = []
        torchsde.sdeint(problem, x, ts, bm=bm, dt=0.5 / n, method="euler")
        if len(bm.queries) != n:
            extra.append((n, len(bm.queries), bm.queries[-1]))
    assert extra and extra[0][:2] == (7, 8), extra[:3]
    assert all(k == n + 1 and 0 < last < 1e-14 for n, k, last in extra)
    text = (
        f"{_library('torchsde')}: sdeint(..., ts=[0.1, 0.6], dt=0.5/n, method='euler') takes n + 1"
        f" steps for {len(extra)} of n = 1..100 (first n = 7: 8 Brownian queries, the last over"
        f" {extra[0][2]:.1e}), adding a noise term ~ sqrt({extra[0][2]:.0e}) z ~ 1e-8 z"
    )
    current().record(finding=text, affected_n=[n for n, _, _ in extra][:20])
    current().summary = text


@finding("DDIM-10")
@settings(max_examples=10)
@given(seed=seeds, n=st.integers(1, 12), eta=st.sampled_from([0.0, 0.5, 1.0]))
def test_finding_kdiffusion_sigma_form_is_ddim(seed, n, eta):
    """k-diffusion parametrises by sigma, not abar: its samplers take x_K = x / sqrt(abar) at
    sigma = sqrt((1 - abar)/abar) and a denoiser predicting x_0 (eps = (x_K - D)/sigma). Under
    that mapping its sample_euler_ancestral(eta) is DDIM(eta) with the paper's sigma(eta)
    (sigma_up = sigma_DDIM / sqrt(abar_tau), sigma_down = sqrt(sigma_next^2 - sigma_up^2)), so
    eta = 1 is DDPM's ancestral step and eta = 0 (= sample_euler) is DDIM's deterministic one.
    A convention, not an error; pinned so that an upgrade that changes it is noticed."""
    kd = resolve("sde", "kdiffusion")
    needs_kdiffusion()
    sigmas = karras(n, 0.02, 40.0, zero=True)
    x_K = 40 * torch.randn(4, 2, generator=seed.torch(), dtype=F64)
    got = kd.sample_euler_ancestral(mixture_denoiser, x_K, sigmas, seed.torch(), eta)
    want = ddim_written_out(x_K, sigmas, eta, seed.torch())
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10 * 40)
    text = (
        f"{_library('k-diffusion')}: sigma form x_K = x/sqrt(abar), sigma = sqrt((1 - abar)/abar),"
        " denoiser = x_0 prediction; sample_euler_ancestral(eta) = DDIM(eta) (paper's sigma),"
        " sample_euler = DDIM(0)"
    )
    current().record(finding=text)
    current().summary = text


@finding("DDIM-10")
def test_finding_kdiffusion_deterministic_samplers_draw_from_the_global_rng():
    """sample_euler, sample_heun and sample_dpm_2 draw eps = torch.randn_like(x) at every step
    even with s_churn = 0, where the draw is unused: a deterministic sampler advances torch's
    global generator by one draw of x's shape per step (its result does not depend on it)."""
    needs_kdiffusion()
    from properties.adapters.sde import kdiffusion_sampling

    sampling = kdiffusion_sampling()
    x, sigmas = torch.ones(3, 2, dtype=F64), karras(4, 0.1, 10.0, zero=True)
    advanced = {}
    for name in ("sample_euler", "sample_heun", "sample_dpm_2"):
        torch.manual_seed(0)
        getattr(sampling, name)(mixture_denoiser, x, sigmas, disable=True)
        after = torch.rand(1)
        torch.manual_seed(0)
        for _ in range(len(sigmas) - 1):
            torch.randn_like(x)
        assert torch.equal(after, torch.rand(1)), name
        advanced[name] = len(sigmas) - 1
    text = (
        f"{_library('k-diffusion')}: sample_euler / sample_heun / sample_dpm_2 with s_churn = 0"
        " still call torch.randn_like(x) once per step: 5 sigmas advance the global RNG by 4"
        " draws of x's shape"
    )
    current().record(finding=text)
    current().summary = text


@finding("SDE-05")
def test_finding_kdiffusion_karras_sigmas_are_float32():
    """get_sigmas_karras builds its ramp with torch.linspace's default dtype: the schedule is
    float32 whatever the sampler's dtype, off the float64 formula by up to ~1e-7 relative."""
    kd = resolve("sde", "kdiffusion")
    needs_kdiffusion()
    got = kd.get_sigmas_karras(40, 0.002, 80.0)
    want = resolve("sde").get_sigmas_karras(40, 0.002, 80.0)
    assert got.dtype == torch.float32
    rel = float(((got.double() - want).abs() / want.clamp_min(1e-300))[:-1].max())
    assert 0 < rel < 1e-6
    text = (
        f"{_library('k-diffusion')}: get_sigmas_karras(40, 0.002, 80) is float32 (max relative"
        f" deviation from the float64 formula {rel:.1e}); a float64 sampler inherits it"
    )
    current().record(finding=text)
    current().summary = text
    assert math.isfinite(rel)
