"""Family `training` (seed articles 2 and 4: packing, padding removal, gradient checkpointing):
the functions its properties call.

Interface (conventions of impl/training: packing.py, collate.py, checkpoint.py, accumulate.py):
  packers
    next_fit(lengths, capacity, oversize="alone") -> pack_of     the in-order single buffer
    window(lengths, capacity, W, oversize="alone") -> pack_of    next-fit with a look-ahead of W
    first_fit_decreasing(...), best_fit_decreasing(...) -> pack_of
    packers() -> {name: f(lengths, capacity, oversize="alone") -> pack_of}: every packer of the
        implementation (PACK-01: each sample exactly once, packs within capacity)
    pack_of[i] is sample i's pack (packs numbered 0..P-1, none skipped; -1: filtered out).
    A named packer an implementation lacks is None; the properties that need it skip it.
  collator and padding removal
    padded(samples, pad_id=0) -> {input_ids, attention_mask, labels}
    packed(samples) -> {input_ids, position_ids, labels, cu_seqlens, max_seqlen}
    unpad(x, attention_mask) -> (tokens, indices, cu_seqlens, max_seqlen);  pad(x, indices, B, T)
    cu_seqlens_from_position_ids(position_ids), cu_seqlens_from_mask(attention_mask)
    varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, causal) -> (O, L)
    tiny_lm(**kw) -> impl.training.lm.TinyLM;  shifted_token_loss(logits, labels)
  checkpoint plans (on impl.training.checkpoint.Chain; x (..., width))
    checkpoint(fn, *args, preserve_rng_state=True)   one segment
    store_all(chain, x), segments(chain, x, k) (segments of k layers, the last one not
    checkpointed), sqrt_segments(chain, x), recompute_all(chain, x), revolve(chain, x, s),
    bisection(chain, x), optimal(chain, x, s) -> y;  a plan an implementation lacks is None
    cost(n, s, tape=None) -> (T, m): the recursive plans' programme: T layer evaluations to
        backprop n layers with s stored activations (s = None: bisection; tape: optimal, a
        sub-chain may be taped whole) and the first split m (CKPT-05: T(n, s) - n is Griewank's
        binomial optimum; revolve, bisection and optimal evaluate exactly T)
    accumulate(per_token_loss, params, micro_batches, tokens, normalise="tokens")

Reference looks impl/ up at call time, so that a rejected variant's patch of impl/ reaches it.
impl/ is ours and imported here; the peers' libraries are imported only inside their methods.
The inputs and meters the properties use beside the family (the chain, SavedBytes, the
allocator probe, packs and efficiency of a pack_of, the article's timing table) are TOOLS below.

Peers (libraries imported lazily, inside the methods):
  transformers   DataCollatorWithFlattening (packed), the flash-attention helpers of
                 transformers.modeling_flash_attention_utils (_unpad_input/_pad_input,
                 _get_unpad_data, prepare_fa_kwargs_from_position_ids).
  torch-reentrant, torch-non-reentrant   torch.utils.checkpoint.checkpoint in our segment plan.
  torch-sequential   torch.utils.checkpoint.checkpoint_sequential over the plan's segments.
  lmms-engine    0.1.4, the packing article's engine: its online packers
                 (lmms_engine.datasets.packing: FirstFitPacking, BestFitPacking, BalancedPacking)
                 driven as its MultiModalIterableDataset drives them, and its padding removal
                 (lmms_engine.models.sequence_packing_utils: _unpad_input, _get_unpad_data).
                 The package (installed without its dependencies) is not imported: the two module
                 files are loaded alone (importlib). sequence_packing_utils imports einops for one
                 rearrange("b s ... -> (b s) ...") (a reshape to (b s, ...)), and einops is not
                 installed: when it is missing a stub with exactly that reshape stands in for it.
                 A peer helper that raises on an input of the family's domain fails the claim
                 (AssertionError naming the library's error), so the audit reports `fails`.
"""

import functools
import importlib.util
import math
import pathlib
import sys
import types

import numpy as np

from impl.attention import tiled
from impl.training import accumulate as gradacc
from impl.training import checkpoint as ck
from impl.training import collate, lm, packing
from properties.adapters import Peer, late


class Reference:
    """The project's implementation, impl/training (and impl/attention/tiled for varlen)."""

    next_fit = late(packing, "next_fit")
    window = late(packing, "window")
    first_fit_decreasing = late(packing, "first_fit_decreasing")
    best_fit_decreasing = late(packing, "best_fit_decreasing")

    @classmethod
    def packers(cls):
        return {
            "next_fit": cls.next_fit,
            "first_fit_decreasing": cls.first_fit_decreasing,
            "best_fit_decreasing": cls.best_fit_decreasing,
            "window_4": lambda L, C, oversize="alone": cls.window(L, C, 4, oversize=oversize),
        }

    padded = late(collate, "padded")
    packed = late(collate, "packed")
    unpad = late(collate, "unpad")
    pad = late(collate, "pad")
    cu_seqlens_from_position_ids = late(collate, "cu_seqlens_from_position_ids")
    cu_seqlens_from_mask = late(collate, "cu_seqlens_from_mask")
    shifted_token_loss = late(collate, "shifted_token_loss")

    varlen_attention = late(tiled, "varlen_attention")  # PACK-03's; the attention family's too

    tiny_lm = late(lm, "TinyLM")

    checkpoint = late(ck, "checkpoint")
    store_all = late(ck, "store_all")
    segments = late(ck, "segments")
    sqrt_segments = late(ck, "sqrt_segments")
    recompute_all = late(ck, "recompute_all")
    revolve = late(ck, "revolve")
    bisection = late(ck, "bisection")
    optimal = late(ck, "optimal")
    cost = late(ck, "cost")
    accumulate = late(gradacc, "accumulate")


# ---------------------------------------------------------------- transformers


def _fa_utils():
    import transformers.modeling_flash_attention_utils as fa

    return fa


class Transformers(Reference):
    """transformers: DataCollatorWithFlattening(return_flash_attn_kwargs=True) as the packed
    collator; _unpad_input/_pad_input, _get_unpad_data and prepare_fa_kwargs_from_position_ids as
    padding removal. The padded collator, packers and checkpoint plans are the reference's."""

    next_fit = window = first_fit_decreasing = best_fit_decreasing = None
    store_all = segments = sqrt_segments = recompute_all = revolve = bisection = optimal = None

    @staticmethod
    def packers():
        return {}

    @staticmethod
    def packed(samples):
        import torch
        import transformers

        batch = transformers.DataCollatorWithFlattening(return_flash_attn_kwargs=True)(
            [{"input_ids": list(map(int, torch.as_tensor(s).tolist()))} for s in samples]
        )
        return dict(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                    labels=batch["labels"], cu_seqlens=batch["cu_seq_lens_q"],
                    max_seqlen=int(batch["max_length_q"]))  # fmt: skip

    @staticmethod
    def unpad(x, attention_mask):
        tokens, indices, cu, max_len, *_ = _fa_utils()._unpad_input(x, attention_mask)
        return tokens, indices, cu, int(max_len)

    @staticmethod
    def pad(x, indices, B, T):
        return _fa_utils()._pad_input(x, indices, B, T)

    @staticmethod
    def cu_seqlens_from_position_ids(position_ids):
        (cu_q, _), _ = _fa_utils().prepare_fa_kwargs_from_position_ids(position_ids)
        return cu_q

    @staticmethod
    def cu_seqlens_from_mask(attention_mask):
        return _fa_utils()._get_unpad_data(attention_mask)[1]


# ---------------------------------------------------------------- torch.utils.checkpoint


class _TorchCheckpoint(Reference):
    """torch.utils.checkpoint.checkpoint as the segment checkpoint, in the segment plans."""

    use_reentrant = True
    recompute_all = revolve = bisection = optimal = None
    next_fit = window = first_fit_decreasing = best_fit_decreasing = None

    @staticmethod
    def packers():
        return {}

    @classmethod
    def checkpoint(cls, fn, *args, preserve_rng_state=True):
        from torch.utils.checkpoint import checkpoint

        return checkpoint(fn, *args, use_reentrant=cls.use_reentrant,
                          preserve_rng_state=preserve_rng_state)  # fmt: skip

    @classmethod
    def segments(cls, chain, x, k):
        """impl's segment plan with torch's checkpoint for each segment."""
        return ck.segments(chain, x, k, checkpoint_fn=cls.checkpoint)

    @classmethod
    def sqrt_segments(cls, chain, x):
        return cls.segments(chain, x, max(1, round(math.sqrt(len(chain)))))


class TorchReentrant(_TorchCheckpoint):
    """torch.utils.checkpoint.checkpoint(use_reentrant=True)."""


class TorchNonReentrant(_TorchCheckpoint):
    """torch.utils.checkpoint.checkpoint(use_reentrant=False). It saves through saved-tensor hooks
    of its own, which hide its tensors from SavedBytes: CKPT-04's exact byte counts cannot be
    asked of it (test_training_checkpoint_torch.py measures it with the allocator)."""

    use_reentrant = False


class TorchSequential(TorchReentrant):
    """torch.utils.checkpoint.checkpoint_sequential (reentrant) over the plan's segments: the
    functions handed to it are the segments of k layers, one per segment, so its `segments`
    argument is their number and, as in our plan, its last segment runs without a checkpoint."""

    @classmethod
    def segments(cls, chain, x, k):
        from torch.utils.checkpoint import checkpoint_sequential

        n = len(chain)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise ValueError(f"k: segment length must be an integer in [1, {n}], got {k!r}")
        parts = [functools.partial(chain.run, a=a, b=min(a + int(k), n)) for a in range(0, n, k)]
        return checkpoint_sequential(parts, len(parts), x, use_reentrant=True)


# ---------------------------------------------------------------- lmms-engine


def _lmms_root():
    spec = importlib.util.find_spec("lmms_engine")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("lmms_engine is not installed (the lmms-engine peer)")
    return pathlib.Path(spec.submodule_search_locations[0])


@functools.cache
def lmms_packing():
    """lmms_engine.datasets.packing loaded alone (its package __init__ imports the engine)."""
    folder = _lmms_root() / "datasets" / "packing"
    name = "_lmms_engine_packing"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its relative imports (.base, .online) resolve under this name
    spec.loader.exec_module(module)
    return module


@functools.cache
def lmms_sequence_packing_utils():
    """lmms_engine.models.sequence_packing_utils loaded alone; einops stubbed if missing (one
    rearrange pattern, a reshape)."""
    try:
        import einops  # noqa: F401
    except ModuleNotFoundError:
        stub = types.ModuleType("einops")

        def rearrange(x, pattern):
            if pattern.replace(" ", "") != "bs...->(bs)...":
                raise NotImplementedError(f"einops stub: only 'b s ... -> (b s) ...', {pattern!r}")
            return x.reshape(-1, *x.shape[2:])

        stub.rearrange = rearrange
        sys.modules["einops"] = stub
    path = _lmms_root() / "models" / "sequence_packing_utils.py"
    spec = importlib.util.spec_from_file_location("_lmms_engine_sequence_packing_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lmms_pack(strategy, lengths, capacity, oversize="alone", **kwargs):
    """pack_of from the engine's online packer `strategy` ("first_fit", "best_fit", "balanced",
    with its kwargs), driven as MultiModalIterableDataset.__iter__ drives it: an over-long sample
    is dropped (filter_overlong) or, after a flush of the packer, yielded alone; the packer's
    flush ends the stream. Packs are numbered in the order the engine yields them."""
    packer = lmms_packing().build_online_packer(strategy, int(capacity), **kwargs)
    lengths = np.asarray(lengths, dtype=np.int64)
    packs = []
    for i, L in enumerate(lengths.tolist()):
        if L > capacity and oversize == "filter":
            continue
        if L > capacity:
            packs.extend(packer.flush())
            packs.append([i])
            continue
        packs.extend(packer.add(i, L))
    packs.extend(packer.flush())
    pack_of = np.full(len(lengths), -1, np.int64)
    for p, items in enumerate(packs):
        for i in items:
            if pack_of[i] != -1:
                raise AssertionError(f"{strategy}: sample {i} in packs {pack_of[i]} and {p}")
            pack_of[i] = p
    return pack_of


def _lmms_call(what, f, *args):
    try:
        return f(*args)
    except Exception as e:  # a valid input the helper cannot take: the claim fails
        raise AssertionError(f"lmms-engine {what} raised {type(e).__name__}: {e}") from e


class LmmsEngine(Reference):
    """lmms-engine 0.1.4: its online packers (next_fit = FirstFitPacking, as the article says;
    best_fit = BestFitPacking(4 open buckets, fill 0.95); balanced = BalancedPacking(8 buckets):
    their defaults) and its padding removal (unpad = _unpad_input, cu_seqlens_from_mask =
    _get_unpad_data). The engine has no pad: pad is the reference's; no window, FFD or BFD, no
    checkpoint plans (None)."""

    window = first_fit_decreasing = best_fit_decreasing = None
    store_all = segments = sqrt_segments = recompute_all = revolve = bisection = optimal = None

    @staticmethod
    def next_fit(lengths, capacity, oversize="alone"):
        return lmms_pack("first_fit", lengths, capacity, oversize)

    @staticmethod
    def packers():
        return {
            "first_fit": lambda L, C, oversize="alone": lmms_pack("first_fit", L, C, oversize),
            "best_fit": lambda L, C, oversize="alone": lmms_pack("best_fit", L, C, oversize),
            "balanced": lambda L, C, oversize="alone": lmms_pack("balanced", L, C, oversize),
        }

    @staticmethod
    def unpad(x, attention_mask):
        spu = lmms_sequence_packing_utils()
        return _lmms_call("_unpad_input", spu._unpad_input, x, attention_mask)

    @staticmethod
    def cu_seqlens_from_mask(attention_mask):
        spu = lmms_sequence_packing_utils()
        return _lmms_call("_get_unpad_data", spu._get_unpad_data, attention_mask)[1]


TOOLS = {
    "impl.training.checkpoint.Chain": "the model the plans run on: n residual tanh layers that "
    "count their evaluations (TAPE: the activations one layer saves)",
    "impl.training.checkpoint.SavedBytes": "the meter of bytes saved for backward "
    "(saved-tensor hooks), by which the plans' memory is counted exactly",
    "impl._memory.peak_extra_bytes": "a memory meter: the CPU allocator's peak extra bytes "
    "during a call",
    "impl.training.packing.packs": "reads a packer's pack_of as the list of its packs",
    "impl.training.packing.pack_lengths": "measures a packer's pack_of: tokens per pack",
    "impl.training.packing.efficiency": "measures a packer's pack_of: real tokens / (packs x C)",
    "impl.training.packing.lower_bound": "the bound ceil(total / C) that no packer beats, the "
    "yardstick of PACK-07",
    "impl.training.packing.OVERSIZE": "the packers' oversize options, inputs drawn",
    "impl.training.collate.IGNORE": "-100, the label a loss ignores (transformers' convention), "
    "which the packed labels are checked against",
    "impl.training.hf_table": "the article's printed timing table (exact Fractions of its "
    "digits) and exact arithmetic on it: CKPT-09..11 state something of the article's numbers, "
    "which no implementation computes, so there is nothing a peer could be asked",
}


ADAPTERS = {
    "reference": Reference,
    "transformers": Transformers,
    "torch-reentrant": TorchReentrant,
    "torch-non-reentrant": TorchNonReentrant,
    "torch-sequential": TorchSequential,
    "lmms-engine": LmmsEngine,
}

_NO_PACKERS = "no packers"
_TORCH = Peer(
    library="torch",
    claims=("CKPT-01", "CKPT-02", "CKPT-04"),
    not_asked={
        "CKPT-03": "no recompute-all plan",
        "CKPT-05": "no recursive (revolve) plan",
        "CKPT-06": "no accumulation function (a training loop's backward per micro-batch)",
    },
)
PEERS = {
    "transformers": Peer(
        library="transformers",
        claims=("PACK-02", "PACK-04"),
        not_asked={
            "PACK-01": "no packer (DataCollatorWithFlattening concatenates a given batch)",
            "PACK-07": _NO_PACKERS,
            "CKPT-01": "its gradient checkpointing is torch.utils.checkpoint (the torch peers)",
        },
    ),
    "torch-reentrant": _TORCH,
    "torch-non-reentrant": Peer(
        library="torch",
        claims=("CKPT-01", "CKPT-02"),
        not_asked={
            **_TORCH.not_asked,
            "CKPT-04": "its own saved-tensor hooks hide what it saves from SavedBytes; measured "
            "by the allocator in test_training_checkpoint_torch.py (finding)",
        },
    ),
    "torch-sequential": _TORCH,
    "lmms-engine": Peer(
        library="lmms-engine",
        claims=("PACK-01", "PACK-02", "PACK-04"),
        not_asked={
            "PACK-07": "no offline FFD/BFD; its packers' efficiency is recorded beside ours in "
            "test_training_packing_lmms.py",
            "PACK-03": "its varlen attention is flash-attn's CUDA kernel (not installed)",
            "CKPT-01": "no checkpointing of its own (torch's, through its models)",
        },  # fmt: skip
    ),
}
