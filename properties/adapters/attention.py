"""Family `attention` (FlashAttention, seed article 11): the function its properties call.

Interface (conventions of impl/attention/reference.py):
    attention(q, k, v, causal, key_padding_mask, block_q, block_k) -> (O, L or None)
q (B, H, N_q, d), k (B, H, N_k, d), v (B, H, N_k, d_v); causal is bottom-right aligned; the
key_padding_mask is (B, N_k) bool, True for real keys; O must be differentiable in q, k, v; L is
the per-row logsumexp, or None for an implementation that does not expose it. Block sizes are a
hint that implementations without blocks ignore. The rest, each the reference's (impl/attention)
unless an adapter has its own:
  the tiled pass (tiled.py)
    varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, causal, scale, block_q, block_k)
        -> (O, L): packed sequences (total, H, d), each attending only within itself
    forward(q, k, v, causal, key_padding_mask, scale, block_q, block_k, io=None) -> (O, L):
        the forward loop without autograd, adding to io the numbers it moves (FA-06, FA-07)
    rescales(q, k, v, causal, key_padding_mask, block_q, block_k) -> (O, L, n): attention and
        how many times the running max moved (lazy rescaling); None where not observable
    key_blocks(i0, i1, n_q, n_k, block_k, causal, key_padding_mask) -> [(j0, j1, mask or None)]:
        the key blocks the query rows i0:i1 visit, with a mask only where one is needed
    triton_forward(q, k, v, causal, scale, block_m, block_n) -> (O, L): the Triton kernel
        (triton_kernel.py; imported at its first call)
  softmax and its statistics over the last axis (softmax.py)
    safe_softmax(x);  stats(x) -> (m, l);  merge((m_a, l_a), (m_b, l_b)) -> (m, l)
    online_stats(x) -> (m, d) by the one-pass recurrence;  online_softmax(x)
  the note's passes, with reads counted (passes.py; each returns (output, reads))
    counted_safe_softmax(x), counted_online_softmax(x): 3 and 2 passes over x
    three_pass_attention, two_pass_attention, one_pass_attention (q, K, V, scale)
  the note's recurrence for one query row (recurrence.py)
    normalised_recurrence(x, V, b), unnormalised_recurrence(x, V, b) -> O;
    surrogates(x, V) -> (m_i, d'_i, o'_i) for i = 1..N
  models of what moves and what sits on chip (io_model.py, tiled_matmul.py)
    io_standard(N, d), io_tiled(N, d, M) -> (reads, writes) of Algorithms 0 and 1;
    io_tiled_closed_form(N, d, M) -> their total in closed form;
    io_flash2(n_q, n_k, d, d_v, block_q, block_k, causal) -> (reads, writes) of forward's loop;
    sram_footprint(L, B, D) -> peak elements on chip;  tiled_matmul(A, B, T) -> (C, peak)

Adapters: `reference` (impl/attention/tiled.py), `sdpa-math` and `sdpa-flash` (torch's
scaled_dot_product_attention with one CPU backend forced; the flash one through the aten op that
also returns L). SDPA's is_causal=True is top-left aligned, so these adapters pass causal masks as
an explicit boolean mask in our (bottom-right) convention; test_attention_sdpa.py checks the
alignment difference itself. They answer attention and varlen_attention (the packed sequences
with the reference's block-diagonal mask); the rest is the reference's, and rescales is None.
The Triton kernel is no adapter of its own: it takes float32/16 only (the tiled properties draw
float64), no key-padding mask and has no backward; its properties (test_attention_triton.py)
reach it through triton_forward.
"""

import math
from unittest import mock

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention

from impl.attention import io_model, passes, recurrence, reference, softmax, tiled, tiled_matmul
from properties.adapters import Peer, late


def _triton_forward(q, k, v, causal=False, scale=None, block_m=None, block_n=None):
    """impl.attention.triton_kernel.forward, imported at the first call: importing triton fixes
    its interpreter mode (conftest sets TRITON_INTERPRET first), and triton may be absent. It
    carries impl's name and module, as late() does, by which the bypass check knows it."""
    from impl.attention import triton_kernel

    return triton_kernel.forward(q, k, v, causal, scale, block_m, block_n)


_triton_forward.__module__, _triton_forward.__name__ = "impl.attention.triton_kernel", "forward"
_triton_forward.__qualname__ = "forward"


class Reference:
    """The project's implementation, impl/attention: tiled attention (forward and recomputing
    backward) and the functions of the note and the explainer. Everything but attention() is
    looked up at call time (late): the rejected variants patch impl."""

    @staticmethod
    def attention(q, k, v, causal=False, key_padding_mask=None, block_q=64, block_k=64):
        return tiled.attention(q, k, v, causal, key_padding_mask, None, block_q, block_k)

    varlen_attention = late(tiled, "varlen_attention")
    forward = late(tiled, "forward")
    key_blocks = late(tiled, "_key_blocks")
    triton_forward = staticmethod(_triton_forward)

    @staticmethod
    def rescales(q, k, v, causal=False, key_padding_mask=None, block_q=64, block_k=64):
        """attention() and the number of calls of tiled.rescale it made (the running max moved)."""
        calls, rescale = [], tiled.rescale

        def counted(m, m_new):
            calls.append(m_new)
            return rescale(m, m_new)

        with mock.patch.object(tiled, "rescale", counted):
            o, lse = tiled.attention(q, k, v, causal, key_padding_mask, None, block_q, block_k)
        return o, lse, len(calls)

    safe_softmax = late(softmax, "safe_softmax")
    stats = late(softmax, "stats")
    merge = late(softmax, "merge")
    online_stats = late(softmax, "online_stats")
    online_softmax = late(softmax, "online_softmax")

    counted_safe_softmax = late(passes, "safe_softmax")
    counted_online_softmax = late(passes, "online_softmax")
    three_pass_attention = late(passes, "three_pass_attention")
    two_pass_attention = late(passes, "two_pass_attention")
    one_pass_attention = late(passes, "one_pass_attention")

    normalised_recurrence = late(recurrence, "normalised")
    unnormalised_recurrence = late(recurrence, "unnormalised")
    surrogates = late(recurrence, "surrogates")

    io_standard = late(io_model, "standard")
    io_tiled = late(io_model, "tiled")
    io_tiled_closed_form = late(io_model, "tiled_closed_form")
    io_flash2 = late(io_model, "flash2")
    sram_footprint = late(io_model, "sram_footprint")
    tiled_matmul = late(tiled_matmul, "tiled")


def _bool_mask(q, k, causal, key_padding_mask):
    mask = None
    if causal:
        mask = reference.causal_mask(q.shape[2], k.shape[2])
    if key_padding_mask is not None:
        pad = reference.padding_mask(key_padding_mask)
        mask = pad if mask is None else mask & pad
    return mask


class _Sdpa(Reference):
    """torch SDPA through one backend (run: q, k, v, a boolean mask in our convention or None,
    scale or None -> (O, L or None)). varlen_attention is one SDPA call on the packed sequences
    (as (1, H, total, d)) with the reference's block-diagonal mask; rescales is not observable
    (None); the rest of the interface stays the reference's."""

    rescales = None

    @classmethod
    def attention(cls, q, k, v, causal=False, key_padding_mask=None, block_q=None, block_k=None):
        return cls.run(q, k, v, _bool_mask(q, k, causal, key_padding_mask), None)

    @classmethod
    def varlen_attention(cls, q, k, v, cu_seqlens_q, cu_seqlens_k, causal=False, scale=None,
                         block_q=None, block_k=None):  # fmt: skip
        mask = reference.block_diagonal_mask(cu_seqlens_q, cu_seqlens_k, causal)
        o, lse = cls.run(*(t.transpose(0, 1)[None] for t in (q, k, v)), mask, scale)
        return o[0].transpose(0, 1), None if lse is None else lse[0]


class SdpaMath(_Sdpa):
    """torch SDPA, math backend (no logsumexp exposed)."""

    @staticmethod
    def run(q, k, v, mask, scale):
        with sdpa_kernel(SDPBackend.MATH):
            return scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), None


class SdpaFlash(_Sdpa):
    """torch SDPA's CPU flash kernel, through aten's op that returns (O, L). The kernel requires
    d_v = d: V is padded with zero columns (or O's extra columns dropped), which is exact."""

    @staticmethod
    def run(q, k, v, mask, scale):
        if q.shape[2] == 0:  # the aten op dies of SIGFPE on N_q = 0 (SDPA itself returns empty)
            return q.new_zeros(*q.shape[:3], v.shape[-1]), q.new_zeros(q.shape[:3])
        if mask is not None:  # the aten op takes an additive float mask
            mask = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, -torch.inf)
        d, d_v = q.shape[-1], v.shape[-1]
        v_d = torch.nn.functional.pad(v, (0, max(d - d_v, 0)))
        q_, k_ = (torch.nn.functional.pad(t, (0, max(d_v - d, 0))) for t in (q, k))
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q_, k_, v_d, attn_mask=mask, scale=1 / math.sqrt(d) if scale is None else scale
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

# impl/ code the properties name directly (properties/bypass.py): inputs and measurements, not
# implementations under test
TOOLS = {
    "impl.attention.reference.attention": "naive attention, softmax(scale Q K^T + mask) V from "
    "the whole score matrix: the reference compared with (in float64, or in the same low "
    "precision for FA-05's 2x rule) and FA-06's quadratic-memory baseline",
    "impl.attention.reference.causal_mask": "the bottom-right causal mask as an (N_q, N_k) bool "
    "matrix: an input of the reference",
    "impl.attention.reference.padding_mask": "a key-padding mask as a bool matrix: an input of "
    "the reference",
    "impl.attention.reference.block_diagonal_mask": "the packed sequences' mask: an input of the "
    "reference",
    "impl.attention.softmax.softmax": "softmax without max subtraction, the definition (1) safe "
    "softmax is compared with and the negative control that overflows",
    "impl.attention.precision": "arithmetic of the 16-bit formats (their largest finite value, "
    "e^x rounded in them, its overflow threshold): FA-08 is about float16 itself, not about an "
    "implementation; FA-05's float16 case takes its measured threshold as input",
    "impl.attention.tiled_matmul.sequential": "the untiled product, the K products summed in one "
    "order: what the tiled product is compared with bit for bit",
    "impl.attention.io_model.largest_block": "a search for the largest block whose footprint fits "
    "a capacity; its answer is checked through attention.sram_footprint",
    "impl._memory.peak_extra_bytes": "a memory meter: the peak of torch's allocator during a call",
}
