"""The Stable Diffusion article's arithmetic, in exact rationals, and parameter accounting
(SD-06, SD-08, SD-09, SD-11).

    total batch      B = machines x GPUs per machine x per-GPU batch x gradient accumulation  (1)
                     (the article: 32 x 8 x 2 x 2 "= 2048"; the SD v1 model cards: 32 x 8 x 2 x 4)
    a number as      "10e-6" is 10 x 10^-6 = 10^-5 exactly (Fraction of its decimal text)     (2)
    written
    order of         the integer k nearest to log10 x: 10^(k - 1/2) <= x < 10^(k + 1/2), the   (3)
    magnitude        reading of "~x" used here (two values agree when their k agree)
    parameters       N(module) = sum of the sizes of its distinct parameter tensors; a model's  (4)
                     components (autoencoder, text encoder, UNet) partition its parameters
    total            N = N_autoencoder + N_text + N_unet (the article: 84M + 123M + 860M,       (5)
                     "about 1B")
    ratio            N_a / N_b (the article: OpenCLIP ViT-H/14 354.03M / CLIP ViT-L/14 123.65M, (6)
                     "about 3 times")
    nearest          round(x / unit) x unit, ties to even (Python's round of a Fraction)        (7)
Everything is exact: ints and fractions.Fraction, never floats.
"""

from fractions import Fraction
from numbers import Rational

import torch

from impl import _checks

# The KL weight of the latent-diffusion KL autoencoders: `kl_weight: 0.000001` in
# CompVis/latent-diffusion configs/autoencoder/autoencoder_kl_64x64x3.yaml and
# autoencoder_kl_8x8x64.yaml (lossconfig: LPIPSWithDiscriminator).
LDM_KL_WEIGHT = Fraction("0.000001")


def total_batch(machines, gpus_per_machine, per_gpu_batch, accumulation):
    """(1) The samples per optimizer step: the product of four positive integers."""
    factors = dict(machines=machines, gpus_per_machine=gpus_per_machine,
                   per_gpu_batch=per_gpu_batch, accumulation=accumulation)  # fmt: skip
    for name, v in factors.items():
        _checks.integer(name, v, lo=1)
    return machines * gpus_per_machine * per_gpu_batch * accumulation


def as_written(number):
    """(2) The exact value of a number as the article writes it (a decimal string such as
    "10e-6" or "354.03"), as a Fraction."""
    if not isinstance(number, str):
        raise TypeError(f"number: expected the number's text (a str), got {number!r:.60}")
    try:
        return Fraction(number.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"number: {number!r:.60} is not a decimal number") from None


def _positive_rational(name, x):
    if isinstance(x, bool) or not isinstance(x, Rational):
        raise TypeError(f"{name}: expected an int or a Fraction, got {x!r:.60}")
    if x <= 0:
        raise ValueError(f"{name}: must be > 0, got {x}")
    return Fraction(x)


def order_of_magnitude(x):
    """(3) The integer k with 10^(k - 1/2) <= x < 10^(k + 1/2), exactly; x an int or Fraction > 0."""
    x = _positive_rational("x", x)
    k = len(str(x.numerator)) - len(str(x.denominator))  # a guess, corrected exactly below
    while Fraction(10) ** k > x:
        k -= 1
    while Fraction(10) ** (k + 1) <= x:
        k += 1
    # now 10^k <= x < 10^(k+1): x is nearer 10^(k+1) in log when x^2 >= 10^(2k+1)
    return k + 1 if x * x >= Fraction(10) ** (2 * k + 1) else k


def parameter_count(module):
    """(4) The number of scalar parameters of a torch.nn.Module (each distinct tensor once)."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters())


def components(model):
    """(4) {"autoencoder", "text encoder", "unet"}: parameter counts of a TinySD's three parts."""
    parts = {"autoencoder": "ae", "text encoder": "text", "unet": "unet"}
    if not all(isinstance(getattr(model, a, None), torch.nn.Module) for a in parts.values()):
        raise TypeError(
            f"model: expected a TinySD (modules ae, text, unet), got {type(model).__name__}"
        )
    return {name: parameter_count(getattr(model, a)) for name, a in parts.items()}


def total(counts):
    """(5) The sum of a dict of component counts (ints or Fractions >= 0, at least one)."""
    if not isinstance(counts, dict) or not counts:
        raise TypeError(f"counts: expected a non-empty dict name -> count, got {counts!r:.60}")
    for name, c in counts.items():
        if isinstance(c, bool) or not isinstance(c, Rational) or c < 0:
            raise ValueError(f"counts: {name!r} -> {c!r:.60} is not an int or Fraction >= 0")
    return sum(Fraction(c) for c in counts.values())


def ratio(a, b):
    """(6) a / b exactly; a, b ints or Fractions > 0."""
    return _positive_rational("a", a) / _positive_rational("b", b)


def nearest(x, unit=1):
    """(7) x rounded to the nearest multiple of `unit` (ties to even): x an int or Fraction,
    unit an int or Fraction > 0."""
    if isinstance(x, bool) or not isinstance(x, Rational):
        raise TypeError(f"x: expected an int or a Fraction, got {x!r:.60}")
    unit = _positive_rational("unit", unit)
    return round(Fraction(x) / unit) * unit
