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
"""

from impl.diffusion import ddim, ddpm, schedules


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


ADAPTERS = {"reference": Reference}
