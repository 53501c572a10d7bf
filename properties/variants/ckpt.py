"""Rejected variants of the gradient-checkpointing claims (CKPT-*): recomputation without the
random state, plans that are really other plans, memory kept without being declared, and the
usual normalisations of gradient accumulation."""

import functools
import math

import torch

from impl.training import accumulate as gradacc
from impl.training import checkpoint as ck
from properties.variants import variant


class _InputGradientsOnly(ck._Checkpoint):
    """The recomputed segment's backward by torch.autograd.grad on its inputs only: the layers'
    parameters inside the segment never receive their gradients."""

    @staticmethod
    def backward(ctx, *grads):
        args = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        with torch.random.fork_rng(devices=[], enabled=ctx.preserve):
            if ctx.preserve:
                torch.set_rng_state(ctx.cpu_state)
            with torch.enable_grad():
                out = ctx.fn(*args)
        wanted = [a for a in args if a.requires_grad]
        found = iter(torch.autograd.grad(out, wanted, grads))
        return (None, None, *(next(found) if a.requires_grad else None for a in args))


@variant(
    "CKPT-01",
    name="checkpoint-drops-parameter-gradients",
    why="the recomputation's backward takes autograd.grad with respect to the segment's inputs "
    "only, so the parameters inside checkpointed segments get no gradient",
)
def _(mp):
    mp.setattr(ck, "checkpoint", lambda fn, *args, preserve_rng_state=True:
               _InputGradientsOnly.apply(fn, preserve_rng_state, *args))  # fmt: skip


@variant(
    "CKPT-02",
    name="checkpoint-without-rng-restore",
    why="the recomputation runs under the current random state, not the forward's: dropout draws "
    "another mask",
)
def _(mp):
    checkpoint = ck.checkpoint
    mp.setattr(ck, "checkpoint", lambda fn, *args, preserve_rng_state=True:
               checkpoint(fn, *args, preserve_rng_state=False))  # fmt: skip


@variant(
    "CKPT-03",
    name="recompute-all-as-checkpoint-every-layer",
    why="'recompute everything' read as checkpointing every layer: it keeps every layer's input, "
    "n activations, for 2n - 1 evaluations",
)
def _(mp):
    mp.setattr(ck, "recompute_all", lambda chain, x: ck.segments(chain, x, 1))


@variant(
    "CKPT-04",
    name="sqrt-segments-off-by-one",
    why="segments of round(sqrt(n)) + 1 layers instead of round(sqrt(n))",
)
def _(mp):
    mp.setattr(ck, "sqrt_segments",
               lambda chain, x: ck.segments(chain, x, min(len(chain),
                                                          round(math.sqrt(len(chain))) + 1)))  # fmt: skip


@variant(
    "CKPT-04",
    name="segments-checkpoint-the-last-too",
    why="every segment checkpointed, the last one included, so its forward runs twice",
)
def _(mp):
    def all_checkpointed(chain, x, k):
        n = len(chain)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(f"k: segment length must be an integer in [1, {n}], got {k!r}")
        for a in range(0, n, k):
            x = ck.checkpoint(functools.partial(chain.run, a=a, b=min(a + k, n)), x)
        return x

    mp.setattr(ck, "segments", all_checkpointed)


@variant(
    "CKPT-05",
    name="recursive-plan-keeps-every-activation",
    why="a recursive plan that caches every activation it computes without declaring it: the "
    "same evaluations, the same declared memory, O(n) real memory",
)
def _(mp):
    recursive = ck._recursive

    def hoarding(chain, x, *args, **kw):
        cache, layer = {}, chain.layer

        def caching(i, x):
            y = layer(i, x)
            cache[i] = y.detach()
            return y

        chain.layer = caching  # lives as long as the chain: through the backward
        return recursive(chain, x, *args, **kw)

    mp.setattr(ck, "_recursive", hoarding)


def _tail_call_backprop(chain, a, b, x_a, dy, s, tape=None):
    """impl's _backprop before the loop: the left part as a tail call, whose caller frame keeps
    its stale gradient alive, one more per split of the same budget."""
    n = b - a
    m = ck.cost(n, s, tape)[1]
    if n == 1 or m == 0:
        with torch.enable_grad():
            x = x_a.detach().requires_grad_()
            torch.autograd.backward(chain.run(x, a, b), dy)
        return x.grad
    if s == 0:
        for i in range(b - 1, a - 1, -1):
            with torch.no_grad():
                x_i = chain.run(x_a, a, i)
            dy = _tail_call_backprop(chain, i, i + 1, x_i, dy, 0)
        return dy
    with torch.no_grad():
        x_m = chain.run(x_a, a, a + m)
    held = ck._hold(x_m)
    dy = _tail_call_backprop(chain, a + m, b, x_m, dy, None if s is None else s - 1, tape)
    del x_m, held
    return _tail_call_backprop(chain, a, a + m, x_a, dy, s, tape)


@variant(
    "CKPT-05",
    name="revolve-tail-call-keeps-gradients",
    why="the recursion's left part as a tail call (impl before this issue): every pending frame "
    "keeps a gradient alive, so revolve(s) grows with n at fixed s",
)
def _(mp):
    mp.setattr(ck, "_backprop", _tail_call_backprop)


@variant(
    "CKPT-06",
    name="accumulate-mean-of-means",
    why="token-level accumulation that averages the micro-batches' mean losses (loss_m / M) "
    "instead of summing token losses over the batch's N tokens",
)
def _(mp):
    accumulate = gradacc.accumulate
    mp.setattr(gradacc, "accumulate",
               lambda f, params, batches, tokens, normalise="tokens":
               accumulate(f, params, batches, tokens, "micro_batches"))  # fmt: skip


@variant(
    "CKPT-06",
    name="accumulate-without-dividing-by-m",
    why="micro-batch mean losses accumulated without the division by the number of micro-batches M",
)
def _(mp):
    accumulate = gradacc.accumulate

    def undivided(f, params, batches, tokens, normalise="tokens"):
        params, batches = list(params), list(batches)
        before = [None if p.grad is None else p.grad.clone() for p in params]
        grads = accumulate(f, params, batches, tokens, normalise)
        if normalise == "micro_batches":  # the M backward passes' sum, times M
            for p, g0 in zip(params, before, strict=True):
                p.grad.mul_(len(batches)) if g0 is None else p.grad.sub_(g0).mul_(
                    len(batches)
                ).add_(g0)
        return grads

    mp.setattr(gradacc, "accumulate", undivided)
