"""The tiny latent diffusion model (impl/diffusion/latent), untrained weights, 32 x 32 images
(4 x 4 x 4 latents), batch 8: one UNet forward, one training step of the denoiser objective,
sampling with CFG for 20 and 50 DDIM steps (with the decode), peak RSS; and the UNet's
cross-attention through our tiled attention against torch SDPA (the same weights)."""

import torch
from torch.nn.functional import scaled_dot_product_attention as sdpa

from impl.diffusion.latent import data, train, unet

B = 8


class TinyStableDiffusion:
    timeout = 300

    def setup(self):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        self.model = train.TinySD()
        self.images, self.captions, _ = data.sample(B, 32, g)
        self.context, self.mask = self.model.encode_prompts(self.captions)
        self.z = torch.randn(B, 4, 4, 4, generator=g)
        self.t = torch.randint(0, 1000, (B,), generator=g)
        self.opt = torch.optim.Adam(self.model.unet.parameters(), lr=1e-4)

    def time_unet_forward(self):
        with torch.no_grad():
            self.model.unet(self.z, self.t, self.context, self.mask)

    def time_training_step(self):
        loss, _ = train.denoiser_loss(self.model, self.images, self.captions)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def time_sample_20_steps(self):
        self.model.generate(self.captions, guidance=3.0, steps=20)

    def time_sample_50_steps(self):
        self.model.generate(self.captions, guidance=3.0, steps=50)

    def peakmem_sample_50_steps(self):
        self.model.generate(self.captions, guidance=3.0, steps=50)


def _sdpa_attention(q, k, v, causal=False, key_padding_mask=None):
    mask = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    return sdpa(q, k, v, attn_mask=mask), None


class CrossAttentionBackend:
    """The UNet forward (batch 8) with its attention through ours or through torch SDPA."""

    params = ["tiled (ours)", "torch SDPA"]
    param_names = ["attention"]

    def setup(self, attention):
        TinyStableDiffusion.setup(self)
        self.original = unet.tiled.attention
        if attention == "torch SDPA":
            unet.tiled.attention = _sdpa_attention

    def teardown(self, attention):
        unet.tiled.attention = self.original

    def time_unet_forward(self, attention):
        with torch.no_grad():
            self.model.unet(self.z, self.t, self.context, self.mask)
