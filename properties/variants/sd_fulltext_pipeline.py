"""Rejected variants of SD-14..SD-16 (full text): the negative prompt on TinySD.generate, the
article's img2img and legacy inpainting loops (impl/diffusion/latent/article_pipelines.py)."""

import torch

from impl.diffusion.latent import article_pipelines as ap
from impl.diffusion.latent import pipeline, train
from properties.variants import variant


@variant(
    "SD-14",
    name="negative-prompt-none-is-zero-context",
    why="negative_prompt None mapped to a zero text context (SDXL's force_zeros_for_empty_prompt) "
    "in place of the empty prompt the model was trained to drop text to",
)
def _(mp):
    right = train.TinySD.unconditional

    def unconditional(self, negative_prompt, B):
        context, mask = right(self, negative_prompt, B)
        return (torch.zeros_like(context) if negative_prompt is None else context), mask

    mp.setattr(train.TinySD, "unconditional", unconditional)


@variant(
    "SD-14",
    name="negative-prompt-added",
    why="the negative prompt added as a third branch, eps('') + s (eps(y) - eps('')) - "
    "s (eps(n) - eps('')), instead of taking the unconditional branch's place",
)
def _(mp):
    def generate(self, prompts, guidance=3.0, steps=20, generator=None, negative_prompt=None):
        B = len(prompts)
        cond, empty = self.encode_prompts(prompts), self.unconditional(None, B)
        negative = self.unconditional(negative_prompt, B)

        def denoise(z, t, context, mask):  # the pipeline forms eps_u + s (eps_c - eps_u)
            z, t = z[:B], t[:B]
            e_empty, e_y, e_n = (self.unet(z, t, *c) for c in (empty, cond, negative))
            return torch.cat([e_empty, e_y - e_n + e_empty])

        h = self.size // 8
        with torch.no_grad():
            images = pipeline.generate(
                denoise, self.ae.decode, cond, empty, steps=steps, guidance=guidance,
                latent_shape=(B, 4, h, h), latent_scale=self.scale, generator=generator,
            )  # fmt: skip
        return images.clamp(-1, 1)

    mp.setattr(train.TinySD, "generate", generate)


@variant(
    "SD-15.steps",
    name="img2img-t-start-minus-one",
    why="t_start = num_inference_steps - init_timestep - 1: one denoising step more than the "
    "strength asks for (the init latent noised to a timestep one step earlier)",
)
def _(mp):
    def get_timesteps(timesteps, num_inference_steps, strength):
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)
        t_start = max(num_inference_steps - init_timestep - 1, 0)
        return timesteps[t_start:], init_timestep

    mp.setattr(ap, "get_timesteps", get_timesteps)


@variant(
    "SD-15.strength-1-is-noise",
    name="img2img-starts-from-pure-noise",
    why="the start latent taken as the noise alone (the article's 'at strength 1 the latent "
    "becomes random noise' made true): the init latent's sqrt(abar) x term dropped",
)
def _(mp):
    mp.setattr(ap, "add_noise", lambda init_latents, noise, abar_t: noise)


@variant(
    "SD-16.noise-level",
    name="inpaint-renoise-to-next-level",
    why="the replacement noised to the level the step moved the latents to (the next timestep; "
    "abar[0] after the last step), as diffusers' current inpainting pipeline does",
)
def _(mp):
    def proper_abar(ctx, timesteps, i):
        return float(ctx["abar"][timesteps[i + 1]]) if i + 1 < len(timesteps) else ctx["final_abar"]

    mp.setattr(ap, "_proper_abar", proper_abar)


@variant(
    "SD-16.kept-region",
    name="inpaint-paste-original-after-loop",
    why="the clean original latent pasted into the kept region after the loop "
    "(latents = init_latents_orig * mask + latents * (1 - mask)), as diffusers' later "
    "StableDiffusionInpaintPipelineLegacy does",
)
def _(mp):
    right = ap.inpaint_legacy

    def inpaint_legacy(denoise, init_latents, mask_image, *args, **kwargs):
        latents = right(denoise, init_latents, mask_image, *args, **kwargs)
        mask = ap.preprocess_mask(mask_image).to(latents.dtype)
        return init_latents * mask + latents * (1 - mask)

    mp.setattr(ap, "inpaint_legacy", inpaint_legacy)
