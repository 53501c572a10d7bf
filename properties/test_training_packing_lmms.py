"""lmms-engine 0.1.4 as a peer (the packing article's engine; adapter `--target
training=lmms-engine`, properties/adapters/training.py): a smoke check of its adapter for the
default gate, its packers' efficiency beside ours on the benchmark lengths, and its findings
(@finding: not evidence for the article's claims, which rest on impl/). The full claim properties
run on it in the peer matrix: python -m properties.audit --target training=lmms-engine --claims
'PACK-01,PACK-02,PACK-04'."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impl.training import collate, packing
from properties.adapters.training import LmmsEngine, lmms_pack, lmms_sequence_packing_utils
from properties.catalogue import finding
from properties.evidence import current
from properties.strategies import seeds
from properties.test_training_collate import masks
from properties.test_training_packing import benchmark_lengths, instances

pytest.importorskip("lmms_engine", reason="lmms-engine is the peer under test")


def lmms_version():
    from importlib.metadata import version

    return version("lmms_engine")


@settings(max_examples=10)
@given(case=instances(max_n=30), oversize=st.sampled_from(packing.OVERSIZE))
def test_smoke_lmms_packers_place_every_sample_once_within_capacity(case, oversize):
    """A few examples of PACK-01's property on the engine's three packers, as its dataset drives
    them (over-long samples alone after a flush, or filtered)."""
    lengths, C = case
    for name, packer in LmmsEngine.packers().items():
        pack_of = packer(lengths, C, oversize=oversize)
        kept = np.flatnonzero(lengths <= C) if oversize == "filter" else np.arange(len(lengths))
        assert sorted(i for g in packing.packs(pack_of) for i in g) == kept.tolist(), name
        for g in packing.packs(pack_of):
            assert lengths[g].sum() <= C or len(g) == 1, (name, g)


@finding("PACK-01")
@given(case=instances(), oversize=st.sampled_from(packing.OVERSIZE))
def test_finding_lmms_first_fit_is_next_fit(case, oversize):
    """The engine's default strategy, FirstFitPacking ("first_fit"), is next-fit: it keeps one
    open buffer and closes it when the next sample does not fit, never returning to an earlier
    pack. Its packs are exactly our next_fit's (over-long samples handled as its dataset does)."""
    lengths, C = case
    theirs = lmms_pack("first_fit", lengths, C, oversize)
    assert theirs.tolist() == packing.next_fit(lengths, C, oversize=oversize).tolist()
    # first fit proper would put the 1 into the first pack: [3, 1], [3]; next-fit cannot
    assert lmms_pack("first_fit", [3, 3, 1], 4).tolist() == [0, 1, 1]
    current().record(
        finding=f"lmms-engine {lmms_version()}: FirstFitPacking ('first_fit', the default) is "
        "next-fit, not first-fit: lengths [3, 3, 1], C = 4 give packs [3], [3, 1] (first-fit: "
        "[3, 1], [3])"
    )


@finding("PACK-07")
def test_finding_lmms_packing_efficiency_beside_ours():
    """Efficiency (real tokens / (packs x C)) of the engine's packers with their defaults beside
    ours on the benchmark (1e5 lognormal lengths, median 500, C = 4096): its default first_fit
    (next-fit) wastes about 17% of every pack; best_fit (4 open buckets, emitted at 95% full)
    and balanced (8 buckets) come within 2-5% of our offline FFD/BFD."""
    lengths, C = benchmark_lengths()
    bound = packing.lower_bound(lengths, C)
    ours = {
        "ours next_fit": packing.next_fit(lengths, C),
        "ours window_4": packing.window(lengths, C, 4),
        "ours first_fit_decreasing": packing.first_fit_decreasing(lengths, C),
        "ours best_fit_decreasing": packing.best_fit_decreasing(lengths, C),
    }
    theirs = {f"lmms {k}": f(lengths, C) for k, f in LmmsEngine.packers().items()}
    eff = {k: packing.efficiency(lengths, v, C) for k, v in {**ours, **theirs}.items()}
    packs = {k: len(packing.packs(v)) for k, v in {**ours, **theirs}.items()}
    assert eff["lmms first_fit"] == eff["ours next_fit"]  # the same packs
    assert 0.80 < eff["lmms first_fit"] < 0.85
    assert 0.95 < eff["lmms balanced"] < eff["lmms best_fit"] < eff["ours first_fit_decreasing"]
    assert all(n >= bound for n in packs.values())
    current().record(lower_bound_packs=bound, packs=packs,
                     **{f"{k} efficiency": round(e, 4) for k, e in eff.items()})  # fmt: skip
    current().record(
        finding=f"lmms-engine {lmms_version()}: efficiency on 1e5 lognormal lengths (median 500, "
        "C = 4096): " + ", ".join(f"{k} {e:.4f}" for k, e in eff.items())
    )


@finding("PACK-02")
def test_finding_lmms_unpad_input_breaks_on_a_one_token_batch():
    """_unpad_input squeezes dimension 1 of the mask twice (meant for a (B, 1, 1, T) mask), so a
    (B, 1) mask, a batch of one-token rows, loses its time axis and it raises IndexError (mask
    [[1]]; [[1], [1]] too); _get_unpad_data, which does not squeeze, gives cu_seqlens [0, 1]. For
    T >= 2 it equals ours (test below)."""
    spu = lmms_sequence_packing_utils()
    for mask in (torch.tensor([[1]]), torch.tensor([[1], [1]]), torch.tensor([[0]])):
        x = torch.ones(*mask.shape, 2)
        with pytest.raises(IndexError):
            spu._unpad_input(x, mask)
    assert spu._get_unpad_data(torch.tensor([[1]]))[1].tolist() == [0, 1]
    current().record(
        finding=f"lmms-engine {lmms_version()}: _unpad_input raises IndexError on a (B, 1) "
        "attention mask (one-token rows): attention_mask.squeeze(1).squeeze(1) drops the time "
        "axis; minimal case x = ones(1, 1, d), mask = [[1]] (PACK-02 fails on it)"
    )


@given(mask=masks(right_padded=False), d=st.integers(1, 3), seed=seeds)
def test_smoke_lmms_unpad_equals_ours_on_two_or_more_columns(mask, d, seed):
    """Smoke check of the padding-removal adapter: for T >= 2, _unpad_input and _get_unpad_data
    give our tokens, indices, cu_seqlens and max_seqlen exactly."""
    if mask.shape[1] < 2:
        mask = torch.cat([mask, torch.zeros_like(mask)], dim=1)
    B, T = mask.shape
    x = torch.randn(B, T, d, generator=seed.torch(), dtype=torch.float64)
    theirs, ours = LmmsEngine.unpad(x, mask), collate.unpad(x, mask)
    assert all(torch.equal(a, b) for a, b in zip(theirs[:3], ours[:3], strict=True))
    assert int(theirs[3]) == ours[3]
    assert torch.equal(LmmsEngine.cu_seqlens_from_mask(mask), ours[2])


def rotate(x, cos, sin):
    """Rotary embedding of x (L, H, d) at positions 0..L-1 (cos, sin: (>= L, d) tables)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[: len(x), None] + rotated * sin[: len(x), None]


@finding("PACK-04")
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    heads=st.integers(1, 2),
    half=st.integers(1, 4),
    seed=seeds,
)
def test_finding_lmms_rotary_on_packed_rows_restarts_every_sample(lengths, heads, half, seed):
    """apply_rotary_pos_emb_unpad on the unpadded tokens of a packed row, with the packed
    position_ids (restarting at 0 per sample, PACK-04) and a cos/sin table: every sample is
    rotated exactly as alone from position 0, bit for bit. (In 0.1.4 no model of the package
    calls it: its models compute cos/sin per position in transformers' rotary classes.)"""
    d, g = 2 * half, seed.torch()
    inv = 1.0 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = torch.arange(16, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([angles, angles], -1).cos(), torch.cat([angles, angles], -1).sin()
    q, k = (torch.randn(sum(lengths), heads, d, generator=g, dtype=torch.float64) for _ in "qk")
    position_ids = collate.packed([[0] * n for n in lengths])["position_ids"]
    spu = lmms_sequence_packing_utils()
    q_rot, k_rot = spu.apply_rotary_pos_emb_unpad(q, k, cos, sin, position_ids)
    starts = np.cumsum([0, *lengths])
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        assert torch.equal(q_rot[a:b], rotate(q[a:b], cos, sin))
        assert torch.equal(k_rot[a:b], rotate(k[a:b], cos, sin))
    current().record(
        finding=f"lmms-engine {lmms_version()}: apply_rotary_pos_emb_unpad with packed "
        "position_ids rotates each sample as alone (bit for bit); no model in the package calls it"
    )
