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
"""

import torch

IGNORE = -100


def padded(samples, pad_id=0):
    _check_samples(samples)
    T = max(len(s) for s in samples)
    input_ids = torch.full((len(samples), T), pad_id, dtype=torch.int64)
    attention_mask = torch.zeros(len(samples), T, dtype=torch.int64)
    for b, s in enumerate(samples):
        input_ids[b, : len(s)] = torch.as_tensor(s, dtype=torch.int64)
        attention_mask[b, : len(s)] = 1
    labels = input_ids.masked_fill(attention_mask == 0, IGNORE)
    return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


def packed(samples):
    _check_samples(samples)
    lengths = torch.tensor([len(s) for s in samples], dtype=torch.int64)
    input_ids = torch.cat([torch.as_tensor(s, dtype=torch.int64) for s in samples])[None]
    position_ids = torch.cat([torch.arange(n) for n in lengths.tolist()])[None]
    labels = input_ids.masked_fill(position_ids == 0, IGNORE)
    cu_seqlens = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]).to(torch.int32)
    return dict(input_ids=input_ids, position_ids=position_ids, labels=labels,
                cu_seqlens=cu_seqlens, max_seqlen=int(lengths.max()))  # fmt: skip


def unpad(x, attention_mask):
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
    if x.shape[0] != indices.shape[0]:
        raise ValueError(f"indices: {indices.shape[0]} positions for {x.shape[0]} tokens")
    out = x.new_zeros(B * T, *x.shape[1:])
    out[indices] = x
    return out.reshape(B, T, *x.shape[1:])


def cu_seqlens_from_position_ids(position_ids):
    """Sample starts are where position_ids == 0 (one packed row)."""
    pos = torch.as_tensor(position_ids).flatten()
    starts = torch.nonzero(pos == 0).flatten()
    if pos.numel() and (starts.numel() == 0 or starts[0] != 0):
        raise ValueError("position_ids: a packed row must start with position 0")
    return torch.cat([starts, torch.tensor([pos.numel()])]).to(torch.int32)


def cu_seqlens_from_mask(attention_mask):
    return unpad(torch.zeros(attention_mask.shape), attention_mask)[2]


def shifted_token_loss(logits, labels):
    """Sum over tokens of the cross-entropy of logits[t] against labels[t + 1] (labels != -100),
    and the number of such tokens."""
    logits, labels = logits[..., :-1, :], labels[..., 1:]
    keep = labels != IGNORE
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
        reduction="sum",
    )  # fmt: skip
    return loss, int(keep.sum())


def _check_samples(samples):
    if len(samples) == 0:
        raise ValueError("samples: at least one sample is needed")
    if any(len(s) == 0 for s in samples):
        raise ValueError("samples: every sample needs at least one token")


def check_mask(attention_mask, right_padded=False):
    """The mask as bool; 0/1 values, and ones-then-zeros rows if `right_padded`."""
    mask = torch.as_tensor(attention_mask)
    if mask.ndim != 2 or not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("attention_mask: expected a (B, T) tensor of zeros and ones")
    mask = mask.bool()
    if right_padded:
        lengths = mask.sum(1)
        if not torch.all(mask == (torch.arange(mask.shape[1])[None] < lengths[:, None])):
            raise ValueError("attention_mask: rows must be right-padded (ones, then zeros)")
    return mask
