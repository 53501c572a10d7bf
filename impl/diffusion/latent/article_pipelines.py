"""The article's img2img and legacy inpainting loops (SD-15, SD-16), as the diffusers code the
article walks through writes them (StableDiffusionImg2ImgPipeline, and the first
StableDiffusionInpaintPipeline, later ...InpaintPipelineLegacy), with the article's names, beside
the project's text-to-image loop (pipeline.generate: same CFG, same deterministic DDIM step).

img2img
(1) init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    t_start       = max(num_inference_steps - init_timestep, 0)
    timesteps     = scheduler.timesteps[t_start:]            (get_timesteps)
(2) latents = add_noise(init_latents, noise, timesteps[0])
            = sqrt(abar_t) init_latents + sqrt(1 - abar_t) noise,  noise ~ N(0, I)
(3) for t in timesteps:
        noise_pred_uncond, noise_pred_text = eps_theta([latents, latents], t, [uncond, cond])
        noise_pred = noise_pred_uncond + s (noise_pred_text - noise_pred_uncond)
        latents = DDIM step (eta = 0) from abar_t to abar of the next timestep (final_abar after
                  the last: Stable Diffusion's set_alpha_to_one=False gives abar[0])
    "Denoise as many steps as noise was added"; at strength 1 the start is timesteps[0] of the
    whole schedule (980 or 981 with 50 steps), where sqrt(abar) is ~0.076, not 0.

Legacy inpainting (the same loop, then a mask)
(4) mask = 1 - tile(nearest_resize(mask_image, 1/8), 4 channels): the mask image has 1 (white)
    where to repaint; the latent mask has 1 where to keep (preprocess_mask; Pillow's nearest
    resize samples the source pixel at (i + 1/2) H / h, accumulated, truncated).
(5) init_latents_orig = init_latents; latents = (2); in the loop (3), after each step
        init_latents_proper = add_noise(init_latents_orig, noise, t)
        latents = init_latents_proper * mask + latents * (1 - mask)
    t is the timestep the step started from: the stepped latents are at the next timestep, the
    kept region one step noisier; after the last step the kept region is
    add_noise(init_latents_orig, noise, t_last), not init_latents_orig.
"""

import torch

from impl import _checks
from impl.diffusion import ddim
from impl.diffusion import guidance as cfg
from impl.diffusion.latent import pipeline


def get_timesteps(timesteps, num_inference_steps, strength):
    """(1): (timesteps[t_start:], init_timestep). timesteps: the scheduler's 1-D integer tensor of
    num_inference_steps >= 1 decreasing timesteps; strength in [0, 1] with
    int(num_inference_steps * strength) >= 1 (at least one step to denoise)."""
    num_inference_steps = _checks.integer("num_inference_steps", num_inference_steps, lo=1)
    _timesteps(timesteps, num_inference_steps)
    _checks.scalar("strength", strength, lo=0, hi=1)
    init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
    if init_timestep < 1:
        raise ValueError(
            f"strength: int({num_inference_steps} x {strength}) = 0 steps to denoise; at least "
            f"one is needed (strength >= 1 / num_inference_steps)"
        )
    t_start = max(num_inference_steps - init_timestep, 0)
    return timesteps[t_start:], init_timestep


def add_noise(init_latents, noise, abar_t):
    """(2): sqrt(abar_t) init_latents + sqrt(1 - abar_t) noise (DDIMScheduler.add_noise);
    init_latents and noise finite floating tensors of one shape, abar_t in [0, 1]."""
    _checks.pair("init_latents", init_latents, "noise", noise)
    abar_t = float(_checks.scalar("abar_t", abar_t, lo=0, hi=1))
    return abar_t**0.5 * init_latents + (1 - abar_t) ** 0.5 * noise


def preprocess_mask(mask_image, scale_factor=8):
    """(4): the latent mask (1, 4, H // scale_factor, W // scale_factor), 1 = keep, of a mask
    image (H, W) with values in [0, 1] (1 = repaint), H and W >= scale_factor; scale_factor a
    positive integer."""
    scale_factor = _checks.integer("scale_factor", scale_factor, lo=1)
    _checks.tensor("mask_image", mask_image, ndim=2)
    _checks.number("mask_image", mask_image, lo=0, hi=1)
    H, W = mask_image.shape
    if H < scale_factor or W < scale_factor:
        raise ValueError(
            f"mask_image: shape {(H, W)} is smaller than scale_factor = {scale_factor}"
        )
    h, w = H // scale_factor, W // scale_factor
    small = mask_image.float()[_nearest(H, h)][:, _nearest(W, w)]
    return 1 - small.expand(1, 4, h, w)  # repaint white, keep black


def _nearest(n_in, n_out):
    """Pillow's NEAREST resize source indices: the sample point starts at s / 2, s = n_in / n_out,
    and moves by s per output pixel (accumulated in double, as its affine transform does), then is
    truncated; floor((i + 1/2) s) computed directly can differ by one (52 -> 6: 39 vs 38)."""
    s, v, index = n_in / n_out, n_in / n_out * 0.5, []
    for _ in range(n_out):
        index.append(min(int(v), n_in - 1))
        v += s
    return torch.tensor(index)


def img2img(denoise, init_latents, cond, uncond, *, steps, strength, guidance, generator=None,
            steps_offset=1, abar=None, final_abar=None):  # fmt: skip
    """(1)-(3): the denoised latents (B, C, h, w) from init_latents (B, C, h, w), a finite float
    tensor (the autoencoder's latents times the scale factor). denoise, cond, uncond, guidance,
    generator, abar, final_abar as pipeline.generate; steps in [1, T] and steps_offset >= 0 as
    pipeline.sd_timesteps; strength as get_timesteps."""
    latents, noise, timesteps, ctx = _start(denoise, init_latents, cond, uncond, steps, strength,
                                            guidance, generator, steps_offset, abar, final_abar)  # fmt: skip
    for i in range(len(timesteps)):
        latents = _step(denoise, latents, timesteps, i, ctx, guidance)
    return latents


def inpaint_legacy(denoise, init_latents, mask_image, cond, uncond, *, steps, strength, guidance,
                   generator=None, steps_offset=1, abar=None, final_abar=None,
                   callback=None):  # fmt: skip
    """(1)-(5): the latents after the legacy inpainting loop. mask_image (8h, 8w) in [0, 1]
    (1 = repaint) for init_latents (B, C, h, w) with C = 4; the other arguments as img2img.
    callback(i, t, latents, init_latents_proper), if given (a callable), sees each step's
    stepped latents and the replacement before they are mixed."""
    if callback is not None:
        _checks.function("callback", callback)
    latents, noise, timesteps, ctx = _start(denoise, init_latents, cond, uncond, steps, strength,
                                            guidance, generator, steps_offset, abar, final_abar)  # fmt: skip
    mask = preprocess_mask(mask_image).to(latents.dtype)
    if mask.shape[1:] != latents.shape[1:]:
        raise ValueError(
            f"mask_image: gives a latent mask {tuple(mask.shape[1:])} for latents of shape "
            f"{tuple(latents.shape[1:])}; the mask image must be 8 times the latents' h and w"
        )
    init_latents_orig = init_latents
    for i, t in enumerate(timesteps):
        latents = _step(denoise, latents, timesteps, i, ctx, guidance)
        init_latents_proper = add_noise(init_latents_orig, noise, _proper_abar(ctx, timesteps, i))
        if callback is not None:
            callback(i, t, latents, init_latents_proper)
        latents = init_latents_proper * mask + latents * (1 - mask)
    return latents


def _proper_abar(ctx, timesteps, i):
    """(5): the replacement's noise level: abar at the step's own timestep t."""
    return float(ctx["abar"][timesteps[i]])


def _timesteps(timesteps, n):
    if not isinstance(timesteps, torch.Tensor) or timesteps.dtype.is_floating_point:
        raise TypeError(f"timesteps: expected an integer tensor, got {timesteps!r:.60}")
    if timesteps.shape != (n,):
        raise ValueError(
            f"timesteps: expected num_inference_steps = {n} timesteps, got shape "
            f"{tuple(timesteps.shape)}"
        )
    if (timesteps < 0).any() or (timesteps[1:] >= timesteps[:-1]).any():
        raise ValueError(f"timesteps: must be >= 0 and decreasing, got {timesteps.tolist()!r:.60}")


def _start(denoise, init_latents, cond, uncond, steps, strength, guidance, generator,
           steps_offset, abar, final_abar):  # fmt: skip
    """Checks, then (latents noised to timesteps[0], noise, timesteps, context) of (1)-(2)."""
    _checks.function("denoise", denoise)
    _checks.tensor("init_latents", init_latents, ndim=4)
    if init_latents.shape[0] == 0 or 0 in init_latents.shape:
        raise ValueError(f"init_latents: an empty shape {tuple(init_latents.shape)}")
    timesteps, _ = get_timesteps(pipeline.sd_timesteps(steps, steps_offset), steps, strength)
    _checks.scalar("guidance", guidance, lo=0)
    _checks.generator("generator", generator)
    context, mask = pipeline._conditions(cond, uncond, init_latents.shape[0])
    abar = pipeline.scaled_linear_abar() if abar is None else pipeline._abar(abar)
    final_abar = float(abar[0]) if final_abar is None else final_abar
    _checks.scalar("final_abar", final_abar, lo=float(abar[int(timesteps[-1])]), hi=1)
    noise = torch.randn(init_latents.shape, generator=generator, dtype=init_latents.dtype)
    latents = add_noise(init_latents, noise, float(abar[int(timesteps[0])]))
    ctx = dict(context=context, mask=mask, abar=abar, final_abar=float(final_abar))
    return latents, noise, timesteps.tolist(), ctx


def _step(denoise, latents, timesteps, i, ctx, guidance):
    """(3): one guided deterministic DDIM step from timesteps[i] to the next level."""
    t = timesteps[i]
    B = latents.shape[0]
    a = float(ctx["abar"][t])
    b = float(ctx["abar"][timesteps[i + 1]]) if i + 1 < len(timesteps) else ctx["final_abar"]
    t_batch = torch.full((2 * B,), t, dtype=torch.long)
    noise_pred = denoise(torch.cat([latents] * 2), t_batch, ctx["context"], ctx["mask"])
    if not isinstance(noise_pred, torch.Tensor) or noise_pred.shape != (2 * B, *latents.shape[1:]):
        raise ValueError(
            f"denoise: returned {getattr(noise_pred, 'shape', type(noise_pred).__name__)} for a "
            f"batch of shape {(2 * B, *latents.shape[1:])}; eps must have the batch's shape"
        )
    noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
    noise_pred = cfg.cfg_s(noise_pred_text, noise_pred_uncond, guidance)
    return ddim.step(latents, noise_pred, a, b, 0.0, None)
