"""Gradient checkpointing (seed article 2; Chen et al. 2016; Griewank & Walther 2000).

A chain of n layers, x_i = f_i(x_{i-1}), y = x_n. Backprop through f_i needs f_i's saved tensors,
which exist only if f_i ran with gradients on x_{i-1}. A plan trades stored activations for
recomputed layer evaluations (a = bytes of one activation x_i, b = bytes one layer saves):

  store_all        keep everything:                          peak n b,       n evaluations
  segments(k)      keep only x_0, x_k, x_2k, ... (checkpoint); in the backward recompute each
                   segment from its input with gradients and backprop through it; the last
                   segment, whose backward comes first, is not checkpointed (as in torch's
                   checkpoint_sequential): peak max_j [j a + len_j b] over segments j = 0..S-1
                   (S = ceil(n / k); a segment's first layer saves its stored input, counted once),
                   2n - len_{S-1} evaluations; S a + k b is smallest near k = sqrt(n a / b)
  recompute_all    keep x_0 only; for i = n..1 recompute x_{i-1} from x_0 without gradients, then
                   run f_i with them (the forward does i = n): peak a + b,    n (n + 1) / 2
  revolve(s)       at most s stored activations besides x_0: backprop [0, n) = choose m, advance
                   to x_m without gradients (m evaluations), backprop [m, n) with s - 1, then [0, m)
                   with s; m from the dynamic programme T(n, s) = min_m m + T(n - m, s - 1)
                   + T(m, s), T(1, s) = 1, T(n, 0) = n (n + 1) / 2 (recompute_all); the first
                   path of the recursion is the forward sweep, so the run costs T(n, s) in all,
                   Griewank's optimum (n reverse steps + t(n, s + 1) forward steps). With
                   s = ceil(log2 n) this is O(log n) memory for O(n log n) evaluations.
  bisection        revolve's recursion with m = floor(n / 2) and unlimited s: log2 n activations.
  optimal(s)       revolve's programme where a sub-chain of n layers may also be taped whole (cost
                   n) when its saved tensors fit revolve's bound, n b <= (1 + s) a + b: it includes
                   segments and revolve, so it is never worse than either at the same memory.

`checkpoint(fn, *args)` is one segment: it saves only the inputs, and in the backward it runs fn
again with the random state of the forward restored (CPU, and CUDA when initialised), so dropout
draws the same mask; `preserve_rng_state=False` shows why that matters. Like torch's reentrant
checkpoint, parameter gradients are accumulated into .grad by the inner backward.

`SavedBytes` counts the bytes saved for backward (saved_tensors_hooks; each storage once, while it
is alive), plus the activations the recursive plans hold between recomputations, and `Chain`
counts layer evaluations, so plans are checked exactly, not by RSS.

Domains: chain a Chain; x a finite tensor (..., width) of the chain's dtype; k an integer in
[1, n]; s an integer >= 0; fn a callable returning a tensor (or a tuple of them) from tensors
args (at least one); checkpoint_fn None or a callable like checkpoint (checkpoint_fn(fn, x)
-> fn(x)); Chain(n, width) positive integers, dropout in [0, 1), a floating dtype, seed an
integer >= 0; exclude an iterable of tensors. Chain.layer and Chain.run, which the plans call
for every layer, check indices, shape and dtype but not finiteness (the plans check x once).
"""

import functools
import math

import numpy as np
import torch

from impl._checks import flag, function, integer, number, positive_int, tensor


def checkpoint(fn, *args, preserve_rng_state=True):
    function("fn", fn)
    if not args:
        raise ValueError("args: at least one tensor input is needed")
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor):
            raise TypeError(f"args[{i}]: expected a torch tensor, got {type(a).__name__}")
    flag("preserve_rng_state", preserve_rng_state)
    return _Checkpoint.apply(fn, preserve_rng_state, *args)


class _Checkpoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, preserve_rng_state, *args):
        ctx.fn, ctx.preserve = fn, preserve_rng_state
        if preserve_rng_state:
            ctx.cpu_state = torch.get_rng_state()
            ctx.cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        ctx.save_for_backward(*args)
        with torch.no_grad():
            out = fn(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
            raise TypeError(f"fn: must return a tensor or a tuple of tensors, got {out!r:.60}")
        return out

    @staticmethod
    def backward(ctx, *grads):
        args = [a.detach().requires_grad_(a.requires_grad) for a in ctx.saved_tensors]
        devices = list(range(len(ctx.cuda_states))) if ctx.preserve else []
        with torch.random.fork_rng(devices=devices, enabled=ctx.preserve):
            if ctx.preserve:
                torch.set_rng_state(ctx.cpu_state)
                for device, state in zip(devices, ctx.cuda_states, strict=True):
                    torch.cuda.set_rng_state(state, device)
            with torch.enable_grad():
                out = ctx.fn(*args)
        torch.autograd.backward(out, grads)
        return (None, None, *(a.grad if a.requires_grad else None for a in args))


class Chain(torch.nn.Module):
    """n blocks x -> x + tanh(W x + b) (optionally with dropout), counting layer evaluations.
    A layer saves TAPE = 2 activations for its backward: the Linear's input and tanh's output."""

    TAPE = 2

    def __init__(self, n, width, dropout=0.0, dtype=torch.float64, seed=0):
        n, width = positive_int("n", n), positive_int("width", width)
        number("dropout", dropout, 0, 1, hi_open=True)
        if np.ndim(dropout):
            raise TypeError(f"dropout: must be a number, got {dropout!r:.60}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype: expected a floating torch dtype, got {dtype!r}")
        seed = integer("seed", seed, hi=2**64 - 1)
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width, dtype=dtype)
                                          for _ in range(n))  # fmt: skip
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) / math.sqrt(width))
        self.dropout = float(dropout)
        self.evaluations = 0

    def __len__(self):
        return len(self.layers)

    def layer(self, i, x):
        """f_{i+1} (0-based i in [0, n)): one counted evaluation."""
        integer("i", i, 0, len(self) - 1)
        self._check_shape(x)
        self.evaluations += 1
        h = torch.tanh(self.layers[i](x))
        if self.dropout:
            h = torch.nn.functional.dropout(h, self.dropout, training=True)
        return x + h

    def run(self, x, a, b):
        """x_b from x_a through layers a..b-1 (0 <= a <= b <= n)."""
        a, b = integer("a", a, 0, len(self)), integer("b", b, 0, len(self))
        if b < a:
            raise ValueError(f"b: must be >= a = {a}, got {b}")
        self._check_shape(x)
        for i in range(a, b):
            x = self.layer(i, x)
        return x

    def _check_shape(self, x):
        """x a tensor (..., width) of the chain's dtype (no finiteness check: per layer)."""
        weight = self.layers[0].weight
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != weight.shape[1] or x.dtype != weight.dtype:
            raise ValueError(
                f"x: expected (..., {weight.shape[1]}) of {weight.dtype}, got "
                f"{tuple(x.shape)} of {x.dtype}"
            )


def _check(chain, x):
    if not isinstance(chain, Chain):
        raise TypeError(f"chain: expected a Chain, got {type(chain).__name__}")
    tensor("x", x, ndim=None)
    chain._check_shape(x)


def store_all(chain, x):
    _check(chain, x)
    return chain.run(x, 0, len(chain))


def segments(chain, x, k, checkpoint_fn=None):
    """Checkpoint every segment of k layers but the last (which may be shorter): its backward
    comes first, so it is run with gradients at once rather than recomputed. checkpoint_fn (a
    function like `checkpoint`, default this module's) checkpoints each segment: the same plan
    with another library's checkpoint."""
    _check(chain, x)
    if checkpoint_fn is None:
        checkpoint_fn = checkpoint
    function("checkpoint_fn", checkpoint_fn)
    n = len(chain)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k: segment length must be an integer in [1, {n}], got {k!r}")
    k = int(k)
    last = (n - 1) // k * k
    for a in range(0, last, k):
        x = checkpoint_fn(functools.partial(chain.run, a=a, b=a + k), x)
    return chain.run(x, last, n)


def sqrt_segments(chain, x):
    _check(chain, x)
    return segments(chain, x, max(1, round(math.sqrt(len(chain)))))


def recompute_all(chain, x):
    _check(chain, x)
    return _recursive(chain, x, 0)


def revolve(chain, x, s):
    """At most s stored activations besides x_0, with the fewest evaluations (the DP above)."""
    _check(chain, x)
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
        raise ValueError(f"s: number of stored activations must be an integer >= 0, got {s!r}")
    return _recursive(chain, x, int(s))


def bisection(chain, x):
    _check(chain, x)
    return _recursive(chain, x, None)


def optimal(chain, x, s):
    """Fewest evaluations within s activations besides x_0 when, unlike revolve, a sub-chain may
    be taped whole (its layers' saved tensors kept, chain.TAPE activations per layer)."""
    _check(chain, x)
    if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
        raise ValueError(f"s: memory budget in activations must be an integer >= 0, got {s!r}")
    return _recursive(chain, x, int(s), chain.TAPE)


def _recursive(chain, x, s, tape=None):
    if chain.dropout:
        raise ValueError(
            "chain: the recursive plans do not replay random state; use segments() with dropout"
        )
    return _Recursive.apply(chain, (s, tape), x, *chain.parameters())


@functools.cache
def cost(n, s, tape=None):
    """(T(n, s), best first split m): evaluations to backprop n layers from their stored input with
    s further stored activations (s = None: unlimited, bisection). With `tape` (activations one
    layer saves), n layers may also be taped whole, m = 0, at cost n, when their n tape
    activations (the first is the stored input) fit revolve's bound (1 + s) + tape."""
    if n == 1:
        return 1, None
    if tape is not None and (n - 1) * tape <= s + 1:
        return n, 0
    if s is None:
        m = n // 2
        return m + cost(n - m, None)[0] + cost(m, None)[0], m
    if s == 0:
        return n * (n + 1) // 2, None
    return min((m + cost(n - m, s - 1, tape)[0] + cost(m, s, tape)[0], m) for m in range(1, n))


class _Recursive(torch.autograd.Function):
    """The recursion's first path runs in the forward: it advances to the split points, holding
    them (the checkpoints of revolve's forward sweep), and tapes the last sub-chain with gradients
    (recompute-all: only its last layer). The backward finishes the recursion from there, so a
    plan costs exactly cost(n, s, tape) evaluations, the forward included."""

    @staticmethod
    def forward(ctx, chain, plan, x, *params):
        s, tape = plan
        n, a = len(chain), 0
        spine = [(0, x.detach(), s, x)]  # (start, activation, budget, what keeps it counted)
        while n - a > 1 and s != 0 and cost(n - a, s, tape)[1] != 0:
            m = cost(n - a, s, tape)[1]
            x_m = chain.run(spine[-1][1], a, a + m)
            a, s = a + m, None if s is None else s - 1
            spine.append((a, x_m, s, _hold(x_m)))
        # tape the last sub-chain; with s = 0 (recompute-all) only its last layer, after advancing
        # to it without holding anything (the tape keeps its input)
        t0 = a if n - a == 1 or s != 0 else n - 1
        x_t0 = chain.run(spine[-1][1], a, t0)
        with torch.enable_grad():
            x_tape = x_t0.detach().requires_grad_()
            y = chain.run(x_tape, t0, n)
        ctx.chain, ctx.tape, ctx.spine, ctx.last = chain, tape, spine, (x_tape, y, t0)
        ctx.save_for_backward(x)
        return y.detach()

    @staticmethod
    def backward(ctx, dy):
        chain, spine = ctx.chain, ctx.spine
        x_tape, y, t0 = ctx.last
        torch.autograd.backward(y, dy)
        dy = x_tape.grad
        del ctx.last, x_tape, y
        a, x_a, s, _ = spine.pop()
        if t0 > a:  # recompute-all for the rest of the last sub-chain
            dy = _backprop(chain, a, t0, x_a, dy, 0)
        end = a
        while spine:  # the left parts of the splits, last first
            a, x_a, s, _ = spine.pop()
            dy = _backprop(chain, a, end, x_a, dy, s, ctx.tape)
            end = a
        return (None, None, dy, *(None for _ in chain.parameters()))


def _backprop(chain, a, b, x_a, dy, s, tape=None):
    """dL/dx_a from dL/dx_b; parameter gradients accumulate into .grad. The right part of a split
    is a recursive call, the left part a loop (not a tail call, whose caller would keep its stale
    gradient alive): frames nest only through right parts, at most s deep (log2 n for bisection),
    each holding one checkpoint and one gradient."""
    while True:
        n = b - a
        m = cost(n, s, tape)[1]
        if n == 1 or m == 0:  # tape layers a..b-1 and backprop through them
            with torch.enable_grad():
                x = x_a.detach().requires_grad_()
                torch.autograd.backward(chain.run(x, a, b), dy)
            return x.grad
        if s == 0:  # recompute_all: x_{i} from x_a for each layer, last first
            for i in range(b - 1, a - 1, -1):
                with torch.no_grad():
                    x_i = chain.run(x_a, a, i)
                dy = _backprop(chain, i, i + 1, x_i, dy, 0)
            return dy
        with torch.no_grad():
            x_m = chain.run(x_a, a, a + m)
        held = _hold(x_m)  # a stored activation, counted by an active SavedBytes
        dy = _backprop(chain, a + m, b, x_m, dy, None if s is None else s - 1, tape)
        del x_m, held
        b = a + m  # then [a, a + m) with the same budget


_ACTIVE = []  # SavedBytes contexts in use, innermost last


def _hold(t):
    """Count a checkpoint that a plan keeps outside autograd's saved tensors, while it is held."""
    return _ACTIVE[-1]._pack(t) if _ACTIVE else t


class SavedBytes:
    """Bytes saved for backward inside the context: `live` now, `peak` so far. Each storage is
    counted once while any saved reference to it is alive; tensors in `exclude` (parameters) are
    not activations and are not counted."""

    def __init__(self, exclude=()):
        try:
            exclude = list(exclude)
        except TypeError:
            raise TypeError(
                f"exclude: expected an iterable of tensors, got {exclude!r:.60}"
            ) from None
        for i, p in enumerate(exclude):
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"exclude[{i}]: expected a tensor, got {type(p).__name__}")
        self.exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self.refs, self.live, self.peak = {}, 0, 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def __enter__(self):
        self._hooks.__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc):
        _ACTIVE.remove(self)
        return self._hooks.__exit__(*exc)

    def _pack(self, t):
        ptr = t.untyped_storage().data_ptr()
        if ptr in self.exclude:
            return t
        count, nbytes = self.refs.get(ptr, (0, t.untyped_storage().nbytes()))
        if count == 0:
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        self.refs[ptr] = (count + 1, nbytes)
        return _Saved(t, ptr, self)

    @staticmethod
    def _unpack(saved):
        return saved if isinstance(saved, torch.Tensor) else saved.tensor

    def _release(self, ptr):
        count, nbytes = self.refs[ptr]
        if count == 1:  # forget the storage: a later one at the same address has its own size
            del self.refs[ptr]
            self.live -= nbytes
        else:
            self.refs[ptr] = (count - 1, nbytes)


class _Saved:
    def __init__(self, tensor, ptr, owner):
        self.tensor, self.ptr, self.owner = tensor, ptr, owner

    def __del__(self):
        self.owner._release(self.ptr)
