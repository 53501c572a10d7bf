"""The range of a 16-bit float and where e^x leaves it (FA-08; the note "From Online Softmax to
FlashAttention" motivates safe softmax with "the maximum number that float16 can support is 65536,
which means that for x > 11, e^x would exceed the effective range of float16").

(1) largest finite value   x_max = the largest finite number of the format, found from its bit
                           patterns (not from torch.finfo): float16 (1 sign, 5 exponent, 10
                           fraction bits) has x_max = (2 - 2^-10) 2^15 = 65504; 2^16 = 65536 is not
                           a float16 (it rounds to inf).
(2) e^x in a format        exp_in(x, dtype, via): x rounded to `dtype`, e^x computed in `via`
                           (None: in `dtype` itself, by torch's kernel for it) and rounded to
                           `dtype`. Round to nearest sends every real y >= x_max + ulp/2 = 65520
                           to inf, so e^x is inf from x = ln 65520 = 11.0901 on.
(3) overflow threshold     x* = the smallest value of the format whose exp_in is inf, found by
                           evaluating exp_in at every finite positive value of the format (2^15
                           of them for a 16-bit format): the first representable value above
                           ln 65520, for float16 11.09375 (the largest finite e^x, at 11.0859375,
                           is 65248).
"""

import torch

SIXTEEN_BIT = (torch.float16, torch.bfloat16)
VIA = (None, torch.float32, torch.float64)


def largest_finite(dtype):
    """(1): the largest finite value of the 16-bit floating dtype, as a Python float."""
    values = _positive_values(_format("dtype", dtype))
    return float(values[torch.isfinite(values)].max())


def exp_in(x, dtype, via=None):
    """(2): e^x in `dtype` (x a real floating tensor, rounded to dtype first); via None computes
    in dtype, via float32 or float64 computes there and rounds the result to dtype."""
    from impl._checks import tensor

    tensor("x", x, finite=False)
    if bool(torch.isnan(x).any()):
        raise ValueError("x: has a nan entry")
    dtype, via = _format("dtype", dtype), _via(via)
    x = x.to(dtype)
    return torch.exp(x if via is None else x.to(via)).to(dtype)


def overflow_threshold(dtype, via=None):
    """(3): the smallest finite value x of the 16-bit `dtype` with exp_in(x, dtype, via) = inf."""
    dtype, via = _format("dtype", dtype), _via(via)
    values = _positive_values(dtype)
    values = values[torch.isfinite(values)]
    inf = torch.isinf(exp_in(values, dtype, via))
    return float(values[inf][0])


def _positive_values(dtype):
    """Every non-negative value of the 16-bit dtype in increasing order, up to +inf and the nans
    (bit patterns 0 .. 0x7fff read as dtype)."""
    return torch.arange(0, 0x8000, dtype=torch.int16).view(dtype)


def _format(name, dtype):
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name}: expected a torch dtype, got {dtype!r:.60}")
    if dtype not in SIXTEEN_BIT:
        raise ValueError(f"{name}: expected one of {SIXTEEN_BIT}, got {dtype}")
    return dtype


def _via(via):
    if via is not None and not isinstance(via, torch.dtype):
        raise TypeError(f"via: expected None or a torch dtype, got {via!r:.60}")
    if via not in VIA:
        raise ValueError(f"via: expected one of {VIA}, got {via}")
    return via
