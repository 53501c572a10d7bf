"""The `latent` family's diffusers peer (diffusers 0.42.1): Stable Diffusion's scheduler and its
img2img pipeline behind the family's functions (properties/adapters/latent.py).

- sd_timesteps(steps, steps_offset): DDIMScheduler with Stable Diffusion's configuration
  (scaled_linear, beta 0.00085..0.012, set_alpha_to_one=False, leading spacing, the given
  steps_offset), set_timesteps(steps).timesteps;
- scaled_linear_abar(dtype): that scheduler's alphas_cumprod (computed in float32), cast;
- get_timesteps(timesteps, steps, strength): StableDiffusionImg2ImgPipeline.get_timesteps on that
  scheduler with the given timesteps;
- img2img(...): StableDiffusionImg2ImgPipeline.__call__ with the init latents as a 4-channel
  image (its VaeImageProcessor passes latents through; no VAE), prompt_embeds and
  negative_prompt_embeds the contexts, output_type "latent". Its UNet is the family's `denoise`
  in a module that maps diffusers' call (sample, scalar timestep, encoder_hidden_states) to the
  family's (z, timesteps of the batch, context, mask): the text mask, which diffusers has none
  of, is the [uncond; cond] masks for a batch of 2B and the cond masks for B (guidance <= 1,
  where diffusers runs the conditional branch only). The scheduler is set after construction
  (`pipe.scheduler = ...`, as users swap schedulers): the constructor rewrites steps_offset 0 to
  1. abar, when given, replaces the scheduler's alphas_cumprod (final abar: its first entry, or
  final_abar), as the `diffusion` family's diffusers adapter does.
- inpaint_legacy(...): StableDiffusionInpaintPipelineLegacy (deprecated, still shipped) the same
  way, the mask image as the 8-bit PIL image its preprocess_mask reads, the init latents given by
  an autoencoder whose encode returns them (scaling_factor 1, 8x: it draws nothing from the
  generator, so the noise is the generator's first draw, as in the reference). Its callback
  sees the latents after the step's mixing: those are the stepped latents on the repainted
  region and the replacement on the kept one, and are passed as both. It pastes the clean init
  latents over the kept region after its loop (the SD-16 finding).

Everything else is the reference's (the tiny model, its training, the text-to-image loop: see
latent.py for why StableDiffusionPipeline is compared in SD-04's property, not wrapped here).
"""

from types import SimpleNamespace

import torch

from properties.adapters.latent import Reference

SD_CONFIG = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 clip_sample=False, set_alpha_to_one=False, timestep_spacing="leading")  # fmt: skip


def _scheduler(steps_offset=1, abar=None, final_abar=None):
    from diffusers import DDIMScheduler

    s = DDIMScheduler(steps_offset=steps_offset, **SD_CONFIG)
    if abar is not None:
        s.alphas_cumprod = torch.as_tensor(abar)
        s.final_alpha_cumprod = s.alphas_cumprod[0]
    if final_abar is not None:
        s.final_alpha_cumprod = torch.tensor(float(final_abar), dtype=s.alphas_cumprod.dtype)
    return s


class _Denoiser(torch.nn.Module):
    """The family's denoise(z, t, context, mask) as the UNet diffusers' pipeline calls."""

    def __init__(self, denoise, masks, dtype):
        super().__init__()
        self.denoise, self.masks, self.dtype = denoise, masks, dtype
        self.device = torch.device("cpu")
        self.config = SimpleNamespace(time_cond_proj_dim=None, in_channels=4)

    def forward(self, sample, timestep, encoder_hidden_states=None, return_dict=False, **_):
        t = torch.full((sample.shape[0],), int(timestep), dtype=torch.long)
        mask = self.masks.get(sample.shape[0])
        return (self.denoise(sample, t, encoder_hidden_states, mask),)


class _Encoder(torch.nn.Module):
    """An autoencoder whose encode(image) is the latents `image` (8x, scaling factor 1)."""

    def __init__(self):
        super().__init__()
        self.device = torch.device("cpu")
        self.config = SimpleNamespace(scaling_factor=1.0, block_out_channels=(1,) * 4)

    def encode(self, image):
        return SimpleNamespace(latent_dist=SimpleNamespace(sample=lambda generator=None: image))


def _pipe(cls, denoise, cond, uncond, steps_offset, abar, final_abar, **modules):
    """A diffusers pipeline of class `cls` on the family's denoise, conditions and schedule."""
    (c, mc), (u, mu) = cond, uncond
    masks = {} if mc is None else {c.shape[0]: mc, 2 * c.shape[0]: torch.cat([mu, mc])}
    pipe = cls(vae=modules.get("vae"), text_encoder=None, tokenizer=None,
               unet=_Denoiser(denoise, masks, c.dtype), scheduler=_scheduler(),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)  # fmt: skip
    pipe.scheduler = _scheduler(steps_offset, abar, final_abar)
    pipe.set_progress_bar_config(disable=True)
    return pipe, dict(prompt_embeds=c, negative_prompt_embeds=u, output_type="latent")


class Diffusers(Reference):
    """diffusers' DDIMScheduler (SD's configuration) and StableDiffusionImg2ImgPipeline (module
    docstring); the other functions are the reference's."""

    @staticmethod
    def sd_timesteps(steps, steps_offset=1):
        s = _scheduler(steps_offset)
        s.set_timesteps(steps)
        return s.timesteps

    @staticmethod
    def scaled_linear_abar(dtype=torch.float64):
        return _scheduler().alphas_cumprod.to(dtype)

    @staticmethod
    def get_timesteps(timesteps, num_inference_steps, strength):
        from diffusers import StableDiffusionImg2ImgPipeline

        s = _scheduler()
        s.timesteps = timesteps
        return StableDiffusionImg2ImgPipeline.get_timesteps(
            SimpleNamespace(scheduler=s), num_inference_steps, strength, "cpu"
        )

    @staticmethod
    def img2img(denoise, init_latents, cond, uncond, *, steps, strength, guidance,
                generator=None, steps_offset=1, abar=None, final_abar=None):  # fmt: skip
        from diffusers import StableDiffusionImg2ImgPipeline

        pipe, kw = _pipe(StableDiffusionImg2ImgPipeline, denoise, cond, uncond, steps_offset, abar,
                         final_abar)  # fmt: skip
        with torch.no_grad():
            return pipe(image=init_latents, strength=strength, guidance_scale=guidance,
                        num_inference_steps=steps, generator=generator, **kw).images  # fmt: skip

    @staticmethod
    def inpaint_legacy(denoise, init_latents, mask_image, cond, uncond, *, steps, strength,
                       guidance, generator=None, steps_offset=1, abar=None, final_abar=None,
                       callback=None):  # fmt: skip
        import numpy as np
        from diffusers.pipelines.deprecated.stable_diffusion_variants import (
            pipeline_stable_diffusion_inpaint_legacy as legacy,
        )
        from PIL import Image

        pipe, kw = _pipe(legacy.StableDiffusionInpaintPipelineLegacy, denoise, cond, uncond,
                         steps_offset, abar, final_abar, vae=_Encoder())  # fmt: skip
        pil = Image.fromarray((mask_image.numpy() * 255).round().astype(np.uint8), mode="L")
        mixed = None if callback is None else (lambda i, t, z: callback(i, int(t), z, z))
        with torch.no_grad():
            return pipe(image=init_latents, mask_image=pil, strength=strength,
                        guidance_scale=guidance, num_inference_steps=steps, generator=generator,
                        callback=mixed, **kw).images  # fmt: skip
