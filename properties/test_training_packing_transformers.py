"""transformers as a peer (PACK-02, PACK-04): DataCollatorWithFlattening against our packed
collator, and its flash-attention helpers (unpad/pad, cu_seqlens from masks or position ids)
against impl/training/collate.py, on Hypothesis-drawn batches. Peer findings (@finding), not
evidence for the article's claims (test_training_collate.py holds those)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.training import collate
from properties.catalogue import finding
from properties.evidence import current
from properties.strategies import seeds
from properties.test_training_collate import masks, samples_st

transformers = pytest.importorskip("transformers", reason="transformers is the peer under test")
fa_utils = pytest.importorskip("transformers.modeling_flash_attention_utils")


@finding("PACK-04")
@given(samples=samples_st)
def test_data_collator_with_flattening_equals_our_packed_batch(samples):
    theirs = transformers.DataCollatorWithFlattening(return_flash_attn_kwargs=True)(
        [{"input_ids": s} for s in samples]
    )
    ours = collate.packed(samples)
    for key in ("input_ids", "labels", "position_ids"):
        assert torch.equal(theirs[key], ours[key]), key
    assert torch.equal(theirs["cu_seq_lens_q"], ours["cu_seqlens"])
    assert theirs["max_length_q"] == ours["max_seqlen"]
    current().summary = (
        "DataCollatorWithFlattening = our packed batch (ids, labels, positions, cu_seqlens)"
    )


@finding("PACK-02")
@given(mask=masks(right_padded=False), d=st.integers(1, 3), seed=seeds)
def test_transformers_unpad_and_pad_equal_ours(mask, d, seed):
    B, T = mask.shape
    x = torch.randn(B, T, d, generator=seed.torch(), dtype=torch.float64)
    tokens, indices, cu, max_len, *_ = fa_utils._unpad_input(x, mask)
    ours = collate.unpad(x, mask)
    assert torch.equal(tokens, ours[0]) and torch.equal(indices, ours[1])
    assert torch.equal(cu, ours[2]) and int(max_len) == ours[3]
    assert torch.equal(fa_utils._pad_input(tokens, indices, B, T), collate.pad(*ours[:2], B, T))


@finding("PACK-04")
@given(samples=samples_st)
def test_cu_seqlens_from_position_ids_equal_ours(samples):
    position_ids = collate.packed(samples)["position_ids"]
    (cu_q, cu_k), (max_q, _) = fa_utils.prepare_fa_kwargs_from_position_ids(position_ids)
    assert torch.equal(cu_q, collate.cu_seqlens_from_position_ids(position_ids))
    assert torch.equal(cu_k, cu_q) and int(max_q) == max(len(s) for s in samples)
