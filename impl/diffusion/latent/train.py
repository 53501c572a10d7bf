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

from impl import _checks
from impl.diffusion.latent import _args, autoencoder, data, pipeline, text, unet

P_UNCOND = 0.1
BETA = 1e-4  # weight of the KL term


class TinySD(torch.nn.Module):
    def __init__(self, size=32, scale=1.0):
        """size: a positive multiple of 16 (autoencoder 8 x UNet 2); scale: the latent scale > 0."""
        super().__init__()
        size = _checks.integer("size", size, lo=1)
        if size % (2 * autoencoder.FACTOR):
            raise ValueError(f"size: must be divisible by 16 (autoencoder 8 x UNet 2), got {size}")
        _checks.scalar("scale", scale, lo=0, lo_open=True)
        self.size, self.scale = size, float(scale)
        self.text = text.TextEncoder()
        self.unet = unet.UNet()
        self.ae = autoencoder.Autoencoder()

    def encode_prompts(self, prompts):
        """(context (B, 8, 64), mask (B, 8)) of a list of B prompts (text.tokenize)."""
        ids, mask = text.tokenize(prompts)
        return self.text(ids, mask), mask

    def unconditional(self, negative_prompt, B):
        """(context, mask) of CFG's unconditional branch for B prompts (SD-14): the empty prompt
        "" (the null prompt of condition dropout) when negative_prompt is None, as diffusers'
        encode_prompt; else the negative prompt (a string, or a list of B strings) in its place."""
        B = _checks.integer("B", B, lo=1)
        if negative_prompt is None:
            negative_prompt = ""
        if isinstance(negative_prompt, str):
            negative_prompt = [negative_prompt] * B
        try:  # a non-string, or a word outside the vocabulary
            text.tokenize(negative_prompt)
        except (ValueError, TypeError) as e:
            raise type(e)(f"negative_prompt: {e}") from None
        if len(negative_prompt) != B:
            raise ValueError(
                f"negative_prompt: {len(negative_prompt)} negative prompts for {B} prompts"
            )
        return self.encode_prompts(list(negative_prompt))

    @torch.no_grad()
    def generate(self, prompts, guidance=3.0, steps=20, generator=None, negative_prompt=None):
        """Images (B, 3, size, size) in [-1, 1] for a non-empty list of B prompts; guidance >= 0,
        steps in [1, T - 1] (T = 1000; Stable Diffusion's steps_offset 1 leaves no room for T);
        negative_prompt None (the empty prompt), a string or a list of B strings: the
        unconditional branch of CFG (unconditional)."""
        text.tokenize(prompts)
        if not prompts:
            raise ValueError("prompts: an empty list; at least one prompt is needed")
        _checks.scalar("guidance", guidance, lo=0)
        _checks.integer("steps", steps, lo=1, hi=pipeline.T - 1)
        _checks.generator("generator", generator)
        cond = self.encode_prompts(prompts)
        uncond = self.unconditional(negative_prompt, len(prompts))
        h = self.size // autoencoder.FACTOR
        images = pipeline.generate(
            lambda z, t, c, m: self.unet(z, t, c, m), self.ae.decode, cond, uncond, steps=steps,
            guidance=guidance, latent_shape=(len(prompts), 4, h, h), latent_scale=self.scale,
            generator=generator,
        )  # fmt: skip
        return images.clamp(-1, 1)


def denoiser_loss(model, images, captions, generator=None, p_uncond=P_UNCOND):
    """The eps objective on scaled latents with condition dropout: images (B, 3, H, W) finite,
    B >= 1, H and W multiples of 16; B captions; p_uncond in [0, 1]."""
    _model(model)
    _images("images", images, model.ae)
    _captions(captions, images)
    _checks.generator("generator", generator)
    _checks.scalar("p_uncond", p_uncond, lo=0, hi=1)
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
    """Both stages on one generator seeded `seed` (the command's defaults: 1500, 4000, 64).
    ae_steps, steps >= 0; batch >= 1; beta >= 0; seed in [0, 2**64); log a callable."""
    _model(model)
    _checks.integer("ae_steps", ae_steps, lo=0)
    _steps(steps, batch, log)
    _checks.scalar("beta", beta, lo=0)
    seed = _args.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    train_autoencoder(model, ae_steps, batch, beta, g, log)
    train_denoiser(model, steps, batch, g, log)
    return model


def train_autoencoder(model, steps, batch, beta, generator, log=print):
    """Reconstruction + beta KL with Adam; then the latent scale 1 / std of 512 latents.
    model: a TinySD, or any object with an autoencoder `ae`, an image `size` (a multiple of 8) and
    a `scale` to set; steps >= 0, batch >= 1, beta >= 0, generator a torch.Generator or None, log
    a callable."""
    if not isinstance(getattr(model, "ae", None), autoencoder.Autoencoder):
        raise TypeError(
            f"model: expected a TinySD (an autoencoder .ae), got {type(model).__name__}"
        )
    _checks.integer("model.size", getattr(model, "size", None), lo=1)
    if model.size % autoencoder.FACTOR:
        raise ValueError(
            f"model.size: must be a multiple of {autoencoder.FACTOR}, got {model.size}"
        )
    _steps(steps, batch, log)
    _checks.scalar("beta", beta, lo=0)
    _checks.generator("generator", generator)
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
    (denoiser_loss), which the scale brings to unit variance. images (B, 3, H, W) finite, B >= 1,
    H and W multiples of 8."""
    if not isinstance(ae, autoencoder.Autoencoder):
        raise TypeError(f"ae: expected an autoencoder.Autoencoder, got {type(ae).__name__}")
    _images("images", images, ae, multiple=autoencoder.FACTOR)
    with torch.no_grad():
        return autoencoder.scale_factor(ae.encode(images)[0])


def train_denoiser(model, steps, batch, generator, log=print, train_text=True):
    """The eps objective with condition dropout, on the text encoder and the UNet (Adam).
    steps >= 0, batch >= 1, generator a torch.Generator or None, log a callable. train_text a
    bool: True (this model's default: its text encoder starts untrained) trains the text encoder
    with the UNet; False freezes it, Stable Diffusion's convention for its pretrained CLIP
    encoder (SD-10): no gradient reaches it and it is left unchanged."""
    _model(model)
    _steps(steps, batch, log)
    _checks.generator("generator", generator)
    train_text = _checks.flag("train_text", train_text)
    params = list(model.unet.parameters()) + (list(model.text.parameters()) if train_text else [])
    frozen = [] if train_text else [p for p in model.text.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    start = time.time()
    try:
        for p in frozen:
            p.requires_grad_(False)
        for i in range(steps):
            images, captions, _ = data.sample(batch, model.size, generator)
            loss, _ = denoiser_loss(model, images, captions, generator)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i % 250 == 0 or i == steps - 1:
                log(f"denoiser {i + 1}/{steps}: loss {loss.item():.4f} "
                    f"({time.time() - start:.0f} s)")  # fmt: skip
    finally:
        for p in frozen:
            p.requires_grad_(True)


def save(model, path):
    """Write the model (its tensors; size and scale in the metadata) to a new or existing file
    `path` (str or os.PathLike) in an existing directory."""
    _model(model)
    _checks.scalar("model.scale", model.scale, lo=0, lo_open=True)
    _args.path("path", path, existing=False)
    meta = {"format": "tiny-sd/1", "size": str(model.size), "scale": repr(float(model.scale))}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path), metadata=meta)


def load(path):
    """A TinySD from a file written by save() (path: str or os.PathLike); ValueError naming path
    on a corrupted or mismatched file, or metadata without a size (a multiple of 16) or a finite
    scale > 0."""
    _args.path("path", path, existing=True)
    try:
        tensors = load_file(str(path))
        with open(path, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as e:
        raise ValueError(f"path: {path} is not a readable tiny-sd safetensors file ({e})") from None
    meta = header.get("__metadata__", {})
    if meta.get("format") != "tiny-sd/1":
        raise ValueError(f"path: {path} is not a tiny-sd model (metadata {meta})")
    try:
        model = TinySD(size=int(meta["size"]), scale=float(meta["scale"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(
            f"path: {path} has no valid size (a multiple of 16) and scale (> 0) in its metadata "
            f"{meta} ({type(e).__name__}: {e})"
        ) from None
    expected = model.state_dict()
    missing, extra = set(expected) - set(tensors), set(tensors) - set(expected)
    bad = [k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape]
    if missing or extra or bad:
        raise ValueError(f"path: {path} does not match the model: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(extra)[:3]}, wrong shapes {sorted(bad)[:3]}")  # fmt: skip
    model.load_state_dict(tensors)
    return model


def main(argv=None):
    """The command: argv (None: sys.argv[1:]) as --help describes. A wrong option is a usage
    error naming it (argparse's SystemExit 2), before any training."""
    parser = argparse.ArgumentParser(
        description="Train the tiny latent diffusion model on CPU (32 x 32 synthetic shapes) and "
        "save it as safetensors."
    )
    parser.add_argument("--out", default="tiny-sd.safetensors",
                        help="the model file to write, in an existing directory (default: "
                        "%(default)s)")  # fmt: skip
    parser.add_argument("--ae-steps", type=int, default=1500,
                        help="Adam steps of the autoencoder stage, >= 0 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=4000,
                        help="Adam steps of the denoiser stage, >= 0 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=64,
                        help="images per step, >= 1 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="the seed of the initial weights and of the training data, in "
                        "[0, 2**64) (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    for option, rule, a, k in [
        ("--out", _args.path, ("out", args.out), dict(existing=False)),
        ("--ae-steps", _checks.integer, ("ae_steps", args.ae_steps), dict(lo=0)),
        ("--steps", _checks.integer, ("steps", args.steps), dict(lo=0)),
        ("--batch", _checks.integer, ("batch", args.batch), dict(lo=1)),
        ("--seed", _args.seed, ("seed", args.seed), {}),
    ]:
        try:
            rule(*a, **k)
        except (ValueError, TypeError) as e:
            parser.error(f"argument {option}: {e}")
    torch.manual_seed(args.seed)
    model = train(TinySD(), args.ae_steps, args.steps, args.batch, seed=args.seed)
    save(model, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()


def _model(model):
    if not isinstance(model, TinySD):
        raise TypeError(f"model: expected a TinySD, got {type(model).__name__}")


def _steps(steps, batch, log):
    _checks.integer("steps", steps, lo=0)
    _checks.integer("batch", batch, lo=1)
    _checks.function("log", log)


def _images(name, images, ae, multiple=None):
    """A finite (B, 3, H, W) batch, B >= 1, H and W multiples of `multiple` (the autoencoder's
    factor x the UNet's 2 by default), of ae's dtype."""
    multiple = multiple or 2 * autoencoder.FACTOR
    _checks.tensor(name, images, ndim=4, finite=False)
    B, C, H, W = images.shape
    if not B or C != 3 or not H or not W or H % multiple or W % multiple:
        raise ValueError(
            f"{name}: expected (B, 3, H, W), B >= 1, H and W positive multiples of {multiple}, "
            f"got {tuple(images.shape)}"
        )
    _args.tensor(name, images, (None, 3, None, None), _args.dtype_of(ae))


def _captions(captions, images):
    if not isinstance(captions, (list, tuple)) or len(captions) != len(images):
        raise ValueError(
            f"captions: expected a list of {len(images)} captions (one per image), got "
            f"{captions!r:.60}"
        )
    try:
        text.tokenize(list(captions))
    except (ValueError, TypeError) as e:
        raise type(e)(f"captions: {str(e).removeprefix('prompts: ')}") from None
