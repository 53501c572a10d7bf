"""A tiny decoder-only transformer LM that runs padded, or packed / unpadded (seed article 4).

    h_0 = E[x_t] + P[p_t]                       (learned positions, indexed by position_ids)
    h'  = h + Attn(LN(h)),   h'' = h' + MLP(LN(h'))   per layer (pre-LN, causal attention)
    logits = LN(h_L) W_out

Attention is impl.attention.tiled: on a padded batch (B, T) with a key-padding mask and causal
masking; on packed tokens (total,) with cu_seqlens, block-diagonal causal attention (varlen).
`forward_unpadded` is the padding-removal path (lmms-engine's use_rmpad): it takes the padded
batch, keeps the real tokens only (impl.training.collate.unpad), runs every layer on them, and
scatters the logits back. Every layer but attention is token-wise, so the three paths give the
same logits on real tokens.

Domains: vocab, d, heads, max_len positive integers with heads dividing d, layers and seed
integers >= 0, dtype a floating torch dtype; input_ids integers in [0, vocab), non-empty (B, T)
with T <= max_len (padded) or one packed row (1, total); attention_mask (B, T) zeros and ones,
right-padded; position_ids (1, total) integers in [0, max_len) counting 0, 1, 2, ... within each
sample of cu_seqlens, a 1-D integer tensor 0 = c_0 <= c_1 <= ... <= c_k = total.
"""

import math

import torch

from impl._checks import function, integer, positive_int, tensor
from impl.attention import tiled
from impl.training import collate
from impl.training.collate import _int_tensor


class TinyLM(torch.nn.Module):
    def __init__(self, vocab=32, d=16, heads=2, layers=2, max_len=512, dtype=torch.float64,
                 seed=0):  # fmt: skip
        vocab, max_len = positive_int("vocab", vocab), positive_int("max_len", max_len)
        d, heads = _width_and_heads(d, heads)
        layers, seed = integer("layers", layers), integer("seed", seed, hi=2**64 - 1)
        _float_dtype(dtype)
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.heads, self.max_len = heads, max_len
        self.embed = torch.nn.Embedding(vocab, d, dtype=dtype)
        self.pos = torch.nn.Embedding(max_len, d, dtype=dtype)
        self.blocks = torch.nn.ModuleList(Block(d, heads, dtype) for _ in range(layers))
        self.norm = torch.nn.LayerNorm(d, dtype=dtype)
        self.out = torch.nn.Linear(d, vocab, bias=False, dtype=dtype)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) / math.sqrt(d))

    def forward_padded(self, input_ids, attention_mask):
        """input_ids, attention_mask (B, T), right-padded -> logits (B, T, vocab)."""
        input_ids, mask = self._check_padded(input_ids, attention_mask)
        T = input_ids.shape[1]
        h = self.embed(input_ids) + self.pos(torch.arange(T))[None]
        for block in self.blocks:
            h = block(h, lambda q, k, v: _dense(q, k, v, mask))
        return self.out(self.norm(h))

    def forward_packed(self, input_ids, position_ids, cu_seqlens):
        """One packed row: input_ids, position_ids (1, total) -> logits (1, total, vocab);
        position_ids must restart at 0 at every sample start of cu_seqlens."""
        input_ids, position_ids, cu_seqlens = self._check_packed(
            input_ids, position_ids, cu_seqlens
        )
        h = self.embed(input_ids[0]) + self.pos(position_ids[0])
        for block in self.blocks:
            h = block(h, lambda q, k, v: _varlen(q, k, v, cu_seqlens))
        return self.out(self.norm(h))[None]

    def forward_unpadded(self, input_ids, attention_mask):
        """Padding removal: the padded batch's real tokens only; logits scattered back (zeros on
        padding)."""
        input_ids, mask = self._check_padded(input_ids, attention_mask)
        B, T = input_ids.shape
        positions = torch.arange(T).expand(B, T)
        ids, indices, cu_seqlens, _ = collate.unpad(input_ids, mask)
        pos, _, _, _ = collate.unpad(positions, mask)
        h = self.embed(ids) + self.pos(pos)
        for block in self.blocks:
            h = block(h, lambda q, k, v: _varlen(q, k, v, cu_seqlens))
        return collate.pad(self.out(self.norm(h)), indices, B, T)

    def _check_ids(self, input_ids, packed=False):
        """Integer ids in [0, vocab): a non-empty (B, T) batch, or one packed row (1, total)."""
        ids = _int_tensor("input_ids", input_ids)
        if packed and (ids.ndim != 2 or ids.shape[0] != 1):
            raise ValueError(
                f"input_ids: expected one packed row (1, total), got {tuple(ids.shape)}"
            )
        if ids.ndim != 2 or (ids.numel() == 0 and not packed):
            raise ValueError(
                f"input_ids: expected a non-empty (B, T) tensor, got {tuple(ids.shape)}"
            )
        vocab = self.embed.num_embeddings
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab):
            raise ValueError(f"input_ids: token ids must lie in [0, {vocab})")
        return ids.long()

    def _check_padded(self, input_ids, attention_mask):
        ids = self._check_ids(input_ids)
        if ids.shape[1] > self.max_len:
            raise ValueError(f"input_ids: {ids.shape[1]} positions exceed max_len = {self.max_len}")
        mask = collate.check_mask(attention_mask, right_padded=True)
        if mask.shape != ids.shape:
            raise ValueError(
                f"attention_mask: shape {tuple(mask.shape)} does not match input_ids' "
                f"{tuple(ids.shape)}"
            )
        return ids, mask

    def _check_packed(self, input_ids, position_ids, cu_seqlens):
        """One row; cu_seqlens 0 = c_0 <= ... <= c_k = total; position_ids 0, 1, 2, ... from
        every c_j (cu_seqlens contradicting position_ids would attend across samples, or split
        one); no sample longer than max_len."""
        ids = self._check_ids(input_ids, packed=True)
        pos = _int_tensor("position_ids", position_ids)
        if pos.shape != ids.shape:
            raise ValueError(
                f"position_ids: shape {tuple(pos.shape)} does not match input_ids' "
                f"{tuple(ids.shape)}"
            )
        cu = _int_tensor("cu_seqlens", cu_seqlens)
        total = ids.shape[1]
        if cu.ndim != 1 or cu.numel() < 2 or cu[0] != 0 or cu[-1] != total:
            raise ValueError(f"cu_seqlens: expected 1-D [0, ..., {total}], got {cu}")
        lengths = (cu[1:] - cu[:-1]).long()
        if torch.any(lengths < 0):
            raise ValueError(f"cu_seqlens: must not decrease, got {cu}")
        expected = torch.arange(total) - torch.repeat_interleave(cu[:-1].long(), lengths)
        if not torch.equal(pos[0].long(), expected):
            raise ValueError(
                f"position_ids: must count 0, 1, 2, ... from every sample start of cu_seqlens "
                f"{cu.tolist()}"
            )
        if lengths.max() > self.max_len:
            raise ValueError(
                f"input_ids: {int(lengths.max())} positions exceed max_len = {self.max_len}"
            )
        return ids, pos.long(), cu.to(torch.int32)


class Block(torch.nn.Module):
    def __init__(self, d, heads, dtype):
        d, heads = _width_and_heads(d, heads)
        _float_dtype(dtype)
        super().__init__()
        self.heads = heads
        self.ln1 = torch.nn.LayerNorm(d, dtype=dtype)
        self.qkv = torch.nn.Linear(d, 3 * d, dtype=dtype)
        self.proj = torch.nn.Linear(d, d, dtype=dtype)
        self.ln2 = torch.nn.LayerNorm(d, dtype=dtype)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d, dtype=dtype), torch.nn.GELU(),
                                       torch.nn.Linear(4 * d, d, dtype=dtype))  # fmt: skip

    def forward(self, h, attend):
        """h (..., tokens, d), finite, of the block's dtype; `attend` maps q, k, v (..., tokens,
        heads, d_h) to a tensor of the same shape."""
        tensor("h", h, ndim=None)
        d = self.qkv.in_features
        if h.ndim < 2 or h.shape[-1] != d or h.dtype != self.qkv.weight.dtype:
            raise ValueError(
                f"h: expected (..., tokens, {d}) of {self.qkv.weight.dtype}, got "
                f"{tuple(h.shape)} of {h.dtype}"
            )
        function("attend", attend)
        q, k, v = self.qkv(self.ln1(h)).unflatten(-1, (3, self.heads, -1)).unbind(-3)
        o = attend(q, k, v)
        if not isinstance(o, torch.Tensor) or o.shape != q.shape:
            raise ValueError(
                f"attend: must return a tensor of shape {tuple(q.shape)}, got {o!r:.60}"
            )
        h = h + self.proj(o.flatten(-2))
        return h + self.mlp(self.ln2(h))


def _width_and_heads(d, heads):
    d, heads = positive_int("d", d), positive_int("heads", heads)
    if d % heads:
        raise ValueError(f"heads: {heads} does not divide d = {d}")
    return d, heads


def _float_dtype(dtype):
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating torch dtype, got {dtype!r}")


def _dense(q, k, v, mask):
    """(B, T, H, d_h) -> causal attention with key padding, (B, T, H, d_h)."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    return tiled.attention(q, k, v, causal=True, key_padding_mask=mask)[0].transpose(1, 2)


def _varlen(q, k, v, cu_seqlens):
    return tiled.varlen_attention(q, k, v, cu_seqlens, cu_seqlens, causal=True)[0]
