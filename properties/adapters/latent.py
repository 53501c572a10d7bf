"""Family `latent` (the latent diffusion pipeline, SD-01..SD-05): the functions its properties call.

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
    tiny_sd(size=32, scale=1.0)              fresh modules of the model (encode/decode/sample,
                                             the UNet and its cross-attention, TinySD.generate)

Reference looks every function up at call time: the rejected variants of SD-* patch impl's
modules (autoencoder.to_diffusion, pipeline.sd_timesteps, train.latent_scale, unet.Attention...).

No peer adapter: diffusers' StableDiffusionPipeline takes modules (a UNet2DConditionModel and an
AutoencoderKL with their configs), not the family's callables; it has no text mask, takes the
latents' dtype from the prompt embeddings, supports only abar[0] or 1 after the last step and
returns denormalised, clamped images. An adapter would fake its modules and hide those
differences, so the properties would check the shim more than the library. Instead
properties/test_sd_latent.py compares the loop with StableDiffusionPipeline on the same tiny
random diffusers UNet and VAE (SD-04), and pins where it differs (findings).
"""

from impl.diffusion.latent import autoencoder as _ae
from impl.diffusion.latent import pipeline as _pipeline
from impl.diffusion.latent import text as _text
from impl.diffusion.latent import train as _train
from impl.diffusion.latent import unet as _unet
from properties.adapters import late


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
    tiny_sd = late(_train, "TinySD")


ADAPTERS = {"reference": Reference}
PEERS = {}
