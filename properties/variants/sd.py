"""Rejected variants of the Stable Diffusion claims (SD-*) on the tiny latent diffusion model
(impl/diffusion/latent)."""

import torch

from impl.diffusion import schedules
from impl.diffusion.latent import autoencoder, pipeline, train, unet
from properties.variants import variant


@variant(
    "SD-01.shapes",
    name="scale-factor-is-std",
    why="the latent scale factor taken as std of the latents in place of 1 / std",
)
def _(mp):
    mp.setattr(autoencoder, "scale_factor", lambda latents: float(latents.float().std()))


@variant(
    "SD-01.shapes",
    name="scale-factor-from-variance",
    why="the latent scale factor 1 / var in place of 1 / std",
)
def _(mp):
    mp.setattr(autoencoder, "scale_factor", lambda latents: float(1 / latents.float().var()))


@variant(
    "SD-01.shapes",
    name="scale-from-sampled-latents",
    why="the scale computed from sampled latents mean + std eps, not from the posterior means the "
    "denoiser trains on: those are then not at unit variance",
)
def _(mp):
    def sampled_scale(ae, images):
        with torch.no_grad():
            return autoencoder.scale_factor(ae.sample(*ae.encode(images)))

    mp.setattr(train, "latent_scale", sampled_scale)


@variant(
    "SD-01.exact-round-trip",
    "SD-03",
    name="latents-not-scaled",
    why="the scale factor never applied (z * s and z / s both left out): the round trip is then "
    "trivially exact, and the denoiser trains on unscaled latents",
)
def _(mp):
    mp.setattr(autoencoder, "to_diffusion", lambda z, scale: z)
    mp.setattr(autoencoder, "from_diffusion", lambda z, scale: z)


@variant(
    "SD-03",
    name="latents-scaled-twice",
    why="the scale factor applied twice before training (z * s * s)",
)
def _(mp):
    mp.setattr(autoencoder, "to_diffusion", lambda z, scale: z * scale * scale)


@variant(
    "SD-03",
    name="text-dropout-never-applied",
    why="p_uncond ignored in the training objective: the caption is never replaced by the null "
    "prompt, so the unconditional prediction is never trained",
)
def _(mp):
    right = train.denoiser_loss
    mp.setattr(
        train,
        "denoiser_loss",
        lambda model, images, captions, generator=None, p_uncond=None: right(
            model, images, captions, generator, p_uncond=0.0
        ),
    )


@variant(
    "SD-04",
    name="decode-without-inverse-scale",
    why="the VAE decodes the diffusion latents without dividing by the scale factor",
)
def _(mp):
    mp.setattr(autoencoder, "from_diffusion", lambda z, scale: z)


@variant(
    "SD-04",
    name="timesteps-without-offset",
    why="Stable Diffusion's DDIM timesteps without steps_offset (every timestep off by one)",
)
def _(mp):
    mp.setattr(
        pipeline,
        "sd_timesteps",
        lambda steps, steps_offset: pipeline.schedules.timesteps(pipeline.T, steps, "leading"),
    )


@variant(
    "SD-04",
    name="linear-for-scaled-linear",
    why='"scaled linear" read as beta linear from 0.00085 to 0.012 (not linear in sqrt(beta))',
)
def _(mp):
    def linear_abar(dtype=torch.float64):
        beta = torch.linspace(0.00085, 0.012, pipeline.T, dtype=torch.float64)
        return schedules.alphas_cumprod(beta).to(dtype)

    mp.setattr(pipeline, "scaled_linear_abar", linear_abar)


@variant(
    "SD-02",
    name="cross-attention-ignores-text",
    why="the transformer block without its cross-attention term: the text never reaches the "
    "denoiser",
)
def _(mp):
    def forward(self, x, context, mask):
        B, C, H, W = x.shape
        h = self.norm_in(x).flatten(2).transpose(1, 2)
        h = h + self.self_attn(self.ln1(h))
        h = h + self.mlp(self.ln3(h))
        return x + h.transpose(1, 2).reshape(B, C, H, W)

    mp.setattr(unet.Transformer, "forward", forward)


@variant(
    "SD-02",
    name="cross-attention-ignores-mask",
    why="the text's key-padding mask not passed to attention: padding tokens get weight",
)
def _(mp):
    right = unet.Attention.forward
    mp.setattr(
        unet.Attention,
        "forward",
        lambda self, x, context=None, mask=None: right(self, x, context, None),
    )


@variant(
    "SD-05",
    name="latent-factor-4",
    why="a downsampling factor of 4 in place of 8: the denoiser works on 12x, not 48x, fewer "
    "numbers than pixel space",
)
def _(mp):
    mp.setattr(autoencoder, "FACTOR", 4)
