"""Rejected variants of the full-text checkpointing claims (CKPT-07..CKPT-11): a checkpoint that
keeps everything, an accumulation that keeps every micro-batch's graph, and misreadings of the
guide's table (a tighter rounding than the printed digits, misaligned columns, a ratio upside
down, a percentage taken of the new time)."""

from fractions import Fraction

from impl.training import accumulate as gradacc
from impl.training import checkpoint as ck
from impl.training import hf_table
from properties.variants import variant


@variant(
    "CKPT-07.opening",
    "CKPT-07.animation",
    "CKPT-08",
    "CKPT-10.thirty-percent-compute",
    "CKPT-11",
    name="checkpoint-keeps-everything",
    why="checkpointing silently switched off: the checkpoint runs its segment with gradients in "
    "the forward, so every activation is saved and nothing is recomputed",
)
def _(mp):
    mp.setattr(ck, "checkpoint", lambda fn, *args, preserve_rng_state=True: fn(*args))


@variant(
    "CKPT-08",
    "CKPT-11",
    name="accumulate-one-backward-for-all-micro-batches",
    why="the micro-batches' losses summed and backpropagated once at the end: every "
    "micro-batch's graph (its activations) is alive at the same time",
)
def _(mp):
    def one_backward(per_token_loss, params, micro_batches, tokens, normalise="tokens"):
        params, micro_batches, tokens = list(params), list(micro_batches), list(tokens)
        N, M = sum(tokens), len(micro_batches)
        total = 0
        for batch in micro_batches:
            losses = per_token_loss(batch)
            total = total + (losses.sum() / N if normalise == "tokens" else losses.mean() / M)
        total.backward()
        return [p.grad for p in params]

    mp.setattr(gradacc, "accumulate", one_backward)


@variant(
    "CKPT-09",
    name="rounding-of-a-third-decimal",
    why="the rounding budget of numbers printed with 3 decimals (h = 0.0005), not the table's 2",
)
def _(mp):
    mp.setattr(hf_table, "HALF_UNIT", Fraction(1, 2000))


@variant(
    "CKPT-09",
    name="samples-per-second-column-shifted",
    why="the samples/s column read one row off (each row's time with the next row's throughput)",
)
def _(mp):
    rows = dict(hf_table.ROWS)
    names = list(rows)
    for name, after in zip(names, names[1:] + names[:1], strict=True):
        mp.setitem(hf_table.ROWS, name, rows[name]._replace(rate=rows[after].rate))


@variant(
    "CKPT-10.throughput",
    name="throughput-ratio-upside-down",
    why="the throughput ratio taken as r_a / r_b (old over new), so the drop comes out negative",
)
def _(mp):
    mp.setattr(hf_table, "throughput_ratio", lambda a, b: a.rate / b.rate)


@variant(
    "CKPT-10.time",
    "CKPT-10.thirty-percent-compute",
    name="time-change-over-the-new-time",
    why="the time increase as a percentage of the new time, 1 - t_a / t_b (22.7%), not of the "
    "old one",
)
def _(mp):
    slowdown = hf_table.slowdown

    def over_new_time(a, b, measure):
        if measure == "time":
            return 1 - a.time / b.time
        return slowdown(a, b, measure)

    mp.setattr(hf_table, "slowdown", over_new_time)
