"""transformers as a peer (PACK-02, PACK-04; adapter `--target training=transformers`,
properties/adapters/training.py): DataCollatorWithFlattening as the packed collator and its
flash-attention helpers (unpad/pad, cu_seqlens from masks or position ids). The claim properties
run on the adapter in the peer matrix (python -m properties.audit --target
training=transformers --claims 'PACK-02,PACK-04'); here, for the default gate, the adapter's
functions against impl/training/collate.py on Hypothesis-drawn batches. Peer findings (@finding),
not evidence for the article's claims (test_training_collate.py holds those)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.training import collate
from properties.adapters.training import Transformers
from properties.catalogue import finding
from properties.evidence import current
from properties.strategies import seeds
from properties.test_training_collate import masks, samples_st

transformers = pytest.importorskip("transformers", reason="transformers is the peer under test")


@finding("PACK-04")
@given(samples=samples_st)
def test_data_collator_with_flattening_equals_our_packed_batch(samples):
    theirs, ours = Transformers.packed(samples), collate.packed(samples)
    for key in ("input_ids", "labels", "position_ids", "cu_seqlens"):
        assert torch.equal(theirs[key], ours[key]), key
    assert theirs["max_seqlen"] == ours["max_seqlen"]
    current().summary = (
        "DataCollatorWithFlattening = our packed batch (ids, labels, positions, cu_seqlens)"
    )
    current().record(
        finding=f"transformers {transformers.__version__}: DataCollatorWithFlattening("
        "return_flash_attn_kwargs=True) gives our packed batch exactly, labels -100 on every "
        "sample's first token"
    )


@finding("PACK-02")
@given(mask=masks(right_padded=False), d=st.integers(1, 3), seed=seeds)
def test_transformers_unpad_and_pad_equal_ours(mask, d, seed):
    B, T = mask.shape
    x = torch.randn(B, T, d, generator=seed.torch(), dtype=torch.float64)
    theirs, ours = Transformers.unpad(x, mask), collate.unpad(x, mask)
    assert all(torch.equal(a, b) for a, b in zip(theirs[:3], ours[:3], strict=True))
    assert theirs[3] == ours[3]
    assert torch.equal(Transformers.pad(*theirs[:2], B, T), collate.pad(*ours[:2], B, T))
    assert torch.equal(Transformers.cu_seqlens_from_mask(mask), ours[2])


@finding("PACK-04")
@given(samples=samples_st)
def test_cu_seqlens_from_position_ids_equal_ours(samples):
    position_ids = collate.packed(samples)["position_ids"]
    cu = Transformers.cu_seqlens_from_position_ids(position_ids)
    assert torch.equal(cu, collate.cu_seqlens_from_position_ids(position_ids))
    fa = pytest.importorskip("transformers.modeling_flash_attention_utils")
    (_, cu_k), (max_q, _) = fa.prepare_fa_kwargs_from_position_ids(position_ids)
    assert torch.equal(cu_k, cu) and int(max_q) == max(len(s) for s in samples)
