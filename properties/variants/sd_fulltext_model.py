"""Rejected variants of the Stable Diffusion full-text claims about the model (SD-06..SD-11,
SD-17): the article's arithmetic (impl/diffusion/latent/accounting.py), the tiny model's encoder,
text encoder, training step, attention heads and the inpainting UNet's widened conv_in."""

from fractions import Fraction

import torch

from impl.attention import tiled
from impl.diffusion.latent import accounting, autoencoder, inpainting, text, train, unet
from properties.variants import variant

# --- SD-06 -------------------------------------------------------------------------------------


@variant(
    "SD-06.article-product",
    name="accumulation-counted-twice",
    why="the gradient accumulation multiplied in twice (32 x 8 x 2 x 2 x 2): the product then "
    "matches the stated 2048 and hides the missing factor",
)
def _(mp):
    right = accounting.total_batch
    mp.setattr(accounting, "total_batch", lambda m, g, b, a: right(m, g, b, a) * a)


@variant(
    "SD-06.model-card",
    name="accumulation-ignored",
    why="the total batch without gradient accumulation (machines x GPUs x per-GPU batch)",
)
def _(mp):
    right = accounting.total_batch
    mp.setattr(accounting, "total_batch", lambda m, g, b, a: right(m, g, b, 1))


# --- SD-07 -------------------------------------------------------------------------------------


@variant(
    "SD-07.factor",
    "SD-07.sd-latent",
    name="latent-transposed",
    why="the encoder's latent with height and width swapped (w x h): invisible on square inputs",
)
def _(mp):
    right = autoencoder.Autoencoder.encode
    mp.setattr(
        autoencoder.Autoencoder,
        "encode",
        lambda self, x: tuple(t.transpose(2, 3) for t in right(self, x)),
    )


@variant(
    "SD-07.channels",
    "SD-07.sd-latent",
    name="latent-3-channels",
    why="an autoencoder with c = 3 latent channels, the article's h x w x 3 sentence taken "
    "literally (the KL-f8 of SD has c = 4)",
)
def _(mp):
    right = autoencoder.Autoencoder.__init__

    def init(self, channels=(32, 64, 64), latent=4):
        right(self, channels, 3)

    mp.setattr(autoencoder.Autoencoder, "__init__", init)


@variant(
    "SD-07.factor",
    name="encoder-factor-4",
    why="an encoder with two stride-2 convolutions (f = 4), a 4x-downsampling KL autoencoder",
)
def _(mp):
    right = autoencoder.Autoencoder.__init__

    def init(self, channels=(32, 64, 64), latent=4):
        right(self, channels, latent)
        self.encoder[6].stride = (1, 1)  # the third stride-2 convolution

    mp.setattr(autoencoder.Autoencoder, "__init__", init)
    mp.setattr(autoencoder, "FACTOR", 4)


# --- SD-08 -------------------------------------------------------------------------------------


@variant(
    "SD-08",
    name="10e-6-read-as-10-to-the-minus-6",
    why='"10e-6" read as 10^-6 (what the article means), not as written (10 x 10^-6 = 1e-5)',
)
def _(mp):
    right = accounting.as_written

    def power(number):
        mantissa, _, exponent = number.partition("e")
        return Fraction(mantissa) ** int(exponent) if exponent else right(number)

    mp.setattr(accounting, "as_written", power)


# --- SD-09 -------------------------------------------------------------------------------------


@variant(
    "SD-09.sum",
    name="autoencoder-encoder-only",
    why="the autoencoder counted by its encoder alone (SD's 84M is the whole KL autoencoder, "
    "encoder and decoder): the components no longer account for the model",
)
def _(mp):
    right = accounting.components

    def encoder_only(model):
        counts = right(model)
        counts["autoencoder"] = accounting.parameter_count(model.ae.encoder)
        return counts

    mp.setattr(accounting, "components", encoder_only)


@variant(
    "SD-09.sum",
    name="total-rounded-up",
    why='"about 1B" read with rounding up (the ceiling): 1067M -> 2B',
)
def _(mp):
    mp.setattr(accounting, "nearest", lambda x, unit=1: -(-Fraction(x) // unit) * unit)


@variant(
    "SD-09.ratio",
    name="ratio-inverted",
    why="the ratio CLIP / OpenCLIP (123.65 / 354.03 = 0.35) in place of OpenCLIP / CLIP",
)
def _(mp):
    right = accounting.ratio
    mp.setattr(accounting, "ratio", lambda a, b: right(b, a))


# --- SD-10 -------------------------------------------------------------------------------------


@variant(
    "SD-10.shape",
    name="pad-to-longest",
    why="padding to the batch's longest prompt (padding=True) in place of max_length "
    "(padding='max_length', SD's): short prompts give fewer than max_len features",
)
def _(mp):
    right = text.tokenize

    def longest(prompts, max_len=8, truncate=False):
        ids, mask = right(prompts, max_len, truncate)
        n = max(int(mask.sum(1).max()), 1)
        return ids[:, :n], mask[:, :n]

    mp.setattr(text, "tokenize", longest)


@variant(
    "SD-10.truncation",
    name="truncate-from-the-left",
    why="truncation that keeps the last max_len words (truncation_side='left')",
)
def _(mp):
    right = text.tokenize

    def left(prompts, max_len=8, truncate=False):
        if truncate:
            prompts = [" ".join(p.split()[-max_len:]) for p in prompts]
        return right(prompts, max_len, truncate)

    mp.setattr(text, "tokenize", left)


@variant(
    "SD-10.frozen",
    name="text-encoder-not-frozen",
    why="train_text=False ignored: the text encoder trained with the UNet",
)
def _(mp):
    right = train.train_denoiser

    def trains_text(model, steps, batch, generator, log=print, train_text=True):
        return right(model, steps, batch, generator, log, train_text=True)

    mp.setattr(train, "train_denoiser", trains_text)


@variant(
    "SD-10.frozen",
    name="frozen-but-gradients-computed",
    why="the text encoder left out of the optimizer but not detached: gradients still reach it "
    "(and fill memory), though its values do not move",
)
def _(mp):
    right = train.train_denoiser

    def leaky(model, steps, batch, generator, log=print, train_text=True):
        if train_text:
            return right(model, steps, batch, generator, log)
        saved = [p.detach().clone() for p in model.text.parameters()]
        right(model, steps, batch, generator, log, train_text=True)
        with torch.no_grad():
            for p, s in zip(model.text.parameters(), saved, strict=True):
                p.copy_(s)

    mp.setattr(train, "train_denoiser", leaky)


@variant(
    "SD-10.project-training",
    name="default-frozen",
    why="train_denoiser's default train_text=False: the project would then freeze its text "
    "encoder as SD does",
)
def _(mp):
    right = train.train_denoiser

    def frozen(model, steps, batch, generator, log=print, train_text=False):
        return right(model, steps, batch, generator, log, train_text=train_text)

    mp.setattr(train, "train_denoiser", frozen)


# --- SD-11 -------------------------------------------------------------------------------------


@variant(
    "SD-11",
    name="per-head-temperature",
    why="a learned temperature per head (heads extra parameters): then the split into heads "
    "changes the count",
)
def _(mp):
    init = unet.Attention.__init__

    def with_temperature(self, dim, context_dim, heads):
        init(self, dim, context_dim, heads)
        self.temperature = torch.nn.Parameter(torch.ones(heads))

    def scaled(self, x, context=None, mask=None):
        context = x if context is None else context
        q = self.q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        q = q * self.temperature[:, None, None]
        k, v = (
            t.transpose(1, 2)
            for t in self.kv(context).unflatten(-1, (2, self.heads, -1)).unbind(-3)
        )
        o = tiled.attention(q, k, v, key_padding_mask=mask)[0]
        return self.out(o.transpose(1, 2).flatten(-2))

    mp.setattr(unet.Attention, "__init__", with_temperature)
    mp.setattr(unet.Attention, "forward", scaled)


@variant(
    "SD-11",
    name="full-width-heads",
    why="every head projecting to the full d_model (q, k, v of heads x d_model, out from "
    "heads x d_model): the parameters grow with the number of heads",
)
def _(mp):
    init = unet.Attention.__init__

    def full_width(self, dim, context_dim, heads):
        init(self, dim, context_dim, heads)
        self.q = torch.nn.Linear(dim, heads * dim, bias=False)
        self.kv = torch.nn.Linear(context_dim, 2 * heads * dim, bias=False)
        self.out = torch.nn.Linear(heads * dim, dim)

    mp.setattr(unet.Attention, "__init__", full_width)


# --- SD-17 -------------------------------------------------------------------------------------


@variant(
    "SD-17",
    name="extra-weights-random",
    why="the added input channels' weights initialised like the others (Kaiming uniform), not zero",
)
def _(mp):
    mp.setattr(inpainting, "zero_init", lambda w: torch.nn.init.kaiming_uniform_(w, a=5**0.5))


@variant(
    "SD-17",
    name="extra-channels-first",
    why="the extra channels put before the latent's (the original weights on channels 5..8) "
    "while the inputs are concatenated latent first",
)
def _(mp):
    right = inpainting.widen_conv_in

    def first(model, extra=inpainting.INPAINT_EXTRA):
        wide = right(model, extra)
        with torch.no_grad():
            wide.conv_in.weight.copy_(wide.conv_in.weight.roll(extra, dims=1))
        return wide

    mp.setattr(inpainting, "widen_conv_in", first)
