"""The timing table of the Hugging Face guide "Methods and tools for efficient training on a single
GPU" (transformers docs, perf_train_gpu_one), as one copy of the checkpointing article reproduces
it (CKPT-09..CKPT-11): bert-large-uncased, one V100 16 GB, 512 random sequences of length 512,
one epoch, Trainer defaults. Each row: time (s), samples/s, GPU memory (MB), printed with 2
decimals (time, samples/s) and in whole MB.

The numbers are kept as exact Fractions of the printed decimals, and everything below is exact
arithmetic on them:

  (1) samples implied by a row:      t r                 (seconds x samples/s; the epoch: 512)
  (2) rounding of the printed digits: the true T, R lie within h = 0.005 of the printed t, r, so
                                      |T R - t r| <= h (t + r) + h^2 = rounding_bound(row);
                                      a row is consistent with 512 samples when
                                      |t r - 512| <= rounding_bound(row)
  (3) ratios between rows a -> b:    time t_b / t_a, throughput r_b / r_a, memory m_b / m_a;
                                      "x% slower" read as time is t_b / t_a - 1, read as
                                      throughput 1 - r_b / r_a (slowdown(a, b, measure))

Since t r ~ 512 on every row, the two readings of a slowdown are x and 1 - 1/(1 + x): a 29.4%
longer time is a 22.7% lower throughput.

Domains: a row (and a, b) a Row; measure "time" or "throughput".
"""

from fractions import Fraction
from typing import NamedTuple

from impl._checks import choice

SAMPLES = 512  # sequences in the epoch
HALF_UNIT = Fraction(1, 200)  # half the last printed digit of time and samples/s (2 decimals)
MEASURES = ("time", "throughput")


class Row(NamedTuple):
    """One row of the table: the setting and the three printed numbers (exact)."""

    setting: str
    time: Fraction  # s
    rate: Fraction  # samples/s
    memory: int  # MB


def _row(setting, time, rate, memory):
    return Row(setting, Fraction(time), Fraction(rate), memory)


# in the order the guide prints them (the article's copy)
ROWS = {
    "batch 4": _row("batch 4", "57.82", "8.86", 14949),
    "accumulation": _row("batch 1 x accumulation 4", "66.03", "7.75", 8681),
    "accumulation + checkpointing": _row(
        "batch 1 x accumulation 4 + gradient checkpointing", "85.47", "5.99", 6775
    ),
    "fp16": _row("fp16, batch 4", "27.46", "18.64", 13939),
    "accumulation + checkpointing + fp16": _row(
        "batch 1 x accumulation 4 + checkpointing + fp16", "50.76", "10.09", 7275
    ),
    "adafactor": _row("Adafactor, batch 4", "64.31", "7.96", 12295),
    "accumulation + checkpointing + fp16 + adafactor": _row(
        "batch 1 x accumulation 4 + checkpointing + fp16 + Adafactor", "56.54", "9.06", 4847
    ),
}


def _check_row(name, row):
    if not isinstance(row, Row):
        raise TypeError(f"{name}: expected a hf_table.Row, got {type(row).__name__}")
    for field in ("time", "rate"):
        value = getattr(row, field)
        if not isinstance(value, Fraction) or value <= 0:
            raise ValueError(f"{name}: {field} must be a positive Fraction, got {value!r}")
    if isinstance(row.memory, bool) or not isinstance(row.memory, int) or row.memory <= 0:
        raise ValueError(f"{name}: memory must be a positive integer (MB), got {row.memory!r}")
    return row


def implied_samples(row):
    """(1): t r, the samples the row's time and throughput imply (exact)."""
    row = _check_row("row", row)
    return row.time * row.rate


def rounding_bound(row):
    """(2): h (t + r) + h^2, the largest |T R - t r| for true values within h of the printed."""
    row = _check_row("row", row)
    return HALF_UNIT * (row.time + row.rate) + HALF_UNIT**2


def time_ratio(a, b):
    """(3): t_b / t_a."""
    a, b = _check_row("a", a), _check_row("b", b)
    return b.time / a.time


def throughput_ratio(a, b):
    """(3): r_b / r_a."""
    a, b = _check_row("a", a), _check_row("b", b)
    return b.rate / a.rate


def memory_ratio(a, b):
    """(3): m_b / m_a."""
    a, b = _check_row("a", a), _check_row("b", b)
    return Fraction(b.memory, a.memory)


def slowdown(a, b, measure):
    """(3): how much slower b is than a, as a fraction: t_b / t_a - 1 ("time") or
    1 - r_b / r_a ("throughput")."""
    choice("measure", measure, MEASURES)
    if measure == "time":
        return time_ratio(a, b) - 1
    return 1 - throughput_ratio(a, b)
