"""Training the tiny latent diffusion model on synthetic shapes, saving and loading it (SD-03).

    autoencoder  minimise ||x - decode(z)||^2 + beta KL(q(z|x) || N(0, I)),  z ~ q(z|x)
    scale        1 / std of the training latents (the posterior means)
    denoiser     minimise ||eps - eps_theta(z_t, t, tau(y'))||^2 with z_0 = scale * mean(x),
                 z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, t uniform in [0, T), and
                 y' = "" (the null prompt) with probability p_uncond = 0.1: condition dropout,
                 so that one network learns eps(z, y) and eps(z, null) (CFG-06)
Models are saved as safetensors (tensors only: loading executes nothing) with their settings in
the file's metadata; loading checks names and shapes and raises ValueError on a corrupted or
mismatched file.

    python -m impl.diffusion.latent.train --out tiny-sd.safetensors --ae-steps 1500 --steps 4000
"""

import argparse
import json
import time

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from impl.diffusion.latent import autoencoder, data, pipeline, text, unet

P_UNCOND = 0.1
BETA = 1e-4  # weight of the KL term


class TinySD(torch.nn.Module):
    def __init__(self, size=32, scale=1.0):
        super().__init__()
        if size % (2 * autoencoder.FACTOR):
            raise ValueError(f"size: must be divisible by 16 (autoencoder 8 x UNet 2), got {size}")
        self.size, self.scale = size, scale
        self.text = text.TextEncoder()
        self.unet = unet.UNet()
        self.ae = autoencoder.Autoencoder()

    def encode_prompts(self, prompts):
        ids, mask = text.tokenize(prompts)
        return self.text(ids, mask), mask

    @torch.no_grad()
    def generate(self, prompts, guidance=3.0, steps=20, generator=None):
        """Images (B, 3, size, size) in [-1, 1]."""
        cond, uncond = self.encode_prompts(prompts), self.encode_prompts([""] * len(prompts))
        h = self.size // autoencoder.FACTOR
        images = pipeline.generate(
            lambda z, t, c, m: self.unet(z, t, c, m), self.ae.decode, cond, uncond, steps=steps,
            guidance=guidance, latent_shape=(len(prompts), 4, h, h), latent_scale=self.scale,
            generator=generator,
        )  # fmt: skip
        return images.clamp(-1, 1)


def denoiser_loss(model, images, captions, generator=None, p_uncond=P_UNCOND):
    """The eps objective on scaled latents with condition dropout."""
    B = images.shape[0]
    with torch.no_grad():
        z0 = autoencoder.to_diffusion(model.ae.encode(images)[0], model.scale)
    drop = torch.rand(B, generator=generator) < p_uncond
    prompts = ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]
    context, mask = model.encode_prompts(prompts)
    abar = pipeline.scaled_linear_abar(torch.float32)
    t = torch.randint(0, pipeline.T, (B,), generator=generator)
    eps = torch.randn(z0.shape, generator=generator)
    a = abar[t][:, None, None, None]
    z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
    return ((model.unet(z_t, t, context, mask) - eps) ** 2).mean(), drop


def train(model, ae_steps, steps, batch, beta=BETA, seed=0, log=print):
    """Both stages on one generator seeded `seed` (the command's defaults: 1500, 4000, 64)."""
    g = torch.Generator().manual_seed(seed)
    train_autoencoder(model, ae_steps, batch, beta, g, log)
    train_denoiser(model, steps, batch, g, log)
    return model


def train_autoencoder(model, steps, batch, beta, generator, log=print):
    """Reconstruction + beta KL with Adam; then the latent scale 1 / std of 512 latents."""
    opt = torch.optim.Adam(model.ae.parameters(), lr=2e-3)
    start = time.time()
    for i in range(steps):
        x = data.sample(batch, model.size, generator)[0]
        mean, log_var = model.ae.encode(x)
        recon = model.ae.decode(model.ae.sample(mean, log_var, generator))
        loss = ((recon - x) ** 2).mean() + beta * model.ae.kl(mean, log_var).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % 250 == 0 or i == steps - 1:
            log(
                f"autoencoder {i + 1}/{steps}: loss {loss.item():.4f} ({time.time() - start:.0f} s)"
            )
    model.scale = latent_scale(model.ae, data.sample(512, model.size, generator)[0])
    log(f"latent scale factor 1/std = {model.scale:.4f}")


def latent_scale(ae, images):
    """1 / std of the posterior means of `images`: the latents the denoiser trains on
    (denoiser_loss), which the scale brings to unit variance."""
    with torch.no_grad():
        return autoencoder.scale_factor(ae.encode(images)[0])


def train_denoiser(model, steps, batch, generator, log=print):
    """The eps objective with condition dropout, on the text encoder and the UNet (Adam)."""
    params = list(model.unet.parameters()) + list(model.text.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    start = time.time()
    for i in range(steps):
        images, captions, _ = data.sample(batch, model.size, generator)
        loss, _ = denoiser_loss(model, images, captions, generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % 250 == 0 or i == steps - 1:
            log(f"denoiser {i + 1}/{steps}: loss {loss.item():.4f} ({time.time() - start:.0f} s)")


def save(model, path):
    meta = {"format": "tiny-sd/1", "size": str(model.size), "scale": repr(model.scale)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def load(path):
    """A TinySD from a file written by save(); ValueError on a corrupted or mismatched file."""
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as e:
        raise ValueError(f"path: {path} is not a readable tiny-sd safetensors file ({e})") from None
    meta = header.get("__metadata__", {})
    if meta.get("format") != "tiny-sd/1":
        raise ValueError(f"path: {path} is not a tiny-sd model (metadata {meta})")
    model = TinySD(size=int(meta["size"]), scale=float(meta["scale"]))
    expected = model.state_dict()
    missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
    bad = [k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape]
    if missing or extra or bad:
        raise ValueError(f"path: {path} does not match the model: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(extra)[:3]}, wrong shapes {sorted(bad)[:3]}")  # fmt: skip
    model.load_state_dict(tensors)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the tiny latent diffusion model on CPU.")
    parser.add_argument("--out", default="tiny-sd.safetensors")
    parser.add_argument("--ae-steps", type=int, default=1500)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = train(TinySD(), args.ae_steps, args.steps, args.batch, seed=args.seed)
    save(model, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
