"""Family `sde` (SDE / ODE samplers and solvers): the functions its properties call.

Interface (impl/diffusion/sde.py, impl/ode.py and impl/diffusion/ddim.py for the equations;
`process` is an impl.diffusion.sde VP, SubVP or VE: f(x, t), g(t), kernel(t); x (n, d) float64):
    vp(beta_min, beta_max), subvp(beta_min, beta_max), ve(sigma_min, sigma_max) -> process
                                                                SDE-02/03 are about these: their
                                                                f, g and closed-form kernels
    euler_maruyama(process, x, t0, t1, n, generator)            SDE-01: n EM steps, t0 < t1
    reverse_euler_maruyama(process, score, x, t1, t0, n, generator)   SDE-04: t1 down to t0
    predictor_corrector(process, score, x, t1, t0, n, generator, snr)  SDE-04
    reverse_drift(process, score, x, t), ode_drift(process, score, x, t, half)
    ode_solve(drift, x, t_start, t_end, n, method)              SDE-05: "euler" or "heun", n equal
                                                                steps of dx/dt = drift(x, t)
    log_likelihood(process, score, prior_log_density, x0, n, t_eps, generator, probe)  SDE-07
    hutchinson(jvp_probe, v), probes(kind, shape, generator, dtype)                    SDE-07
    consistency_coefficients(t, sigma_data, eps), consistency_function(F, x, t, sigma_data, eps)
                                                                SDE-08 (no peer has them)
  Karras et al.'s sigma form (k-diffusion's convention): x_K = x / sqrt(abar) at
  sigma = sqrt((1 - abar) / abar), denoiser(x_K, sigma_rows) -> the x_0 prediction, called with
  one sigma per row (shape (n,)); d = (x_K - denoiser) / sigma = eps:
    sample_euler(denoiser, x, sigmas)                           DDIM-10, SDE-05
    sample_heun(denoiser, x, sigmas), sample_dpm_2(denoiser, x, sigmas)   SDE-05 (the step to
                                                                sigma = 0 is an Euler step)
    sample_euler_ancestral(denoiser, x, sigmas, generator, eta) SDE-04: DDIM(eta)'s step
    get_sigmas_karras(n, sigma_min, sigma_max, rho)             n sigmas and a final 0

Reference: impl. Its functions look impl up at call time, so that the rejected variants, which
patch impl.diffusion.sde, impl.ode and impl.diffusion.ddim, reach it. The sigma-form samplers are
impl's steps in those coordinates: sample_euler and sample_dpm_2 are ddim.ode_euler_step (DDIM
eta = 0: Euler in sigma, DDIM-10; DPM-2's second stage is the Euler step from x with the
midpoint's eps), sample_heun is one impl.ode.ode_solve Heun step per interval, and
sample_euler_ancestral is ddim.step with the paper's sigma(eta). impl has no Karras schedule:
Reference.get_sigmas_karras writes Karras et al.'s (5) in float64.

Peers (functions a library does not have stay the reference's):
  torchsde     torchsde.sdeint, method "euler" (Ito Euler-Maruyama): euler_maruyama and
               reverse_euler_maruyama (in s = -t, since sdeint needs increasing times). One sdeint
               call per grid interval with dt = twice its length, so that sdeint takes exactly
               that one step (with dt = the step length its t + dt accumulation adds a sliver
               step for some n: test_sde_peers pins that finding), and a Brownian motion whose
               increments are sqrt(dt) z with z drawn from the caller's generator.
  torchdiffeq  torchdiffeq.odeint, fixed grid "euler" and "heun2" (explicit trapezoid): ode_solve,
               and log_likelihood (the augmented state (x, int div) by odeint's heun2; the drift,
               the divergence (autograd or Hutchinson) and the probes are the adapter's own code).
  torchdiffeq-adjoint  the same through torchdiffeq.odeint_adjoint.
  diffusers    diffusers' EulerDiscreteScheduler and HeunDiscreteScheduler in the sigma form
               (properties/adapters/sde_diffusers.py): sample_euler, sample_heun, ode_solve.
  kdiffusion   k_diffusion.sampling (k-diffusion's sampling.py loaded alone: its package
               __init__ imports the training and evaluation code (PIL, torchvision, clip, ...);
               its `from . import utils` is given a stub module holding only append_dims, the
               one utils function sampling.py calls, copied from k_diffusion/utils.py):
               sample_euler, sample_heun, sample_dpm_2, sample_euler_ancestral (noise_sampler
               drawing from the caller's generator), get_sigmas_karras; and ode_solve as
               sample_euler / sample_heun on the grid sigma = t + 1 with the denoiser
               x - sigma drift(x, sigma - 1) (the shift keeps sigma off 0, where k-diffusion
               takes an Euler step).
"""

import importlib.util
import math
import sys
import types

import torch

from properties.adapters import Peer, late

F64 = torch.float64


TOOLS = {
    "impl.ode.grid": "the time grid t_k = t_start + k (t_end - t_start) / n fed to the steps",
}

_SDE, _ODE, _DDIM = "impl.diffusion.sde", "impl.ode", "impl.diffusion.ddim"
for _module in (_SDE, _ODE, _DDIM):  # Reference looks them up in sys.modules
    importlib.import_module(_module)


def _rows(x, sigma):
    return sigma * x.new_ones([x.shape[0]])


def _abar(sigma):
    return 1.0 / (1.0 + float(sigma) ** 2)


class Reference:
    """The project's implementation, impl/ (looked up at call time)."""

    euler_maruyama = late(_SDE, "euler_maruyama")
    reverse_euler_maruyama = late(_SDE, "reverse_euler_maruyama")
    predictor_corrector = late(_SDE, "predictor_corrector")
    reverse_drift = late(_SDE, "reverse_drift")
    ode_drift = late(_SDE, "ode_drift")
    log_likelihood = late(_SDE, "log_likelihood")
    hutchinson = late(_SDE, "hutchinson")
    probes = late(_SDE, "probes")
    consistency_coefficients = late(_SDE, "consistency_coefficients")
    consistency_function = late(_SDE, "consistency_function")
    vp = late(_SDE, "VP")
    subvp = late(_SDE, "SubVP")
    ve = late(_SDE, "VE")

    ode_solve = late(_ODE, "ode_solve")

    @staticmethod
    def sample_euler(denoiser, x, sigmas):
        ddim = sys.modules[_DDIM]
        for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            eps = (x - denoiser(x, _rows(x, s))) / s
            a, b = _abar(s), _abar(s_next)
            x = ddim.ode_euler_step(x * a**0.5, eps, a, b) / b**0.5
        return x

    @staticmethod
    def sample_heun(denoiser, x, sigmas):
        ode, ddim = sys.modules[_ODE], sys.modules[_DDIM]
        for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            if s_next == 0:  # d is not defined at sigma = 0: an Euler step, as Karras et al.
                eps = (x - denoiser(x, _rows(x, s))) / s
                x = ddim.ode_euler_step(x * _abar(s) ** 0.5, eps, _abar(s), 1.0)
                continue

            def drift(y, u, s=s, s_next=s_next):  # dx/du on u in [0, 1], sigma = s + u (s' - s)
                sigma = s + u * (s_next - s) if u < 1 else s_next
                return (s_next - s) * (y - denoiser(y, _rows(y, sigma))) / sigma

            x = ode.ode_solve(drift, x, 0.0, 1.0, 1, "heun")
        return x

    @staticmethod
    def sample_dpm_2(denoiser, x, sigmas):
        ddim = sys.modules[_DDIM]
        for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            a, b = _abar(s), _abar(s_next)
            eps = (x - denoiser(x, _rows(x, s))) / s
            if s_next > 0:  # the midpoint in log sigma, then the step from x with its eps
                s_mid = math.exp((math.log(s) + math.log(s_next)) / 2)
                m = _abar(s_mid)
                x_mid = ddim.ode_euler_step(x * a**0.5, eps, a, m) / m**0.5
                eps = (x_mid - denoiser(x_mid, _rows(x, s_mid))) / s_mid
            x = ddim.ode_euler_step(x * a**0.5, eps, a, b) / b**0.5
        return x

    @staticmethod
    def sample_euler_ancestral(denoiser, x, sigmas, generator=None, eta=1.0):
        ddim = sys.modules[_DDIM]
        for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist(), strict=True):
            a, b = _abar(s), _abar(s_next)
            eps = (x - denoiser(x, _rows(x, s))) / s
            sigma = ddim.sigma_paper(eta, a, b) if s_next > 0 else 0.0
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype) if sigma else None
            x = ddim.step(x * a**0.5, eps, a, b, sigma, z) / b**0.5
        return x

    @staticmethod
    def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0):
        ramp = torch.linspace(0, 1, n, dtype=F64)
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        return torch.cat([(hi + ramp * (lo - hi)) ** rho, torch.zeros(1, dtype=F64)])


# torchsde ---------------------------------------------------------------------------------------


class _GeneratorBrownian:
    """torchsde's Brownian-motion interface: the increment over [ta, tb] is sqrt(tb - ta) z, z drawn
    from the caller's generator (in the solver's order of queries)."""

    levy_area_approximation = "none"

    def __init__(self, like, generator):
        self.shape, self.dtype, self.device = like.shape, like.dtype, like.device
        self.generator = generator

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        z = torch.randn(self.shape, generator=self.generator, dtype=self.dtype)
        return (tb - ta) ** 0.5 * z


class _TorchsdeProblem(torch.nn.Module):
    """dy = f(y, s) ds + g(s) dW (diagonal noise, Ito), as torchsde wants it."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, f, g):
        super().__init__()
        self._f, self._g = f, g

    def f(self, s, y):
        return self._f(y, float(s))

    def g(self, s, y):
        return self._g(float(s)) * torch.ones_like(y)


def _sdeint_steps(problem, x, times, generator, method="euler"):
    """One sdeint call per interval of `times` (increasing), dt twice the interval: one step each."""
    import torchsde

    bm = _GeneratorBrownian(x, generator)
    times = torch.as_tensor(times, dtype=x.dtype)
    for k in range(len(times) - 1):
        ts = times[k : k + 2]
        dt = 2 * float(ts[1] - ts[0])
        x = torchsde.sdeint(problem, x, ts, bm=bm, method=method, dt=dt)[-1]
    return x


class Torchsde(Reference):
    """torchsde's sdeint (Ito Euler-Maruyama) for euler_maruyama and reverse_euler_maruyama."""

    method = "euler"

    @classmethod
    def euler_maruyama(cls, process, x, t0, t1, n, generator):
        problem = _TorchsdeProblem(process.f, process.g)
        return _sdeint_steps(problem, x, torch.linspace(t0, t1, n + 1, dtype=F64), generator)

    @classmethod
    def reverse_euler_maruyama(cls, process, score, x, t1, t0, n, generator):
        # in s = -t (increasing): dx = -(f - g^2 score)(x, -s) ds + g(-s) dW
        def f(y, s):
            return -(process.f(y, -s) - process.g(-s) ** 2 * score(y, -s))

        problem = _TorchsdeProblem(f, lambda s: process.g(-s))
        return _sdeint_steps(problem, x, -torch.linspace(t1, t0, n + 1, dtype=F64), generator)


# torchdiffeq ------------------------------------------------------------------------------------


class _Func(torch.nn.Module):
    """func(t, y) for odeint (a Module, as odeint_adjoint requires)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, t, y):
        return self.fn(t, y)


_METHODS = {"euler": "euler", "heun": "heun2"}


def _divergence(drift, x, t, v=None):
    """tr(d drift/dx) per row by autograd, or v^T (d drift/dx) v (Hutchinson) for a probe v."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = drift(x, t)
        if v is not None:
            (vjp,) = torch.autograd.grad((out * v).sum(), x)
            return out.detach(), (vjp * v).sum(-1).detach()
        div = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(x.shape[1]):
            div = div + torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0][:, i]
    return out.detach(), div


class Torchdiffeq(Reference):
    """torchdiffeq's odeint on a fixed grid (euler, heun2) for ode_solve and log_likelihood."""

    @staticmethod
    def _odeint(func, y0, ts, method):
        from torchdiffeq import odeint

        return odeint(_Func(func), y0, ts, method=method)

    @classmethod
    def ode_solve(cls, drift, x, t_start, t_end, n, method="heun"):
        ts = torch.linspace(float(t_start), float(t_end), n + 1, dtype=x.dtype)
        return cls._odeint(lambda t, y: drift(y, float(t)), x, ts, _METHODS[method])[-1]

    @classmethod
    def log_likelihood(
        cls, process, score, prior_log_density, x0, n, t_eps=0.0, generator=None, probe=None
    ):
        v = None
        if probe is not None:
            v = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
            v = torch.sign(v) if probe == "rademacher" else v

        def drift(x, t):
            return process.f(x, t) - 0.5 * process.g(t) ** 2 * score(x, t)

        def func(t, state):
            return _divergence(drift, state[0], float(t), v)

        ts = torch.linspace(float(t_eps), 1.0, n + 1, dtype=x0.dtype)
        state0 = (x0, torch.zeros(x0.shape[0], dtype=x0.dtype))
        xs, integrals = cls._odeint(func, state0, ts, "heun2")
        return prior_log_density(xs[-1]) + integrals[-1]


class TorchdiffeqAdjoint(Torchdiffeq):
    """The same through torchdiffeq.odeint_adjoint."""

    @staticmethod
    def _odeint(func, y0, ts, method):
        from torchdiffeq import odeint_adjoint

        return odeint_adjoint(_Func(func), y0, ts, method=method, adjoint_params=())


# k-diffusion ------------------------------------------------------------------------------------

_KD = "_kdiffusion_sampling_alone"


def kdiffusion_sampling():
    """k_diffusion/sampling.py as a module of its own (see the module docstring)."""
    if _KD + ".sampling" in sys.modules:
        return sys.modules[_KD + ".sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        raise ModuleNotFoundError(
            "k-diffusion is not installed (pip install k-diffusion --no-deps)"
        )
    root = spec.submodule_search_locations[0]
    package = types.ModuleType(_KD)
    package.__path__ = [root]
    utils = types.ModuleType(_KD + ".utils")

    def append_dims(x, target_dims):  # k_diffusion/utils.py, verbatim in effect
        dims_to_append = target_dims - x.ndim
        if dims_to_append < 0:
            raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}")
        return x[(...,) + (None,) * dims_to_append]

    utils.append_dims = append_dims
    package.utils = utils
    sys.modules[_KD], sys.modules[_KD + ".utils"] = package, utils
    spec = importlib.util.spec_from_file_location(_KD + ".sampling", f"{root}/sampling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sigma_form_ode_solve(sampler, drift, x, t_start, t_end, n, method="heun"):
    """ode_solve through a sigma-form sampler (sample_euler / sample_heun of `sampler`): on the
    grid sigma = t + 1, the denoiser y - sigma drift(y, sigma - 1) makes its Euler / Heun step in
    sigma the solver's step in t."""
    sigmas = torch.linspace(float(t_start), float(t_end), n + 1, dtype=F64) + 1.0

    def denoiser(y, sigma):
        s = float(sigma[0])
        return y - s * drift(y, s - 1.0)

    step = {"euler": sampler.sample_euler, "heun": sampler.sample_heun}[method]
    return step(denoiser, x, sigmas)


class KDiffusion(Reference):
    """k-diffusion's samplers (k_diffusion.sampling), and its Euler and Heun samplers as the
    fixed-step ODE solver."""

    @staticmethod
    def sample_euler(denoiser, x, sigmas):
        return kdiffusion_sampling().sample_euler(denoiser, x, sigmas, disable=True)

    @staticmethod
    def sample_heun(denoiser, x, sigmas):
        return kdiffusion_sampling().sample_heun(denoiser, x, sigmas, disable=True)

    @staticmethod
    def sample_dpm_2(denoiser, x, sigmas):
        return kdiffusion_sampling().sample_dpm_2(denoiser, x, sigmas, disable=True)

    @staticmethod
    def sample_euler_ancestral(denoiser, x, sigmas, generator=None, eta=1.0):
        def noise(sigma, sigma_next):
            return torch.randn(x.shape, generator=generator, dtype=x.dtype)

        sampling = kdiffusion_sampling()
        return sampling.sample_euler_ancestral(
            denoiser, x, sigmas, disable=True, eta=eta, noise_sampler=noise
        )

    @staticmethod
    def get_sigmas_karras(n, sigma_min, sigma_max, rho=7.0):
        return kdiffusion_sampling().get_sigmas_karras(n, sigma_min, sigma_max, rho)

    ode_solve = classmethod(sigma_form_ode_solve)


ADAPTERS = {
    "reference": Reference,
    "torchsde": Torchsde,
    "torchdiffeq": Torchdiffeq,
    "torchdiffeq-adjoint": TorchdiffeqAdjoint,
    "kdiffusion": KDiffusion,
}

_TORCHDIFFEQ = Peer(
    library="torchdiffeq",
    claims=("SDE-05.*", "SDE-07"),
    not_asked={
        "SDE-01": "an ODE solver: no Brownian term (asked of torchsde)",
        "SDE-04": "an ODE solver: the reverse SDE has a Brownian term (asked of torchsde)",
    },
)
PEERS = {
    "torchsde": Peer(
        library="torchsde",
        claims=("SDE-01", "SDE-04"),
        not_asked={
            "SDE-05.half": "an SDE solver: the PF-ODE is an ODE (asked of torchdiffeq)",
            "SDE-07": "an SDE solver: the likelihood is an ODE integral (asked of torchdiffeq)",
        },
    ),
    "torchdiffeq": _TORCHDIFFEQ,
    "torchdiffeq-adjoint": _TORCHDIFFEQ,
    "kdiffusion": Peer(
        library="k-diffusion",
        claims=("SDE-04", "SDE-05.*", "DDIM-10"),
        not_asked={
            "SDE-01": "no forward-SDE integrator (its samplers run the reverse process in sigma)",
            "SDE-07": (
                "its log_likelihood(model, x, sigma_min, sigma_max) fixes the prior "
                "N(0, sigma_max^2 I), solves by dopri5 at atol = rtol = 1e-4 and draws its "
                "Rademacher probe from the global RNG: not the family's "
                "log_likelihood(process, score, prior, x0, n, ...) with fixed Heun steps"
            ),
        },
    ),
}

# diffusers' sigma-form schedulers: their module subclasses Reference, so it is imported here,
# after Reference is defined (import properties.adapters.sde before sde_diffusers).
from properties.adapters.sde_diffusers import Diffusers  # noqa: E402

ADAPTERS["diffusers"] = Diffusers
PEERS["diffusers"] = Peer(
    library="diffusers",
    claims=("SDE-05.*", "DDIM-10"),
    not_asked={
        "SDE-01": "no forward-SDE integrator (its schedulers run the reverse process in sigma)",
        "SDE-04": "EulerAncestralDiscreteScheduler is not wrapped: the adapter has only the "
        "deterministic Euler and Heun schedulers (sample_euler_ancestral is the reference's)",
        "SDE-07": "no likelihood: diffusers' schedulers only sample",
    },
)
