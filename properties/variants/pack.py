"""Rejected variants of the packing and padding-removal claims (PACK-*): packers that are really
other packers, padding removal and packed batches with the usual off-by-ones and misreadings."""

import numpy as np
import torch

from impl.attention import tiled
from impl.training import collate, lm, packing
from properties.variants import variant


def _next_fit_decreasing(lengths, capacity, oversize="alone"):
    """Sorted longest first like FFD, but only the last opened pack is tried (next-fit)."""
    lengths, capacity = packing._check(lengths, capacity, oversize)
    order = packing._decreasing(lengths, capacity)
    pack_of = np.full(len(lengths), -1, np.int64)
    pack_of[order] = packing._next_fit(lengths[order], capacity, oversize == "filter")
    return pack_of


def _worst_fit_decreasing(lengths, capacity, oversize="alone"):
    """Sorted longest first; each sample goes to the open pack with the MOST free space."""
    lengths, capacity = packing._check(lengths, capacity, oversize)
    free, pack_of = [], np.full(len(lengths), -1, np.int64)
    for i in packing._decreasing(lengths, capacity):
        L = lengths[i]
        if L > capacity:
            if oversize == "alone":
                pack_of[i] = len(free)
                free.append(-1)
            continue
        p = max(range(len(free)), key=free.__getitem__, default=None)
        if p is None or free[p] < L:
            p = len(free)
            free.append(capacity)
        free[p] -= L
        pack_of[i] = p
    return pack_of


@variant(
    "PACK-01",
    "PACK-07",
    name="next-fit-decreasing-as-ffd",
    why="'first-fit-decreasing' that sorts longest first but then only tries the last open pack "
    "(next-fit-decreasing)",
)
def _(mp):
    mp.setattr(packing, "first_fit_decreasing", _next_fit_decreasing)


@variant(
    "PACK-01",
    name="worst-fit-decreasing-as-bfd",
    why="'best-fit-decreasing' that puts each sample in the pack with the most free space",
)
def _(mp):
    mp.setattr(packing, "best_fit_decreasing", _worst_fit_decreasing)


@variant(
    "PACK-01",
    name="ffd-as-bfd",
    why="'best-fit-decreasing' that takes the oldest pack with room (first-fit-decreasing)",
)
def _(mp):
    mp.setattr(packing, "best_fit_decreasing", packing.first_fit_decreasing)


@variant(
    "PACK-01",
    name="window-looks-w-minus-1-ahead",
    why="window_W that scans the head and W - 1 pending samples (W counted with the head)",
)
def _(mp):
    window = packing.window

    def one_short(lengths, capacity, W, **kw):
        valid = isinstance(W, (int, np.integer)) and not isinstance(W, bool) and W >= 1
        return window(lengths, capacity, W - 1 if valid else W, **kw)  # bad W still refused

    mp.setattr(packing, "window", one_short)


@variant(
    "PACK-07",
    name="lower-bound-floor",
    why="the lower bound on packs as floor(total / C) instead of ceil(total / C)",
)
def _(mp):
    def floor_bound(lengths, capacity):
        lengths = np.asarray(lengths, dtype=np.int64)
        return int(lengths[lengths <= capacity].sum() // capacity)

    mp.setattr(packing, "lower_bound", floor_bound)


@variant(
    "PACK-02",
    name="cu-seqlens-without-leading-zero",
    why="cu_seqlens = cumsum(row lengths) without the leading 0",
)
def _(mp):
    unpad = collate.unpad

    def without_zero(x, attention_mask):
        tokens, indices, cu_seqlens, max_seqlen = unpad(x, attention_mask)
        return tokens, indices, cu_seqlens[1:], max_seqlen

    mp.setattr(collate, "unpad", without_zero)


@variant(
    "PACK-02",
    name="unpad-mask-transposed",
    why="real-token indices taken from the mask in (T, B) layout (a sequence-first mask read as "
    "batch-first): flat positions t B + b instead of b T + t",
)
def _(mp):
    unpad = collate.unpad

    def transposed(x, attention_mask):
        _, _, cu_seqlens, max_seqlen = unpad(x, attention_mask)
        mask = collate.check_mask(attention_mask)
        indices = torch.nonzero(mask.T.flatten()).flatten()
        return x.reshape(-1, *x.shape[2:])[indices], indices, cu_seqlens, max_seqlen

    mp.setattr(collate, "unpad", transposed)


@variant(
    "PACK-03",
    name="varlen-attends-across-samples",
    why="packed attention with one causal mask over the whole row: cu_seqlens ignored, so tokens "
    "attend to earlier samples",
)
def _(mp):
    varlen = tiled.varlen_attention

    def one_sequence(q, k, v, cu_seqlens_q, cu_seqlens_k, *args, **kw):
        whole_q = torch.tensor([0, q.shape[0]], dtype=torch.int32)
        whole_k = torch.tensor([0, k.shape[0]], dtype=torch.int32)
        return varlen(q, k, v, whole_q, whole_k, *args, **kw)

    mp.setattr(tiled, "varlen_attention", one_sequence)


@variant(
    "PACK-04",
    name="position-ids-without-reset",
    why="packed position_ids counted over the whole row (0 .. total - 1), not restarted per sample",
)
def _(mp):
    packed = collate.packed

    def no_reset(samples):
        batch = packed(samples)
        batch["position_ids"] = torch.arange(batch["input_ids"].shape[1])[None]
        return batch

    mp.setattr(collate, "packed", no_reset)


@variant(
    "PACK-04",
    name="cu-seqlens-from-position-ids-without-end",
    why="cu_seqlens from position_ids = the sample starts only, the closing total left out",
)
def _(mp):
    def starts_only(position_ids):
        pos = torch.as_tensor(position_ids).flatten()
        return torch.nonzero(pos == 0).flatten().to(torch.int32)

    mp.setattr(collate, "cu_seqlens_from_position_ids", starts_only)


@variant(
    "PACK-05",
    name="packed-labels-cross-boundaries",
    why="packed labels = input_ids (no -100 on each sample's first token): after the shift the "
    "last token of a sample is trained to predict the next sample's first",
)
def _(mp):
    packed = collate.packed

    def unmasked(samples):
        batch = packed(samples)
        batch["labels"] = batch["input_ids"].clone()
        return batch

    mp.setattr(collate, "packed", unmasked)


@variant(
    "PACK-05",
    name="padded-labels-keep-padding",
    why="padded labels = input_ids (padding not set to -100): pad tokens enter the loss",
)
def _(mp):
    padded = collate.padded

    def unmasked(samples, pad_id=0):
        batch = padded(samples, pad_id)
        batch["labels"] = batch["input_ids"].clone()
        return batch

    mp.setattr(collate, "padded", unmasked)


@variant(
    "PACK-06",
    name="unpad-after-the-layers",
    why="'padding removal' that runs every layer on the padded batch and only drops the padded "
    "positions at the end: the same outputs, none of the saving",
)
def _(mp):
    def masked_padded(self, input_ids, attention_mask):
        mask = collate.check_mask(attention_mask, right_padded=True)
        return self.forward_padded(input_ids, attention_mask) * mask[..., None]

    mp.setattr(lm.TinyLM, "forward_unpadded", masked_padded)
