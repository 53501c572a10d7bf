"""Family `diffusion` (samplers and their steps): the functions its properties call.

Interface (impl/diffusion for the equations; abar_t = a, abar_tau = b, tensors in float64):
    ddpm_step(x_t, eps_hat, a, b, z, variance)       one ancestral step
    ddim_step(x_t, eps_hat, a, b, sigma, z)          one generalised DDIM step
    sigma_paper(eta, a, b), sigma_article(eta, a, b, alpha_t)
    ddim_sample(eps_model, x_T, abar, timesteps, eta, generator, sigma, to_data)
    ddim_plan(abar, timesteps, eta, sigma, to_data)  the sampler's steps [(t, a, b, sigma)]
    ddpm_sample(eps_model, x_T, abar, timesteps, generator, variance)
    ddim_invert(eps_model, x0, abar, timesteps), ode_euler_step(x_t, eps_hat, a, b)
    timesteps(T, n, spacing), slerp(x_a, x_b, u)
    q_sample(x0, a, eps)                             the forward marginal's draw (DDIM-01)
    posterior(x_t, x0, a, b) -> (mean, variance)     the DDPM posterior (DDIM-02)
    posterior_variance_article(a, b)                 the article's form of beta~ (DDIM-02)
    coefficients(a, b, sigma) -> (lambda, k)         the undetermined coefficients (DDIM-03)
    alphas_cumprod(betas)                            abar_t = prod_{i<=t} (1 - beta_i) (DDIM-01)
  Guidance (impl/diffusion/guidance.py, cfg_training.py; CFG-*):
    guided_mean(mu, s2, grad_log_classifier, gamma)  the mean of N(mu, s2 I) tilted by p(y|x)^gamma
    classifier_guided_eps(eps, a, grad_log_classifier, gamma)   eps - sqrt(1 - a) gamma grad
    cfg_w(eps_c, eps_u, w), cfg_s(eps_c, eps_u, s)  classifier-free guidance, the two scales
    implied_classifier_grad(eps_c, eps_u, a)        -(eps_c - eps_u) / sqrt(1 - a)
    drop_labels(y, p_uncond, n_classes, generator)  condition dropout to the null label n_classes
    cfg_train(data, abar, p_uncond, steps, generator, batch, lr)   one eps network for both
  Thresholding of x0_hat (impl/diffusion/thresholding.py; SD-18):
    static_threshold(x0_hat), percentile_s(x0_hat, p), dynamic_threshold(x0_hat, p, divide)
    threshold_sample(eps_model, x_T, abar, timesteps, method, p, to_data)   DDIM(eta = 0) with
                                                     x0_hat thresholded at every step
  The DDIM article's own code (impl/diffusion/ddim_article.py; DDIM-06, DDIM-12..16):
    article_ddim(num_train_timesteps, beta_start, beta_end, sample_steps, dtype)  its sampler
                                                     (class DDIM: sample, step, sigma, alphas_cumprod)
    article_timesteps(T, n)                          its timesteps int(linspace(T - 1, 0, n))
    ansatz_variance(a, b, sigma, rho), correlated_normals(rho, n, generator)   its derivation (1)
    to_image(images), to_uint8(image)                its output mapping (4) and 8-bit pixels
    article_slerp(x0, x1, alpha), grid_from_corners(tl, tr, bl, br, rows, cols),
    interpolation_grid(rows, cols, in_channels, sample_size, generator, dtype)   its grid (5)-(6)

An adapter that cannot do what a call asks (a spacing, a sigma or a stop its library has no
setting for) raises NotImplementedError naming what; its PEERS entry lists those claims as
not asked.

TOOLS: the impl code the diffusion properties (and others) call directly, as inputs or measures.
"""

import torch

from impl.diffusion import ddim, ddpm, schedules
from properties.adapters import Peer, late

_GUIDANCE, _CFG_TRAINING = "impl.diffusion.guidance", "impl.diffusion.cfg_training"
_THRESHOLDING, _ARTICLE = "impl.diffusion.thresholding", "impl.diffusion.ddim_article"

TOOLS = {
    "impl.diffusion.oracle": "Gaussian-mixture data with exact scores, eps and class posteriors: "
    "the models and oracles the samplers are run on and compared with",
    "impl.diffusion.schedules.linear_betas": "the beta schedule fed in (DDPM's linear betas)",
    "impl.diffusion.schedules.eps_to_x0": "x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a), the "
    "expected value a step is compared with",
    "impl.diffusion.thresholding.display": "the image range clip(x, -1, 1): a measure of outputs",
    "impl.diffusion.thresholding.saturated_fraction": "the share of saturated entries: a measure",
    "impl.diffusion.guidance.tilted_score": "the exact score of the noised tilted density by "
    "quadrature: the oracle the guided score is compared with",
}

F64 = torch.float64


class Reference:
    """The project's implementation, impl/diffusion."""

    ddpm_step = staticmethod(ddpm.ancestral_step)
    ddim_step = staticmethod(ddim.step)
    sigma_paper = staticmethod(ddim.sigma_paper)
    sigma_article = staticmethod(ddim.sigma_article)
    ddim_sample = staticmethod(ddim.sample)
    ddim_plan = staticmethod(ddim.plan)
    ddpm_sample = staticmethod(ddpm.sample)
    ddim_invert = staticmethod(ddim.invert)
    ode_euler_step = staticmethod(ddim.ode_euler_step)
    timesteps = staticmethod(schedules.timesteps)
    slerp = staticmethod(ddim.slerp)

    # looked up at call time: the rejected variants of DDIM-01..03 patch these in impl
    @staticmethod
    def q_sample(x0, a, eps):
        return ddpm.q_sample(x0, a, eps)

    @staticmethod
    def posterior(x_t, x0, a, b):
        return ddpm.posterior(x_t, x0, a, b)

    @staticmethod
    def posterior_variance_article(a, b):
        return ddpm.posterior_variance_article(a, b)

    @staticmethod
    def coefficients(a, b, sigma):
        return ddim.coefficients(a, b, sigma)

    alphas_cumprod = late(schedules, "alphas_cumprod")

    guided_mean = late(_GUIDANCE, "guided_mean")
    classifier_guided_eps = late(_GUIDANCE, "classifier_guided_eps")
    cfg_w = late(_GUIDANCE, "cfg_w")
    cfg_s = late(_GUIDANCE, "cfg_s")
    implied_classifier_grad = late(_GUIDANCE, "implied_classifier_grad")
    drop_labels = late(_CFG_TRAINING, "drop_labels")
    cfg_train = late(_CFG_TRAINING, "train")

    static_threshold = late(_THRESHOLDING, "static_threshold")
    percentile_s = late(_THRESHOLDING, "percentile_s")
    dynamic_threshold = late(_THRESHOLDING, "dynamic_threshold")
    threshold_sample = late(_THRESHOLDING, "sample")

    article_ddim = late(_ARTICLE, "DDIM")
    article_timesteps = late(ddim, "article_timesteps")
    ansatz_variance = late(_ARTICLE, "ansatz_variance")
    correlated_normals = late(_ARTICLE, "correlated_normals")
    to_image = late(_ARTICLE, "to_image")
    to_uint8 = late(_ARTICLE, "to_uint8")
    article_slerp = late(_ARTICLE, "slerp")
    grid_from_corners = late(_ARTICLE, "grid_from_corners")
    interpolation_grid = late(_ARTICLE, "interpolation_grid")


# diffusers --------------------------------------------------------------------------------------
#
# diffusers' schedulers index their own table alphas_cumprod (float32 from their beta schedule)
# by integer timesteps. The adapter replaces that table by the float64 abar the property gives
# (so the comparison measures diffusers' formulas, not its float32 table; the configuration-space
# tests in test_diffusion_diffusers.py keep the float32 tables), and:
# - a single step from abar_t = a to abar_tau = b runs the scheduler on the two-entry table
#   [b, a] at timestep 1 with stride 1 (num_train_timesteps = num_inference_steps = 2), or on
#   [a] at timestep 0 with final_alpha_cumprod = b = 1 (the step to the data);
# - a DDIM sigma is passed as diffusers' eta = sigma / sqrt(its variance(t, tau));
# - a sampler over timesteps that are diffusers' own ("leading" spacing, steps_offset 0,
#   T = len(abar)) is the pipelines' loop on the scheduler itself: for t in scheduler.timesteps:
#   x = scheduler.step(model(x, t), t, x, eta, generator).prev_sample. Other sub-sequences have
#   no setting in DDIMScheduler (its stride is T // n whatever the spacing: the DDIM-08.linear
#   finding) and run the same loop one two-entry table per step.


def _ddim_scheduler(table, final):
    from diffusers import DDIMScheduler

    s = DDIMScheduler(num_train_timesteps=len(table), clip_sample=False, set_alpha_to_one=True,
                      timestep_spacing="leading")  # fmt: skip
    s.set_timesteps(len(table))
    s.alphas_cumprod = torch.as_tensor(table, dtype=F64)
    s.final_alpha_cumprod = torch.tensor(final, dtype=F64)
    return s


def _pair(a, b):
    """(scheduler, timestep) whose step goes from abar = a to abar = b."""
    return (_ddim_scheduler([b, a], 1.0), 1) if b < 1 else (_ddim_scheduler([a], 1.0), 0)


def _batch(x):
    """DDPMScheduler.step reads shape[1] (channels): a 0-d or 1-d tensor becomes one row."""
    return x.reshape(1, -1) if x.dim() < 2 else x


def _eta_of(s, t, sigma):
    var = float(s._get_variance(t, t - s.config.num_train_timesteps // s.num_inference_steps))
    if sigma == 0:
        return 0.0
    if var <= 0:
        raise NotImplementedError(f"sigma = {sigma} on a step where diffusers' variance is 0")
    return sigma / var**0.5


def _own_ddim(abar, timesteps, set_alpha_to_one=True):
    """diffusers' DDIMScheduler on abar when `timesteps` are its own leading spacing, else None."""
    ts = [int(t) for t in torch.as_tensor(timesteps).tolist()]
    abar = torch.as_tensor(abar, dtype=F64)
    T = abar.numel()
    if len(ts) > T or ts != [k * (T // len(ts)) for k in range(len(ts) - 1, -1, -1)]:
        return None
    s = _ddim_scheduler(abar, 1.0)
    s.set_timesteps(len(ts))
    assert s.timesteps.tolist() == ts, (s.timesteps.tolist(), ts)
    return s


class Diffusers(Reference):
    """diffusers' DDIMScheduler (ddim_step, ddim_plan, ddim_sample, timesteps), DDPMScheduler
    (ddpm_step, ddpm_sample, q_sample = add_noise), DDIMInverseScheduler (ddim_invert) and
    EulerDiscreteScheduler (ode_euler_step: its Euler step in sigma = sqrt((1 - abar)/abar) on
    xbar = x_t / sqrt(abar)), with the tables and conventions described above. sigma_paper,
    sigma_article and slerp are the reference's (diffusers has no such function); posterior,
    posterior_variance_article and coefficients are formulas inside its steps, not functions:
    they raise NotImplementedError (DDIM-02, DDIM-03 are not asked)."""

    @staticmethod
    def posterior(x_t, x0, a, b):
        raise NotImplementedError("diffusers has no posterior function (inside DDPMScheduler.step)")

    @staticmethod
    def posterior_variance_article(a, b):
        raise NotImplementedError("diffusers has no posterior function (inside DDPMScheduler.step)")

    @staticmethod
    def coefficients(a, b, sigma):
        raise NotImplementedError("diffusers has no DDIM coefficients function")

    @staticmethod
    def ddim_step(x_t, eps_hat, a, b, sigma, z):
        s, t = _pair(a, b)
        eta = _eta_of(s, t, sigma)
        noise = z if eta > 0 else None
        return s.step(eps_hat, t, x_t, eta=eta, variance_noise=noise).prev_sample

    @staticmethod
    def ddpm_step(x_t, eps_hat, a, b, z, variance="posterior"):
        """DDPMScheduler.step takes no noise argument, only a generator: its module's randn_tensor
        is replaced by one returning z for the call."""
        from unittest import mock

        from diffusers import DDPMScheduler
        from diffusers.schedulers import scheduling_ddpm

        kind = {"posterior": "fixed_small", "large": "fixed_large"}[variance]
        s = DDPMScheduler(num_train_timesteps=2, clip_sample=False, variance_type=kind)
        # the step to the data (b = 1) is diffusers' step from its timestep 0 to "one"
        s.alphas_cumprod = torch.tensor([b, a] if b < 1 else [a], dtype=F64)
        shape, (x_t, eps_hat, z) = x_t.shape, (_batch(v) for v in (x_t, eps_hat, z))
        with mock.patch.object(scheduling_ddpm, "randn_tensor", lambda *_, **__: z):
            return s.step(eps_hat, 1 if b < 1 else 0, x_t).prev_sample.reshape(shape)

    @staticmethod
    def ddim_plan(abar, timesteps, eta, sigma="paper", to_data=True):
        if sigma != "paper" or not to_data:
            raise NotImplementedError(
                f"diffusers' DDIMScheduler: sigma = {sigma!r}, to_data = {to_data}"
            )
        s = _own_ddim(abar, timesteps)
        if s is None:
            raise NotImplementedError("diffusers' DDIMScheduler: timesteps that are not its own")
        stride = s.config.num_train_timesteps // s.num_inference_steps
        steps = []
        for t in s.timesteps.tolist():
            prev = t - stride
            b = s.alphas_cumprod[prev].item() if prev >= 0 else s.final_alpha_cumprod.item()
            steps.append(
                (t, s.alphas_cumprod[t].item(), b, eta * float(s._get_variance(t, prev)) ** 0.5)
            )
        return steps

    @staticmethod
    def ddim_sample(
        eps_model, x_T, abar, timesteps, eta, generator=None, sigma="paper", to_data=True
    ):
        if sigma != "paper":
            raise NotImplementedError("diffusers' DDIMScheduler has only the paper's sigma(eta)")
        abar = torch.as_tensor(abar, dtype=F64)
        ts = [int(t) for t in torch.as_tensor(timesteps).tolist()]
        own = _own_ddim(abar, ts) if to_data else None
        x = x_T
        if own is not None:
            for t in own.timesteps.tolist():
                x = own.step(eps_model(x, t), t, x, eta=eta, generator=generator).prev_sample
            return x
        targets = [abar[tau].item() for tau in ts[1:]] + ([1.0] if to_data else [])
        for t, b in zip(ts, targets, strict=False):
            s, k = _pair(abar[t].item(), b)
            x = s.step(eps_model(x, t), k, x, eta=eta, generator=generator).prev_sample
        return x

    @staticmethod
    def ddpm_sample(eps_model, x_T, abar, timesteps, generator=None, variance="posterior"):
        from diffusers import DDPMScheduler

        kind = {"posterior": "fixed_small", "large": "fixed_large"}[variance]
        abar = torch.as_tensor(abar, dtype=F64)
        s = DDPMScheduler(num_train_timesteps=abar.numel(), clip_sample=False, variance_type=kind)
        s.set_timesteps(timesteps=[int(t) for t in torch.as_tensor(timesteps).tolist()])
        s.alphas_cumprod = abar
        x = _batch(x_T)
        for t in s.timesteps.tolist():
            eps = _batch(eps_model(x.reshape(x_T.shape), t))
            x = s.step(eps, t, x, generator=generator).prev_sample
        return x.reshape(x_T.shape)

    @staticmethod
    def ddim_invert(eps_model, x0, abar, timesteps):
        """DDIMInverseScheduler as diffusers' inversion pipelines run it: through increasing
        timesteps, the model evaluated at the step's target t (the reference evaluates it at the
        current, less noisy timestep)."""
        from diffusers import DDIMInverseScheduler

        abar = torch.as_tensor(abar, dtype=F64)
        ts = [int(t) for t in torch.as_tensor(timesteps).tolist()]
        T = abar.numel()
        if ts != [k * (T // len(ts)) for k in range(len(ts) - 1, -1, -1)]:
            raise NotImplementedError("DDIMInverseScheduler: timesteps that are not its own")
        s = DDIMInverseScheduler(num_train_timesteps=T, clip_sample=False, set_alpha_to_one=True)
        s.set_timesteps(len(ts))
        s.alphas_cumprod = abar
        s.initial_alpha_cumprod = torch.tensor(1.0, dtype=F64)
        x = x0
        for t in s.timesteps.tolist():
            x = s.step(eps_model(x, t), t, x).prev_sample
        return x

    @staticmethod
    def ode_euler_step(x_t, eps_hat, a, b):
        from diffusers import EulerDiscreteScheduler

        s = EulerDiscreteScheduler(num_train_timesteps=2)
        s.set_timesteps(1)
        s.sigmas = torch.tensor([((1 - a) / a) ** 0.5, ((1 - b) / b) ** 0.5], dtype=F64)
        s.timesteps = torch.tensor([1.0], dtype=F64)
        s._step_index = 0
        s.is_scale_input_called = True
        xbar = s.step(eps_hat, s.timesteps[0], x_t / a**0.5).prev_sample
        return b**0.5 * xbar

    @staticmethod
    def timesteps(T, n, spacing):
        from diffusers import DDIMScheduler

        if spacing not in ("leading", "trailing", "linspace"):
            raise NotImplementedError(f"diffusers' DDIMScheduler has no spacing {spacing!r}")
        s = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
        s.set_timesteps(n)
        return s.timesteps

    @staticmethod
    def q_sample(x0, a, eps):
        from diffusers import DDPMScheduler

        s = DDPMScheduler(num_train_timesteps=1)
        s.alphas_cumprod = torch.tensor([a], dtype=F64)
        return s.add_noise(x0, eps, torch.tensor([0]))


class DiffusersDPMSolver(Diffusers):
    """diffusers' DPMSolverMultistepScheduler, first order (solver_order = 1, "dpmsolver++", the
    exponential integrator in lambda = log(sqrt(abar) / sqrt(1 - abar))), as the step that DDIM-10
    says DDIM(eta = 0) is: ode_euler_step(x_t, eps, a, b) is one step of it on the sigma table
    [sqrt((1 - a)/a), sqrt((1 - b)/b)] (float64), the sample x_t itself (not x_t / sqrt(a)). Its
    first-order update is exactly DDIM(eta = 0) in exact arithmetic; every other function is the
    diffusers adapter's."""

    @staticmethod
    def ode_euler_step(x_t, eps_hat, a, b):
        from diffusers import DPMSolverMultistepScheduler

        s = DPMSolverMultistepScheduler(num_train_timesteps=2, solver_order=1,
                                        algorithm_type="dpmsolver++", final_sigmas_type="zero")  # fmt: skip
        s.set_timesteps(1)
        s.sigmas = torch.tensor([((1 - a) / a) ** 0.5, ((1 - b) / b) ** 0.5], dtype=F64)
        s.timesteps = torch.tensor([1])
        s._step_index = 0
        return s.step(eps_hat, s.timesteps[0], x_t).prev_sample


ADAPTERS = {
    "reference": Reference,
    "diffusers": Diffusers,
    "diffusers-dpmsolver": DiffusersDPMSolver,
}

PEERS = {
    "diffusers": Peer(
        library="diffusers",
        claims=("DDIM-01", "DDIM-04", "DDIM-05", "DDIM-07", "DDIM-09*", "DDIM-10"),
        not_asked={
            "DDIM-02": "the posterior is a formula inside DDPMScheduler.step (its steps are asked "
            "through DDIM-05), not a function; its sampler's last step from t > 0 is a finding",
            "DDIM-03": "a statement about the coefficients lambda, k: no diffusers function",
            "DDIM-06*": "DDIMScheduler has only the paper's sigma(eta), not the article's "
            "single-step sigma, and always takes the step to the data",
            "DDIM-08*": "DDIMScheduler has no floor(c i) or floor(c i^2) spacing (leading is "
            "k (T // n)); its trailing and linspace strides are the DDIM-08.linear findings",
            "DDIM-11": "diffusers has no slerp",
            "DDIM-12": "a derivation step: no diffusers function",
            "DDIM-13*": "a derivation step: no diffusers function",
            "DDIM-14": "the article's own sampler code, not diffusers'",
            "DDIM-15*": "the article's own grid code; diffusers has no slerp",
            "DDIM-16": "the article's timesteps int(linspace(999, 0, n)) are not a DDIMScheduler "
            "spacing",
        },
    ),
    "diffusers-dpmsolver": Peer(
        library="diffusers",
        claims=("DDIM-10",),
        not_asked={
            "DDIM-0[1-9]*": "asked of the diffusers peer (this one replaces only the DDIM(eta = 0) "
            "step's ODE view by DPMSolverMultistepScheduler)",
        },
    ),
}
