"""Text to image in latent space with classifier-free guidance (SD-03, SD-04).

    z_T ~ N(0, I) of shape (B, 4, H/8, W/8)
    for t -> t' over the DDIM timesteps (spacing "leading" + steps_offset, as Stable Diffusion):
        eps_u, eps_c = eps_theta([z_t, z_t], t, [tau(""), tau(y)])     one batched pass
        eps = eps_u + s (eps_c - eps_u)       (guidance scale s >= 0; guidance.cfg_s)
        z_t' = DDIM step from abar_t to abar_t' (abar_t' = final_abar after the last timestep)
    x = decode(z_0 / scale)
The schedule is "scaled linear": sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012), T = 1000.
The denoiser and the decoder are callables, so the same loop drives this package's UNet and
autoencoder, or diffusers' UNet2DConditionModel and AutoencoderKL (properties/test_sd_*).
"""

import torch

from impl.diffusion import ddim, schedules
from impl.diffusion import guidance as cfg
from impl.diffusion.latent import autoencoder

T = 1000


def scaled_linear_abar(dtype=torch.float64):
    return schedules.alphas_cumprod(schedules.scaled_linear_betas(T)).to(dtype)


def sd_timesteps(steps, steps_offset):
    """Stable Diffusion's DDIM timesteps: leading spacing, shifted by steps_offset."""
    return schedules.timesteps(T, steps, "leading") + steps_offset


def generate(denoise, decode, cond, uncond, *, steps, guidance, latent_shape, latent_scale,
             generator=None, eta=0.0, steps_offset=1, abar=None, final_abar=None,
             dtype=torch.float32):  # fmt: skip
    """Images for a batch of conditions.

    denoise(z, t, context, mask) -> eps for a batch (t: (B,) long); decode(z) -> images.
    cond, uncond: (context, mask or None) for the prompts and for the empty prompt, batch B.
    abar: the schedule (default: scaled linear in float64); final_abar: abar after the last step
    (Stable Diffusion: abar[0], set_alpha_to_one=False)."""
    if guidance < 0:
        raise ValueError(f"guidance: the scale s must be >= 0, got {guidance}")
    abar = scaled_linear_abar() if abar is None else abar
    final_abar = float(abar[0]) if final_abar is None else final_abar
    ts = sd_timesteps(steps, steps_offset).tolist()
    z = torch.randn(latent_shape, generator=generator, dtype=dtype)
    context = torch.cat([uncond[0], cond[0]])
    mask = None if cond[1] is None else torch.cat([uncond[1], cond[1]])
    for i, t in enumerate(ts):
        a = float(abar[t])
        b = float(abar[ts[i + 1]]) if i + 1 < len(ts) else final_abar
        t_batch = torch.full((2 * latent_shape[0],), t, dtype=torch.long)
        eps_u, eps_c = denoise(torch.cat([z, z]), t_batch, context, mask).chunk(2)
        eps = cfg.cfg_s(eps_c, eps_u, guidance)
        sigma = ddim.sigma_paper(eta, a, b)
        noise = torch.randn(z.shape, generator=generator, dtype=dtype) if sigma else None
        z = ddim.step(z, eps, a, b, sigma, noise)
    return decode(autoencoder.from_diffusion(z, latent_scale))
