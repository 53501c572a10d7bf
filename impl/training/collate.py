"""Batches of tokenised samples for a causal LM, padded or packed, and padding removal
(seed article 4; the layouts of transformers' DataCollatorWithFlattening and flash-attn).

padded(samples)   input_ids (B, T) right-padded with pad_id, attention_mask (B, T) with 1 on real
                  tokens, labels = input_ids with -100 on padding; T = the longest sample.
packed(samples)   one row of the concatenated samples: input_ids (1, total), position_ids
                  restarting at 0 in every sample, labels = input_ids with -100 on the first token
                  of every sample (after the causal shift no token predicts across a boundary),
                  cu_seqlens = [0, L_1, L_1 + L_2, ...] (int32), max_seqlen.
unpad(x, mask)    x (B, T, ...) -> (x[mask] (nnz, ...), indices, cu_seqlens, max_seqlen) with
                  indices the flat positions b T + t of the real tokens (increasing),
                  cu_seqlens[0] = 0, diff(cu_seqlens) = row lengths, cu_seqlens[-1] = nnz.
pad(x, indices, B, T)   scatters back: pad(unpad(x, mask)) = x * mask.
The loss is summed over tokens (labels != -100) after the shift: logits at t predict token t + 1.

Domains: samples a non-empty sequence of non-empty 1-D sequences of integer token ids >= 0;
pad_id an integer >= 0; attention_mask a (B, T) tensor of zeros and ones; x a tensor of at least
2 dimensions (unpad) or 1 (pad); indices increasing flat positions in [0, B T), one per row of x;
B, T positive integers; position_ids one packed row (1, total) of integers counting 0, 1, 2, ...
within each sample; logits (..., T, V) finite floats, labels (..., T) integers in [0, V) or -100.
"""

import torch

from impl._checks import flag, integer, positive_int

IGNORE = -100


def padded(samples, pad_id=0):
    samples = _check_samples(samples)
    pad_id = integer("pad_id", pad_id, lo=0)
    T = max(len(s) for s in samples)
    input_ids = torch.full((len(samples), T), pad_id, dtype=torch.int64)
    attention_mask = torch.zeros(len(samples), T, dtype=torch.int64)
    for b, s in enumerate(samples):
        input_ids[b, : len(s)] = s
        attention_mask[b, : len(s)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE)
    return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def packed(samples):
    samples = _check_samples(samples)
    lengths = torch.tensor([len(s) for s in samples], dtype=torch.int64)
    input_ids = torch.cat(samples)[None]
    position_ids = torch.cat([torch.arange(n) for n in lengths.tolist()])[None]
    labels = input_ids.masked_fill(position_ids == 0, IGNORE)
    cu_seqlens = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]).to(torch.int32)
    return dict(input_ids=input_ids, position_ids=position_ids, labels=labels,
                cu_seqlens=cu_seqlens, max_seqlen=int(lengths.max()))  # fmt: skip


def unpad(x, attention_mask):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x: expected a torch tensor, got {type(x).__name__}")
    mask = check_mask(attention_mask)
    if x.shape[:2] != mask.shape:
        raise ValueError(
            f"x: shape {tuple(x.shape)} does not start with the mask's {tuple(mask.shape)}"
        )
    lengths = mask.sum(1)
    indices = torch.nonzero(mask.flatten()).flatten()
    cu_seqlens = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]).to(torch.int32)
    flat = x.reshape(-1, *x.shape[2:])
    return flat[indices], indices, cu_seqlens, int(lengths.max()) if len(lengths) else 0


def pad(x, indices, B, T):
    B, T = positive_int("B", B), positive_int("T", T)
    if not isinstance(x, torch.Tensor) or x.ndim == 0:
        raise TypeError(f"x: expected a torch tensor of tokens (nnz, ...), got {x!r:.60}")
    indices = _int_tensor("indices", indices)
    if indices.ndim != 1 or indices.shape[0] != x.shape[0]:
        raise ValueError(
            f"indices: {tuple(indices.shape)} positions for {x.shape[0]} tokens (a 1-D tensor)"
        )
    if indices.numel() and (
        indices[0] < 0 or indices[-1] >= B * T or not torch.all(indices[1:] > indices[:-1])
    ):
        raise ValueError(f"indices: must increase within [0, B T = {B * T}), got {indices}")
    out = x.new_zeros(B * T, *x.shape[1:])
    out[indices] = x
    return out.reshape(B, T, *x.shape[1:])


def cu_seqlens_from_position_ids(position_ids):
    """Sample starts are where position_ids == 0 (one packed row, (1, total), counting 0, 1, 2,
    ... within each sample)."""
    pos = _int_tensor("position_ids", position_ids)
    if pos.ndim != 2 or pos.shape[0] != 1:
        raise ValueError(
            f"position_ids: expected one packed row (1, total), got {tuple(pos.shape)}"
        )
    pos = pos[0]
    if pos.numel() and pos[0] != 0:
        raise ValueError("position_ids: a packed row must start with position 0")
    wrong = (pos[1:] != 0) & (pos[1:] != pos[:-1] + 1)
    if wrong.any():
        t = int(torch.nonzero(wrong)[0]) + 1
        raise ValueError(
            f"position_ids: must count 0, 1, 2, ... within each sample, got {int(pos[t])} after "
            f"{int(pos[t - 1])} at {t}"
        )
    starts = torch.nonzero(pos == 0).flatten()
    return torch.cat([starts, torch.tensor([pos.numel()])]).to(torch.int32)


def cu_seqlens_from_mask(attention_mask):
    mask = check_mask(attention_mask)
    return unpad(torch.zeros(mask.shape), mask)[2]


def shifted_token_loss(logits, labels):
    """Sum over tokens of the cross-entropy of logits[t] against labels[t + 1] (labels != -100),
    and the number of such tokens."""
    if not isinstance(logits, torch.Tensor) or not logits.dtype.is_floating_point:
        raise TypeError(f"logits: expected a floating-point tensor (..., T, V), got {logits!r:.60}")
    if logits.ndim < 2 or logits.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (..., T, V), got {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits: has a non-finite entry (nan or inf)")
    labels = _int_tensor("labels", labels)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels: shape {tuple(labels.shape)} does not match logits' {tuple(logits.shape[:-1])}"
        )
    V = logits.shape[-1]
    if not torch.all((labels == IGNORE) | ((labels >= 0) & (labels < V))):
        raise ValueError(f"labels: must lie in [0, {V}) or be {IGNORE} (ignored)")
    logits, labels = logits[..., :-1, :], labels[..., 1:]
    keep = labels != IGNORE
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
        reduction="sum",
    )  # fmt: skip
    return loss, int(keep.sum())


def _check_samples(samples):
    """The samples as 1-D int64 tensors."""
    if isinstance(samples, (str, bytes)) or not hasattr(samples, "__len__"):
        raise TypeError(f"samples: expected a sequence of samples, got {type(samples).__name__}")
    if len(samples) == 0:
        raise ValueError("samples: at least one sample is needed")
    out = []
    for b, s in enumerate(samples):
        if isinstance(s, (str, bytes)):
            raise TypeError(f"samples: sample {b} is a string, not a sequence of token ids")
        try:
            t = torch.as_tensor(s)
        except (TypeError, ValueError, RuntimeError, OverflowError) as e:
            raise TypeError(f"samples: sample {b} is not a sequence of integers ({e})") from None
        if t.ndim != 1:
            raise ValueError(f"samples: sample {b} has shape {tuple(t.shape)}, expected 1-D")
        if t.numel() == 0:
            raise ValueError(f"samples: sample {b} is empty; every sample needs at least one token")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(f"samples: sample {b} has dtype {t.dtype}; token ids are integers")
        if t.min() < 0:
            raise ValueError(f"samples: sample {b} has a negative token id {int(t.min())}")
        out.append(t.to(torch.int64))
    return out


def _int_tensor(name, value):
    """An integer tensor (not bool) from a tensor, array or list."""
    try:
        t = torch.as_tensor(value) if value is not None else None
    except (TypeError, ValueError, RuntimeError, OverflowError):
        t = None
    if t is None or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(f"{name}: expected a tensor of integers, got {value!r:.60}")
    return t


def check_mask(attention_mask, right_padded=False):
    """The mask as bool; 0/1 values, and ones-then-zeros rows if `right_padded`."""
    flag("right_padded", right_padded)
    try:
        mask = torch.as_tensor(attention_mask) if attention_mask is not None else None
    except (TypeError, ValueError, RuntimeError, OverflowError):
        mask = None
    if mask is None or mask.ndim != 2 or not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("attention_mask: expected a (B, T) tensor of zeros and ones")
    mask = mask.bool()
    if right_padded:
        lengths = mask.sum(1)
        if not torch.all(mask == (torch.arange(mask.shape[1])[None] < lengths[:, None])):
            raise ValueError("attention_mask: rows must be right-padded (ones, then zeros)")
    return mask
