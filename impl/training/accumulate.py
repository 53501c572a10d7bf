"""Gradient accumulation over micro-batches (seed article 2, CKPT-06).

A batch of N tokens is split into micro-batches m = 1..M of n_m tokens (sum_m n_m = N), l_t the
loss of token t. The full batch's mean-reduced loss and its gradient are

    L = (1/N) sum_t l_t,        grad L = sum_m grad( (1/N) sum_{t in m} l_t ),

so one backward per micro-batch of its token-SUMMED loss divided by the batch's total token count
N, accumulated into .grad, gives grad L exactly for any n_m (normalise="tokens", the default).
The common recipe backpropagates each micro-batch's MEAN loss divided by the number of
micro-batches M (normalise="micro_batches"):

    sum_m grad( (1/M) (1/n_m) sum_{t in m} l_t ) = sum_m (N / (M n_m)) grad( (1/N) sum_{t in m} l_t ),

which is grad L when every n_m = N / M (equal-size micro-batches) and not in general: each
micro-batch is weighted by N / (M n_m), so tokens of short micro-batches count more.

accumulate(per_token_loss, params, micro_batches, tokens, normalise="tokens")
    per_token_loss(micro_batch) -> 1-D tensor of the n_m token losses (tokens[m] of them; N is
    needed before the first backward, so the counts are given, as a training loop reads them
    from its labels). One micro-batch's graph is alive at a time. Each backward is a plain
    loss.backward(), as in a training loop: it accumulates into every leaf that requires grad,
    not only params (backward(inputs=params) would prune a reentrant checkpoint's node, which has
    no parameter among its inputs, and its layers would get no gradient). Returns the params' .grad.

Domains: per_token_loss a callable returning finite token losses that depend on params;
params a non-empty iterable of tensors that require grad; micro_batches a non-empty sequence;
tokens one integer count >= 1 per micro-batch; normalise "tokens" or "micro_batches".
"""

import numpy as np
import torch

from impl._checks import choice, function

NORMALISE = ("tokens", "micro_batches")


def accumulate(per_token_loss, params, micro_batches, tokens, normalise="tokens"):
    function("per_token_loss", per_token_loss)
    params, micro_batches, tokens = (
        _listed("params", params),
        _listed("micro_batches", micro_batches),
        _listed("tokens", tokens),
    )
    if not params:
        raise ValueError("params: at least one parameter is needed")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ValueError(f"params[{i}]: expected a tensor that requires grad, got {p!r:.60}")
    choice("normalise", normalise, NORMALISE)
    if not micro_batches:
        raise ValueError("micro_batches: at least one micro-batch is needed")
    if (
        len(tokens) != len(micro_batches)
        or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in tokens)
        or min(tokens) < 1
    ):
        raise ValueError(
            f"tokens: expected one integer count >= 1 per micro-batch ({len(micro_batches)}), "
            f"got {tokens}"
        )
    tokens = [int(n) for n in tokens]
    N, M = sum(tokens), len(micro_batches)
    for m, batch in enumerate(micro_batches):
        losses = per_token_loss(batch)
        if not isinstance(losses, torch.Tensor) or losses.ndim != 1:
            raise ValueError(
                f"per_token_loss: must return a 1-D tensor of token losses, got {losses!r:.60}"
            )
        if not torch.isfinite(losses).all():
            raise ValueError(f"per_token_loss: a non-finite token loss in micro-batch {m}")
        if not losses.requires_grad:
            raise ValueError(f"per_token_loss: micro-batch {m}'s losses do not depend on params")
        if losses.numel() != tokens[m]:
            raise ValueError(
                f"tokens: micro-batch {m} has {tuple(losses.shape)} token losses, "
                f"tokens says {tokens[m]}"
            )
        loss = losses.sum() / N if normalise == "tokens" else losses.mean() / M
        loss.backward()
    return [p.grad for p in params]


def _listed(name, values):
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence, got a string")
    try:
        return list(values)
    except TypeError:
        raise TypeError(f"{name}: expected a sequence, got {type(values).__name__}") from None
