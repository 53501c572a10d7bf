"""A tiny text encoder tau(y): a word tokenizer over a fixed vocabulary and a transformer encoder.

Tokens: the caption's words, lower-cased; id 0 is padding. A word outside the vocabulary is
rejected (ValueError naming it), not mapped to an unknown token: a prompt the model cannot read
should not silently become another prompt. Sequences are padded to `max_len` and come with a
key-padding mask (True on real tokens) that the encoder and the UNet's cross-attention use.
A prompt longer than `max_len` words is refused by default; `truncate=True` keeps its first
`max_len` words instead, Stable Diffusion's convention (CLIP's tokenizer truncates to 77 tokens),
so that text of any length gives (max_len, dim) features (SD-10).
The empty prompt "" (all padding, but one <null> token so that attention sees a key) is the
unconditional input of classifier-free guidance.
"""

import math

import torch

from impl import _checks
from impl.attention import tiled
from impl.diffusion.latent import _args, data

VOCAB = ["<pad>", "<null>", "a", "on", "in", "the", *data.COLOURS, *data.SHAPES, *data.REGIONS]
IDS = {w: i for i, w in enumerate(VOCAB)}


def tokenize(prompts, max_len=8, truncate=False):
    """(ids (B, max_len) int64, mask (B, max_len) bool) of a list of B prompt strings (one
    prompt is a list of one string: a bare string is refused, not read as a list of characters);
    max_len a positive integer; truncate a bool: False refuses a prompt of more than max_len
    words, True keeps its first max_len words (Stable Diffusion's convention)."""
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(
            f"prompts: expected a list of prompt strings, got {type(prompts).__name__} "
            f"{prompts!r:.60} (one prompt: [prompt])"
        )
    max_len = _checks.integer("max_len", max_len, lo=1)
    truncate = _checks.flag("truncate", truncate)
    ids = torch.zeros(len(prompts), max_len, dtype=torch.int64)
    for b, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(
                f"prompts: expected a string at prompts[{b}], got {type(prompt).__name__}"
            )
        words = prompt.lower().split() or ["<null>"]
        if truncate:  # the words after the first max_len are dropped unread
            words = words[:max_len]
        unknown = [w for w in words if w not in IDS or w in ("<pad>",)]
        if unknown:
            raise ValueError(
                f"prompts: unknown word(s) {unknown} in prompts[{b}] = {prompt!r}; "
                f"vocabulary: {VOCAB[2:]}"
            )
        if len(words) > max_len:
            raise ValueError(
                f"prompts: {len(words)} words in prompts[{b}] = {prompt!r}, more than max_len = "
                f"{max_len}"
            )
        ids[b, : len(words)] = torch.tensor([IDS[w] for w in words])
    return ids, ids != 0


class TextEncoder(torch.nn.Module):
    """Embedding + learned positions + `layers` pre-LN transformer encoder layers (attention
    through impl.attention.tiled with the key-padding mask). dim, heads, layers, max_len: positive
    integers, dim a multiple of heads."""

    def __init__(self, dim=64, heads=4, layers=2, max_len=8):
        super().__init__()
        dim, heads = _checks.integer("dim", dim, lo=1), _checks.integer("heads", heads, lo=1)
        layers, max_len = (
            _checks.integer("layers", layers, lo=1),
            _checks.integer("max_len", max_len, lo=1),
        )
        if dim % heads:
            raise ValueError(f"dim: must be a multiple of heads = {heads}, got {dim}")
        self.heads = heads
        self.embed = torch.nn.Embedding(len(VOCAB), dim)
        self.pos = torch.nn.Parameter(torch.randn(max_len, dim) / math.sqrt(dim))
        self.layers = torch.nn.ModuleList(
            torch.nn.ModuleDict(dict(
                ln1=torch.nn.LayerNorm(dim), qkv=torch.nn.Linear(dim, 3 * dim),
                proj=torch.nn.Linear(dim, dim), ln2=torch.nn.LayerNorm(dim),
                mlp=torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(),
                                        torch.nn.Linear(4 * dim, dim)),
            )) for _ in range(layers)
        )  # fmt: skip
        self.norm = torch.nn.LayerNorm(dim)

    def forward(self, ids, mask):
        """The encoding (B, L, dim) of token ids (B, L), integers in [0, len(VOCAB)), L <= max_len,
        with the key-padding mask (B, L) bool (True on real tokens, one at least per row) or None
        (no padding)."""
        _ids(ids, len(self.pos))
        _args.mask("mask", mask, ids.shape)
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        for layer in self.layers:
            q, k, v = layer["qkv"](layer["ln1"](h)).unflatten(-1, (3, self.heads, -1)).unbind(-3)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            a = tiled.attention(q, k, v, key_padding_mask=mask)[0].transpose(1, 2).flatten(-2)
            h = h + layer["proj"](a)
            h = h + layer["mlp"](layer["ln2"](h))
        return self.norm(h)


def _ids(ids, max_len):
    if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(
            f"ids: expected an int64 or int32 tensor, got {getattr(ids, 'dtype', ids)!r:.60}"
        )
    if ids.ndim != 2 or not 1 <= ids.shape[1] <= max_len:
        raise ValueError(
            f"ids: expected (B, L) with 1 <= L <= max_len = {max_len}, got {tuple(ids.shape)}"
        )
    if ids.numel() and not ((ids >= 0) & (ids < len(VOCAB))).all():
        raise ValueError(
            f"ids: token ids must lie in [0, {len(VOCAB)}), got [{ids.min()}, {ids.max()}]"
        )
