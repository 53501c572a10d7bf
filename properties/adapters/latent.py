"""Family `latent` (the latent diffusion pipeline, SD-*): the functions its properties call.

Interface (impl/diffusion/latent for the equations; torch tensors):
    generate(denoise, decode, cond, uncond, *, steps, guidance, latent_shape, latent_scale,
             generator, eta, steps_offset, abar, final_abar, dtype) -> images
        the text-to-image loop: z_T ~ N(0, I) from `generator`; per DDIM timestep one batched
        pass of denoise([z, z], t, [uncond; cond] contexts, masks), eps = eps_u + s (eps_c -
        eps_u), a DDIM step in latent space; then decode(z / latent_scale)
    sd_timesteps(steps, steps_offset)        the DDIM timesteps (leading spacing + offset)
    scaled_linear_abar(dtype)                the "scaled linear" abar_t, T = 1000
    to_diffusion(z, scale), from_diffusion(z, scale)    the latent scaling and its inverse
    train_autoencoder(model, steps, batch, beta, generator, log)    sets model.scale = 1 / std
    denoiser_loss(model, images, captions, generator, p_uncond)     the eps objective with
                                                                   text dropout
    train_denoiser(model, steps, batch, generator, log), load(path)
    autoencoder(), text_encoder(), unet(latent=4), attention(dim, context_dim, heads),
    transformer(dim, context_dim, heads), tiny_sd(size=32, scale=1.0)
                                             fresh modules of the model (encode/decode/sample,
                                             the UNet, its transformer block and cross-attention,
                                             TinySD.generate)
    tokenize(prompts, max_len=8, truncate=False) -> (ids, mask)   the text encoder's tokenizer
    scale_factor(latents)                    1 / std of a batch of latents (the latent scale)
    widen_conv_in(unet, extra=5)             the inpainting UNet: conv_in widened by `extra`
                                             zero-initialised input channels (SD-17)
    get_timesteps(timesteps, steps, strength) -> (timesteps[t_start:], init_timestep)
    img2img(denoise, init_latents, cond, uncond, *, steps, strength, guidance, generator,
            steps_offset=1, abar, final_abar) -> latents
    inpaint_legacy(denoise, init_latents, mask_image, cond, uncond, *, steps, strength, guidance,
                   generator, steps_offset=1, abar, final_abar, callback) -> latents
        the article's img2img and legacy inpainting loops (SD-15, SD-16: the code the article
        walks through, impl/diffusion/latent/article_pipelines.py): the init latents noised to
        the first of the last int(steps strength) timesteps, then guided DDIM steps; the legacy
        loop replaces the kept region by the init latents noised to the step's own timestep

Reference looks every function up at call time: the rejected variants of SD-* patch impl's
modules (autoencoder.to_diffusion, pipeline.sd_timesteps, train.latent_scale, unet.Attention...).

Peer `diffusers` (properties/adapters/latent_diffusers.py): DDIMScheduler with Stable
Diffusion's configuration for sd_timesteps and scaled_linear_abar, StableDiffusionImg2ImgPipeline
for get_timesteps and img2img, StableDiffusionInpaintPipelineLegacy for inpaint_legacy; asked
SD-04, SD-15.*, SD-16.* (PEERS). The rest is the reference's. Its text-to-image
StableDiffusionPipeline is not behind `generate`: it takes modules (a UNet2DConditionModel and
an AutoencoderKL with their configs), not the family's callables; it has no text mask, takes the
latents' dtype from the prompt embeddings, supports only abar[0] or 1 after the last step and
returns denormalised, clamped images. An adapter would fake its modules and hide those
differences, so the properties would check the shim more than the library. Instead
properties/test_sd_latent.py compares the loop with StableDiffusionPipeline on the same tiny
random diffusers UNet and VAE (SD-04), and pins where it differs (findings).
"""

from impl.diffusion.latent import article_pipelines as _ap
from impl.diffusion.latent import autoencoder as _ae
from impl.diffusion.latent import inpainting as _inpainting
from impl.diffusion.latent import pipeline as _pipeline
from impl.diffusion.latent import text as _text
from impl.diffusion.latent import train as _train
from impl.diffusion.latent import unet as _unet
from properties.adapters import Peer, late


class Reference:
    """The project's implementation, impl/diffusion/latent (looked up at call time)."""

    generate = late(_pipeline, "generate")
    sd_timesteps = late(_pipeline, "sd_timesteps")
    scaled_linear_abar = late(_pipeline, "scaled_linear_abar")
    to_diffusion = late(_ae, "to_diffusion")
    from_diffusion = late(_ae, "from_diffusion")
    train_autoencoder = late(_train, "train_autoencoder")
    denoiser_loss = late(_train, "denoiser_loss")
    train_denoiser = late(_train, "train_denoiser")
    load = late(_train, "load")
    autoencoder = late(_ae, "Autoencoder")
    text_encoder = late(_text, "TextEncoder")
    unet = late(_unet, "UNet")
    attention = late(_unet, "Attention")
    transformer = late(_unet, "Transformer")
    tiny_sd = late(_train, "TinySD")
    tokenize = late(_text, "tokenize")
    scale_factor = late(_ae, "scale_factor")
    widen_conv_in = late(_inpainting, "widen_conv_in")
    get_timesteps = late(_ap, "get_timesteps")
    img2img = late(_ap, "img2img")
    inpaint_legacy = late(_ap, "inpaint_legacy")


_ARITHMETIC = "exact arithmetic on the article's printed numbers (the claim is about them)"
_COUNTER = "a parameter counter (distinct parameters of a module, per component): it measures"
TOOLS = {
    "impl.diffusion.latent.data": "the toy data set (60 images: 4 colours x 3 shapes x 5 "
    "regions, their captions, random batches): inputs",
    "impl.diffusion.latent.judge": "the adherence judge (colour and position of the drawn "
    "shape): it measures samples",
    "impl.diffusion.latent.text.IDS": "the tokenizer's vocabulary (word -> id): inputs",
    "impl.diffusion.latent.train.BETA": "the project's KL weight, fed in and recorded",
    "impl.diffusion.latent.train.P_UNCOND": "the text-dropout rate 0.1 the objective is "
    "configured with: the rate the binomial test expects",
    "impl.diffusion.latent.autoencoder.SD_SCALE": "Stable Diffusion's published scale factor "
    "0.18215: an input",
    "impl.diffusion.latent.accounting.total_batch": _ARITHMETIC,
    "impl.diffusion.latent.accounting.as_written": _ARITHMETIC,
    "impl.diffusion.latent.accounting.LDM_KL_WEIGHT": "the latent-diffusion configs' kl_weight "
    "1e-6: an input",
    "impl.diffusion.latent.accounting.order_of_magnitude": _ARITHMETIC,
    "impl.diffusion.latent.accounting.total": _ARITHMETIC,
    "impl.diffusion.latent.accounting.ratio": _ARITHMETIC,
    "impl.diffusion.latent.accounting.nearest": _ARITHMETIC,
    "impl.diffusion.latent.accounting.parameter_count": _COUNTER,
    "impl.diffusion.latent.accounting.components": _COUNTER,
}


ADAPTERS = {"reference": Reference}

# diffusers' adapter subclasses Reference, so it is imported here, after Reference is defined.
from properties.adapters.latent_diffusers import Diffusers  # noqa: E402

ADAPTERS["diffusers"] = Diffusers
_TINY = "a claim about the project's tiny model, its training or its modules: diffusers has none"
PEERS = {
    "diffusers": Peer(
        library="diffusers",
        claims=("SD-04", "SD-15.*", "SD-16.*"),
        not_asked={
            "SD-01.*": _TINY,
            "SD-02": _TINY,
            "SD-03": _TINY,
            "SD-05": _TINY,
            "SD-07.*": _TINY,
            "SD-10.*": _TINY,
            "SD-11": _TINY,
            "SD-13": "the scale factor is a number in diffusers' VAE config (scaling_factor), "
            "not a function of the latents",
            "SD-14": "TinySD.generate's negative prompt: the tiny model's pipeline",
            "SD-17": "UNet2DConditionModel has no function that widens conv_in",
        },
    ),
}
