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
"""

import math

import torch

from impl.attention import tiled
from impl.training import collate


class TinyLM(torch.nn.Module):
    def __init__(self, vocab=32, d=16, heads=2, layers=2, max_len=512, dtype=torch.float64,
                 seed=0):  # fmt: skip
        super().__init__()
        if d % heads:
            raise ValueError(f"heads: {heads} does not divide d = {d}")
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
        mask = collate.check_mask(attention_mask, right_padded=True)
        T = input_ids.shape[1]
        self._check_len(T)
        h = self.embed(input_ids) + self.pos(torch.arange(T))[None]
        for block in self.blocks:
            h = block(h, lambda q, k, v: _dense(q, k, v, mask))
        return self.out(self.norm(h))

    def forward_packed(self, input_ids, position_ids, cu_seqlens):
        """One packed row: input_ids, position_ids (1, total) -> logits (1, total, vocab)."""
        self._check_len(int(position_ids.max()) + 1 if position_ids.numel() else 0)
        h = self.embed(input_ids[0]) + self.pos(position_ids[0])
        for block in self.blocks:
            h = block(h, lambda q, k, v: _varlen(q, k, v, cu_seqlens))
        return self.out(self.norm(h))[None]

    def forward_unpadded(self, input_ids, attention_mask):
        """Padding removal: the padded batch's real tokens only; logits scattered back (zeros on
        padding)."""
        mask = collate.check_mask(attention_mask, right_padded=True)
        B, T = input_ids.shape
        self._check_len(T)
        positions = torch.arange(T).expand(B, T)
        ids, indices, cu_seqlens, _ = collate.unpad(input_ids, mask)
        pos, _, _, _ = collate.unpad(positions, mask)
        h = self.embed(ids) + self.pos(pos)
        for block in self.blocks:
            h = block(h, lambda q, k, v: _varlen(q, k, v, cu_seqlens))
        return collate.pad(self.out(self.norm(h)), indices, B, T)

    def _check_len(self, n):
        if n > self.max_len:
            raise ValueError(f"input_ids: {n} positions exceed max_len = {self.max_len}")


class Block(torch.nn.Module):
    def __init__(self, d, heads, dtype):
        super().__init__()
        self.heads = heads
        self.ln1 = torch.nn.LayerNorm(d, dtype=dtype)
        self.qkv = torch.nn.Linear(d, 3 * d, dtype=dtype)
        self.proj = torch.nn.Linear(d, d, dtype=dtype)
        self.ln2 = torch.nn.LayerNorm(d, dtype=dtype)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d, dtype=dtype), torch.nn.GELU(),
                                       torch.nn.Linear(4 * d, d, dtype=dtype))  # fmt: skip

    def forward(self, h, attend):
        """h (..., tokens, d); `attend` maps q, k, v (..., tokens, heads, d_h) to the same."""
        q, k, v = self.qkv(self.ln1(h)).unflatten(-1, (3, self.heads, -1)).unbind(-3)
        h = h + self.proj(attend(q, k, v).flatten(-2))
        return h + self.mlp(self.ln2(h))


def _dense(q, k, v, mask):
    """(B, T, H, d_h) -> causal attention with key padding, (B, T, H, d_h)."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    return tiled.attention(q, k, v, causal=True, key_padding_mask=mask)[0].transpose(1, 2)


def _varlen(q, k, v, cu_seqlens):
    return tiled.varlen_attention(q, k, v, cu_seqlens, cu_seqlens, causal=True)[0]
