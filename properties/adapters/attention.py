"""Family `attention` (FlashAttention, seed article 11): the function its properties call.

Interface (conventions of impl/attention/reference.py):
    attention(q, k, v, causal, key_padding_mask, block_q, block_k) -> (O, L or None)
q (B, H, N_q, d), k (B, H, N_k, d), v (B, H, N_k, d_v); causal is bottom-right aligned; the
key_padding_mask is (B, N_k) bool, True for real keys; O must be differentiable in q, k, v; L is
the per-row logsumexp, or None for an implementation that does not expose it. Block sizes are a
hint that implementations without blocks ignore.

Adapters: `reference` (impl/attention/tiled.py), `sdpa-math` and `sdpa-flash` (torch's
scaled_dot_product_attention with one CPU backend forced; the flash one through the aten op that
also returns L). SDPA's is_causal=True is top-left aligned, so these adapters pass causal masks as
an explicit boolean mask in our (bottom-right) convention; test_attention_sdpa.py checks the
alignment difference itself.
"""

import math

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

from impl.attention import reference, tiled
from properties.adapters import Peer


class Reference:
    """The project's tiled attention (forward and recomputing backward)."""

    @staticmethod
    def attention(q, k, v, causal=False, key_padding_mask=None, block_q=64, block_k=64):
        return tiled.attention(q, k, v, causal, key_padding_mask, None, block_q, block_k)


def _bool_mask(q, k, causal, key_padding_mask):
    mask = None
    if causal:
        mask = reference.causal_mask(q.shape[2], k.shape[2])
    if key_padding_mask is not None:
        pad = reference.padding_mask(key_padding_mask)
        mask = pad if mask is None else mask & pad
    return mask


class SdpaMath:
    """torch SDPA, math backend (no logsumexp exposed)."""

    @staticmethod
    def attention(q, k, v, causal=False, key_padding_mask=None, block_q=None, block_k=None):
        with sdpa_kernel(SDPBackend.MATH):
            o = scaled_dot_product_attention(
                q, k, v, attn_mask=_bool_mask(q, k, causal, key_padding_mask)
            )
        return o, None


class SdpaFlash:
    """torch SDPA's CPU flash kernel, through aten's op that returns (O, L). The kernel requires
    d_v = d: V is padded with zero columns (or O's extra columns dropped), which is exact."""

    @staticmethod
    def attention(q, k, v, causal=False, key_padding_mask=None, block_q=None, block_k=None):
        mask = _bool_mask(q, k, causal, key_padding_mask)
        if mask is not None:  # the aten op takes an additive float mask
            mask = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, -torch.inf)
        d, d_v = q.shape[-1], v.shape[-1]
        v_d = torch.nn.functional.pad(v, (0, max(d - d_v, 0)))
        q_, k_ = (torch.nn.functional.pad(t, (0, max(d_v - d, 0))) for t in (q, k))
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q_, k_, v_d, attn_mask=mask, scale=1 / math.sqrt(d)
        )
        return o[..., :d_v], lse


ADAPTERS = {"reference": Reference, "sdpa-math": SdpaMath, "sdpa-flash": SdpaFlash}
_NOT_ASKED = {
    "FA-06": "the memory of the backward's saved tensors is measured on impl's autograd function",
    "FA-07": "the IO counts are a model of the algorithm (impl/attention/io_model.py), not a call",
}
PEERS = {
    "sdpa-math": Peer("torch", ("FA-03", "FA-04", "FA-05"), _NOT_ASKED),
    "sdpa-flash": Peer("torch", ("FA-03", "FA-04", "FA-05"), _NOT_ASKED),
}
