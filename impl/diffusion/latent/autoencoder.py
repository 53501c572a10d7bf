"""A KL-regularised autoencoder with downsampling factor 8 and 4 latent channels (SD-01).

    encode:  x (B, 3, H, W) -> mean, log var (B, 4, H/8, W/8)   (three stride-2 convolutions)
    sample:  z = mean + exp(log var / 2) eps
    decode:  z -> x_hat (B, 3, H, W)                            (three nearest-neighbour upsamplings)
    loss:    ||x - x_hat||^2 + beta KL(N(mean, var) || N(0, I)),
             KL = 1/2 sum (mean^2 + var - 1 - log var)
Diffusion runs on scaled latents z * scale (`to_diffusion`), and the decoder receives them
unscaled, z / scale (`from_diffusion`): the original model's constant SD_SCALE = 0.18215, and for
a new model scale = 1 / std of its training latents (`scale_factor`), so that they have unit
variance.
"""

import torch

from impl import _checks
from impl.diffusion.latent import _args

SD_SCALE = 0.18215
FACTOR = 8


class Autoencoder(torch.nn.Module):
    def __init__(self, channels=(32, 64, 64), latent=4):
        """channels: three positive integers (the encoder's widths); latent: a positive integer."""
        super().__init__()
        c0, c1, c2 = _args.sizes("channels", channels, 3)
        latent = _checks.integer("latent", latent, lo=1)
        conv = torch.nn.Conv2d
        act = torch.nn.SiLU
        self.encoder = torch.nn.Sequential(
            conv(3, c0, 3, padding=1), act(),
            conv(c0, c1, 3, stride=2, padding=1), act(),
            conv(c1, c2, 3, stride=2, padding=1), act(),
            conv(c2, c2, 3, stride=2, padding=1), act(),
            conv(c2, 2 * latent, 3, padding=1),
        )  # fmt: skip
        up = lambda a, b: [torch.nn.Upsample(scale_factor=2), conv(a, b, 3, padding=1), act()]  # noqa: E731
        self.decoder = torch.nn.Sequential(
            conv(latent, c2, 3, padding=1), act(),
            *up(c2, c2), *up(c2, c1), *up(c1, c0),
            conv(c0, 3, 3, padding=1),
        )  # fmt: skip
        self.latent = latent

    def encode(self, x):
        """(mean, log var) of q(z | x); x (B, 3, H, W), finite, of the module's dtype, with H, W
        divisible by 8."""
        _checks.tensor("x", x, finite=False)
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % FACTOR or x.shape[3] % FACTOR:
            raise ValueError(
                f"x: expected (B, 3, H, W) with H and W divisible by {FACTOR}, got {tuple(x.shape)}"
            )
        _args.tensor("x", x, (None, 3, None, None), _args.dtype_of(self))
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30, 20)

    def decode(self, z):
        """Images (B, 3, 8 h, 8 w) from latents z (B, latent, h, w), finite, of the module's dtype."""
        _checks.tensor("z", z, finite=False)
        if z.ndim != 4 or z.shape[1] != self.latent:
            raise ValueError(f"z: expected (B, {self.latent}, h, w), got {tuple(z.shape)}")
        _args.tensor("z", z, (None, self.latent, None, None), _args.dtype_of(self))
        return self.decoder(z)

    @staticmethod
    def sample(mean, log_var, generator=None):
        """z = mean + exp(log var / 2) eps: mean and log var finite, of one shape and dtype."""
        _same_floats(mean, log_var)
        _checks.generator("generator", generator)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_var) * eps

    @staticmethod
    def kl(mean, log_var):
        """KL(N(mean, var) || N(0, I)) per image, summed over latent entries; mean and log var
        finite, of one shape (B, ...) and dtype."""
        _checks.tensor("mean", mean, finite=False)
        if mean.ndim < 2:
            raise ValueError(
                f"mean: expected a batch (B, ...) of 2 or more dimensions, got shape "
                f"{tuple(mean.shape)}"
            )
        _same_floats(mean, log_var)
        return 0.5 * (mean**2 + log_var.exp() - 1 - log_var).flatten(1).sum(1)


def _same_floats(mean, log_var):
    _checks.tensor("mean", mean)
    _checks.tensor("log_var", log_var)
    _checks.same_shape("log_var", log_var, "mean", mean)
    if log_var.dtype != mean.dtype:
        raise TypeError(f"log_var: dtype {log_var.dtype} differs from mean's {mean.dtype}")


def scale_factor(latents):
    """1 / std of training latents: the scale that brings them to unit variance. latents: a
    finite tensor of at least two entries, not all equal."""
    _checks.tensor("latents", latents)
    if latents.numel() < 2:
        raise ValueError(f"latents: at least two entries are needed, got {latents.numel()}")
    if bool((latents == latents.reshape(-1)[0]).all()):
        raise ValueError("latents: all entries are equal; their std 0 has no inverse")
    return float(1 / latents.float().std())


def to_diffusion(z, scale):
    """Autoencoder latents -> the diffusion model's latents: z * scale (z finite, scale > 0)."""
    _checks.tensor("z", z)
    _checks.scalar("scale", scale, lo=0, lo_open=True)
    return z * scale


def from_diffusion(z, scale):
    """The diffusion model's latents -> autoencoder latents for decoding: z / scale (z finite,
    scale > 0)."""
    _checks.tensor("z", z)
    _checks.scalar("scale", scale, lo=0, lo_open=True)
    return z / scale
