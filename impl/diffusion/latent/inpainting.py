"""The inpainting UNet's input surgery (SD-17): Stable Diffusion's inpainting model is the
text-to-image UNet whose first convolution takes 5 more input channels, the masked image's latent
(4 channels) and the mask downsampled 8x (1 channel), "the added weights zero-initialised":

    conv_in'(cat(z, e)) = sum_{c < 4} W_c * z_c + sum_{c >= 4} 0 * e_c + b = conv_in(z)     (1)

so at initialisation the widened UNet computes the same function of z as the original, whatever
the extra inputs e. `widen_conv_in` returns a new UNet (the original is left untouched) whose
conv_in has `latent + extra` input channels: the original weights in the first `latent`, zeros
(`zero_init`) in the rest.
"""

import copy

import torch

from impl import _checks
from impl.diffusion.latent import unet

INPAINT_EXTRA = 5  # the masked image's latent (4) and the mask (1)


def zero_init(weight):
    """The added input channels' weights (a floating tensor): zeros, in place (the article's
    initialisation)."""
    _checks.tensor("weight", weight, finite=False)
    with torch.no_grad():
        weight.zero_()


def widen_conv_in(model, extra=INPAINT_EXTRA):
    """A copy of the UNet `model` whose first convolution takes `extra` (a positive integer)
    more input channels, appended after the existing ones, their weights zero-initialised."""
    if not isinstance(model, unet.UNet):
        raise TypeError(f"model: expected a unet.UNet, got {type(model).__name__}")
    extra = _checks.integer("extra", extra, lo=1)
    old = model.conv_in
    new = torch.nn.Conv2d(
        old.in_channels + extra,
        old.out_channels,
        old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
        zero_init(new.weight[:, old.in_channels :])
    wide = copy.deepcopy(model)
    wide.conv_in = new
    return wide
