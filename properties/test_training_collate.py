"""PACK-02..PACK-06: padding removal, varlen attention, position ids, and the equivalence of a
padded, a packed and an unpadded run of a tiny LM (family `training`; reference
impl/training/collate.py, lm.py). The collator, padding removal, varlen attention and the LM come
from the `training` fixture; the attention the varlen output is compared with is the reference's
(impl/attention), an oracle."""

import numpy as np
import pytest
import torch
from hypothesis import find, given
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from impl.attention import reference, tiled
from impl.training import collate, lm
from properties.catalogue import claim
from properties.evidence import current, figure
from properties.strategies import seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53
REFERENCE_CALLS = {
    "test_varlen_attention_is_per_sample_and_padded_attention": "the family's varlen attention "
    "is compared with attention on each sample alone (impl/attention/reference, float64 naive) "
    "and with padded attention under key masking (impl/attention/tiled): PACK-03 states both "
    "equalities, and those two are the references",
}
samples_st = st.lists(st.lists(st.integers(0, 31), min_size=1, max_size=12), min_size=1, max_size=5)


@st.composite
def masks(draw, right_padded=True):
    B, T = draw(st.integers(1, 5)), draw(st.integers(1, 12))
    if right_padded:
        lengths = draw(st.lists(st.integers(0, T), min_size=B, max_size=B))
        return (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()
    return torch.tensor(draw(st.lists(st.lists(st.integers(0, 1), min_size=T, max_size=T),
                                      min_size=B, max_size=B)))  # fmt: skip


@claim("PACK-02")
@given(mask=masks(right_padded=False) | masks(), d=st.integers(1, 4), seed=seeds)
def test_unpad_then_pad_is_masking(training, mask, d, seed):
    B, T = mask.shape
    x = torch.randn(B, T, d, generator=seed.torch(), dtype=F64)
    tokens, indices, cu_seqlens, max_seqlen = training.unpad(x, mask)
    lengths = mask.sum(1)
    assert cu_seqlens.dtype == torch.int32 and cu_seqlens[0] == 0
    assert torch.equal(cu_seqlens.diff().long(), lengths) and cu_seqlens[-1] == mask.sum()
    assert max_seqlen == (int(lengths.max()) if B else 0)
    assert torch.all(indices.diff() > 0)
    assert torch.equal(tokens, x.reshape(B * T, d)[mask.flatten().bool()])
    assert torch.equal(training.pad(tokens, indices, B, T), x * mask[..., None])
    current().summary = (
        "unpad: cu_seqlens from row lengths, increasing indices; pad(unpad(x)) = x * mask, exactly"
    )


@st.composite
def packed_attention_cases(draw):
    lengths = draw(st.lists(st.integers(1, 10), min_size=1, max_size=4))
    H, d = draw(st.integers(1, 2)), draw(st.integers(1, 6))
    g = draw(seeds).torch()
    q, k, v = (torch.randn(sum(lengths), H, d, generator=g, dtype=F64) for _ in range(3))
    return lengths, q, k, v


@claim("PACK-03")
@given(case=packed_attention_cases(), causal=st.booleans())
def test_varlen_attention_is_per_sample_and_padded_attention(training, case, causal):
    """Packed varlen = each sample alone = the padded batch with key masking, on real tokens; a
    sample's outputs do not change when other samples' tokens change."""
    lengths, q, k, v = case
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    o = training.varlen_attention(q, k, v, cu, cu, causal)[0]
    alone = torch.cat([
        reference.attention(*(t[a:b].transpose(0, 1)[None] for t in (q, k, v)),
                            reference.causal_mask(b - a, b - a) if causal else None)[0][0]
        .transpose(0, 1)
        for a, b in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True)
    ])  # fmt: skip
    # float64; errors as in FA-03 with at most 10 keys and |logit| < 30: generous 1e3 u
    assert_close(o, alone, ulps=1000, scale=1 + alone.abs(), what="varlen - each sample alone")
    B, T = len(lengths), max(lengths)
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    flat = mask.flatten().nonzero().flatten()
    padded = [training.pad(t, flat, B, T).transpose(1, 2) for t in (q, k, v)]
    o_pad = tiled.attention(*padded, causal=causal, key_padding_mask=mask)[0].transpose(1, 2)
    assert_close(o_pad[mask], alone, ulps=1000, scale=1 + alone.abs(), what="padded - alone")
    if len(lengths) > 1:  # change the other samples: sample 0's outputs are unchanged
        k2, v2 = k.clone(), v.clone()
        k2[lengths[0] :] += 1.0
        v2[lengths[0] :] -= 2.0
        o2 = training.varlen_attention(q, k2, v2, cu, cu, causal)[0]
        assert torch.equal(o2[: lengths[0]], o[: lengths[0]])
    current().summary = (
        "varlen attention = each sample alone = padded attention with key masking (float64), "
        "and a sample's outputs are bit-identical when other samples change"
    )


@claim("PACK-04")
@given(samples=samples_st)
def test_position_ids_restart_and_cu_seqlens_agree(training, samples):
    batch = training.packed(samples)
    pos = batch["position_ids"][0]
    starts = batch["cu_seqlens"][:-1].long()
    assert torch.all(pos[starts] == 0)
    for a, b in zip(
        batch["cu_seqlens"][:-1].tolist(), batch["cu_seqlens"][1:].tolist(), strict=True
    ):
        assert torch.equal(pos[a:b], torch.arange(b - a))
    padded = training.padded(samples)
    from_pos = training.cu_seqlens_from_position_ids(batch["position_ids"])
    from_mask = training.cu_seqlens_from_mask(padded["attention_mask"])
    assert torch.equal(from_pos, batch["cu_seqlens"]) and torch.equal(
        from_mask, batch["cu_seqlens"]
    )
    assert torch.all(batch["labels"][0][starts] == collate.IGNORE)


@claim("PACK-04")
def test_negative_control_position_ids_without_reset(training):
    """Positions counted over the whole row (no reset): cu_seqlens derived from them merge the
    samples, and the packed LM's logits no longer match the padded run. Passed with the samples'
    own cu_seqlens, which they contradict, they are refused."""
    samples = [[1, 2, 3], [4, 5]]
    batch = training.packed(samples)
    no_reset = torch.arange(batch["input_ids"].shape[1])[None]
    merged = training.cu_seqlens_from_position_ids(no_reset)
    assert merged.tolist() == [0, 5]
    model = training.tiny_lm()
    good = model.forward_packed(batch["input_ids"], batch["position_ids"], batch["cu_seqlens"])
    bad = model.forward_packed(batch["input_ids"], no_reset, merged)
    assert not torch.allclose(good[0, 3:], bad[0, 3:], atol=1e-6)
    with pytest.raises(ValueError, match="^position_ids: "):
        model.forward_packed(batch["input_ids"], no_reset, batch["cu_seqlens"])


def lm_budget(model, T):
    """float64 logits of the three runs differ only in summation order: per layer the attention
    (FA-03's budget, T keys, |logits| < 10 here) and d- and 4d-term sums, compounded over the
    layers with LayerNorm's 1/sigma (< 10 for these weights): 64 (4d + T + 16) u per layer."""
    d = model.embed.embedding_dim
    return 64 * (4 * d + T + 16) * len(model.blocks)


@claim("PACK-05")
@given(samples=samples_st, seed=st.integers(0, 10**6))
def test_padded_packed_and_unpadded_runs_agree(training, samples, seed):
    model = training.tiny_lm(seed=seed)
    padded, packed = training.padded(samples), training.packed(samples)
    mask = padded["attention_mask"].bool()
    runs = {
        "padded": lambda: model.forward_padded(padded["input_ids"], padded["attention_mask"]),
        "unpadded": lambda: model.forward_unpadded(padded["input_ids"], padded["attention_mask"]),
        "packed": lambda: model.forward_packed(packed["input_ids"], packed["position_ids"],
                                               packed["cu_seqlens"]),
    }  # fmt: skip
    out = {}
    for name, run in runs.items():
        model.zero_grad()
        logits = run()
        labels = packed["labels"] if name == "packed" else padded["labels"]
        loss, tokens = training.shifted_token_loss(logits, labels)
        loss.backward()
        real = logits[0] if name == "packed" else logits[mask]
        out[name] = (real.detach(), loss.detach(), [p.grad.clone() for p in model.parameters()])
    ulps = lm_budget(model, padded["input_ids"].shape[1])
    ref_logits, ref_loss, ref_grads = out["padded"]
    for name in ("unpadded", "packed"):
        logits, loss, grads = out[name]
        assert_close(logits, ref_logits, ulps=ulps, scale=1 + ref_logits.abs(),
                     what=f"{name} logits - padded")  # fmt: skip
        assert_close(loss, ref_loss, ulps=ulps * tokens, scale=1 + ref_loss.abs(),
                     what=f"{name} token-summed loss - padded")  # fmt: skip
        for g, g_ref in zip(grads, ref_grads, strict=True):
            assert_close(g, g_ref, ulps=ulps * tokens, scale=1 + g_ref.abs().max(),
                         what=f"{name} gradients - padded")  # fmt: skip
    current().summary = (
        "padded, packed and unpadded runs of a float64 tiny LM: same logits on real tokens, "
        "same token-summed loss, same gradients"
    )


@claim("PACK-05")
def test_mean_of_sample_means_differs_unless_token_counts_are_equal(training):
    """Token mean = sum_s n_s m_s / sum_s n_s; mean of sample means = sum_s m_s / S: equal iff
    sum_s (n_s - n_bar) m_s = 0, e.g. when every sample has the same token count. Minimal
    counterexample by search; equal lengths agree exactly up to rounding."""
    model = training.tiny_lm()

    @torch.no_grad()
    def means(samples):
        batch = training.padded(samples)
        logits = model.forward_padded(batch["input_ids"], batch["attention_mask"])
        per_sample = [training.shifted_token_loss(logits[b : b + 1], batch["labels"][b : b + 1])
                      for b in range(len(samples))]  # fmt: skip
        total, tokens = training.shifted_token_loss(logits, batch["labels"])
        sample_means = [float(l) / n for l, n in per_sample if n]
        return float(total) / tokens, sum(sample_means) / len(sample_means)

    samples = find(st.lists(st.lists(st.integers(0, 31), min_size=2, max_size=6), min_size=2,
                            max_size=3), lambda s: abs(means(s)[0] - means(s)[1]) > 1e-6)  # fmt: skip
    token_mean, mean_of_means = means([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert abs(token_mean - mean_of_means) <= 1e-12 * abs(token_mean)
    current().record(mean_of_means_differs_on=samples, token_mean_vs_mean_of_means=means(samples))


@claim("PACK-06")
@given(lengths=st.lists(st.integers(1, 24), min_size=1, max_size=6))
def test_unpadded_flops_scale_with_real_tokens(training, lengths):
    """FLOPs counted by torch's FlopCounterMode: token-wise layers (every matmul outside the
    attention kernel) scale with real tokens, attention with sum L_i^2 against B T^2."""
    model = training.tiny_lm(d=16, heads=2, layers=2)
    B, T = len(lengths), max(lengths)
    ids = torch.randint(0, 32, (B, T), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).long()
    counts = {}
    for name, run in (("padded", model.forward_padded), ("unpadded", model.forward_unpadded)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            run(ids, mask)
        counts[name] = counter.get_total_flops()
    d, layers, vocab = 16, 2, 32
    per_token = layers * 2 * d * (3 * d + d + 4 * d + 4 * d) + 2 * d * vocab  # linear layers
    attention = lambda n2: layers * 2 * 2 * n2 * d  # noqa: E731  QK^T and PV, d summed over heads
    n_real = sum(lengths)
    assert counts["unpadded"] == n_real * per_token + attention(sum(L * L for L in lengths))
    assert counts["padded"] == B * T * per_token + attention(B * T * T)
    current().summary = (
        "counted FLOPs (FlopCounterMode): unpadded = real tokens x per-token + attention "
        "sum L_i^2, padded = B T x per-token + B T^2; measured speed-up in the figure"
    )


def test_bad_input_names_the_argument():
    x = torch.zeros(2, 3, 1)
    for call, argument in [
        (lambda: collate.unpad(x, torch.tensor([[1, 2, 0], [1, 0, 0]])), "attention_mask"),
        (lambda: collate.unpad(x, torch.ones(2, 4)), "x"),
        (lambda: lm.TinyLM().forward_padded(torch.zeros(1, 3, dtype=torch.long),
                                            torch.tensor([[0, 1, 1]])), "attention_mask"),
        (lambda: collate.pad(torch.zeros(3, 1), torch.tensor([0, 1]), 2, 3), "indices"),
        (lambda: collate.cu_seqlens_from_position_ids(torch.tensor([[1, 0, 1]])), "position_ids"),
        (lambda: collate.packed([[1], []]), "samples"),
        (lambda: lm.TinyLM(d=10, heads=3), "heads"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{argument}:"):
            call()


@claim("PACK-06")
def test_speedup_against_padding_fraction_figure(training):
    """Forward + backward of a float32 LM (d = 64, 4 heads, 2 layers, vocab 256) on 8 rows of
    T = 512 with padding fractions 0.25, 0.5, 0.75 (row lengths drawn around the mean): the ideal
    speed-up is the counted FLOP ratio padded / unpadded; the measured one is in the figure."""
    model = training.tiny_lm(vocab=256, d=64, heads=4, layers=2, dtype=torch.float32)
    B, T = 8, 512
    rows = {}
    for f in (0.25, 0.5, 0.75):
        g = torch.Generator().manual_seed(0)
        mean = (1 - f) * T
        lengths = (mean * (0.5 + torch.rand(B, generator=g))).clamp(1, T).long()
        lengths[0] = T  # the longest row sets T
        lengths = (lengths * (B * mean / lengths.sum())).round().clamp(1, T).long()
        mask = (torch.arange(T)[None] < lengths[:, None]).long()
        ids = torch.randint(0, 256, (B, T), generator=g)
        flops = {}
        for name, run in (("padded", model.forward_padded), ("unpadded", model.forward_unpadded)):
            with FlopCounterMode(display=False) as counter:
                run(ids, mask).sum().backward()
            flops[name] = counter.get_total_flops()
        rows[f] = (1 - float(mask.float().mean()), flops["padded"] / flops["unpadded"], ids, mask)
        assert flops["padded"] / flops["unpadded"] >= 1 / (1 - rows[f][0])  # token-wise share
    current().record(**{f"padding {v[0]:.2f}: FLOP ratio padded/unpadded": v[1]
                        for v in rows.values()})  # fmt: skip

    def draw(fig):
        import time

        def seconds(run, ids, mask):
            run(ids, mask).sum().backward()  # warm-up
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                run(ids, mask).sum().backward()
                best = min(best, time.perf_counter() - t0)
            return best

        measured = [seconds(model.forward_padded, ids, mask) / seconds(model.forward_unpadded, ids, mask)
                    for _, _, ids, mask in rows.values()]  # fmt: skip
        fractions = [v[0] for v in rows.values()]
        ax = fig.subplots()
        ax.plot(fractions, [v[1] for v in rows.values()], "o--", label="ideal: FLOP ratio")
        ax.plot(fractions, [1 / (1 - p) for p in fractions], ":", label="1 / (1 - padding)")
        ax.plot(fractions, measured, "o-", label="measured (this CPU)")
        ax.set(xlabel="padding fraction", ylabel="speed-up of padding removal",
               title="PACK-06: forward + backward, 8 x 512 tokens, float32")  # fmt: skip
        ax.legend()
        current().record(**{f"padding {p:.2f}: measured speed-up": m
                            for p, m in zip(fractions, measured, strict=True)})  # fmt: skip

    figure("pack06_speedup", draw)


def test_batch_dtypes_defaults_and_length_checks():
    """The contract the kernels rely on: token ids and the mask are int64, cu_seqlens int32 (as
    FlashAttention's varlen API takes them), the default pad id is 0; the packed forward refuses
    positions beyond max_len (max position + 1 tokens) and the unpadded forward refuses a
    left-padded mask."""
    samples = [[5, 6, 7], [8, 9]]
    pad = collate.padded(samples)
    assert pad["input_ids"].dtype == torch.int64 and pad["attention_mask"].dtype == torch.int64
    assert pad["input_ids"][1, 2] == 0
    pack = collate.packed(samples)
    assert pack["input_ids"].dtype == torch.int64 and pack["cu_seqlens"].dtype == torch.int32
    assert pack["cu_seqlens"].tolist() == [0, 3, 5]
    narrow = collate.packed([np.array(x, dtype=np.int32) for x in samples])
    assert narrow["input_ids"].dtype == torch.int64  # int32 arrays in, int64 ids out
    cu = collate.cu_seqlens_from_position_ids(pack["position_ids"])
    assert cu.dtype == torch.int32 and cu.tolist() == [0, 3, 5]
    model = lm.TinyLM(max_len=4)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    for n, ok in ((4, True), (5, False)):
        pos, cu = torch.arange(n)[None], torch.tensor([0, n], dtype=torch.int32)
        if ok:
            model.forward_packed(ids[:, :n], pos, cu)
        else:
            with pytest.raises(ValueError, match="^input_ids: 5 positions exceed max_len = 4"):
                model.forward_packed(ids[:, :n], pos, cu)
    with pytest.raises(ValueError):
        model.forward_unpadded(torch.tensor([[1, 2, 3]]), torch.tensor([[0, 1, 1]]))


def test_tiny_lm_is_the_written_out_pre_ln_transformer():
    """h_0 = E[x] + P[p]; per layer h += W_o Attn(LN_1 h) (causal, per head, scale 1/sqrt(d_h)),
    h += W_2 GELU(W_1 LN_2 h + b_1) + b_2; logits = LN(h) W_out (no bias); parameters drawn as
    N(0, 1/d) in order from the seed's generator. Checked in float64 against a plain loop (same
    operations in another order: 1e-12 relative covers them)."""
    model = lm.TinyLM(vocab=11, d=8, heads=2, layers=2, max_len=16, seed=3)
    g = torch.Generator().manual_seed(3)
    for p in model.parameters():
        assert torch.equal(p, torch.randn(p.shape, generator=g, dtype=F64) / 8**0.5)
    assert model.out.bias is None
    ids = torch.tensor([[1, 5, 2, 9, 0, 3, 7]])
    T = ids.shape[1]
    h = model.embed.weight[ids[0]] + model.pos.weight[:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for block in model.blocks:
        qkv = block.qkv(block.ln1(h)).reshape(T, 3, 2, 4)
        heads = []
        for j in range(2):
            q, k, v = qkv[:, 0, j], qkv[:, 1, j], qkv[:, 2, j]
            s = (q @ k.T / 2.0).masked_fill(~causal, -torch.inf)
            heads.append(torch.softmax(s, dim=-1) @ v)
        h = h + block.proj(torch.cat(heads, dim=-1))
        w1, w2 = block.mlp[0], block.mlp[-1]
        h = h + w2(torch.nn.functional.gelu(w1(block.ln2(h))))
    want = model.norm(h) @ model.out.weight.T
    got = model.forward_padded(ids, torch.ones_like(ids))[0]
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
    default = lm.TinyLM()
    assert (len(default.blocks), default.pos.num_embeddings, default.embed.weight.shape) == (
        2, 512, (32, 16)
    )  # fmt: skip
    assert default.embed.weight.dtype == default.pos.weight.dtype == F64
    assert lm.TinyLM(dtype=torch.float32).pos.weight.dtype == torch.float32


def test_empty_batches_and_rows():
    """unpad of a batch with no rows gives no tokens, cu_seqlens [0] and max_seqlen 0; the LM's
    packed forward of an empty row (one sequence of length 0) gives (1, 0, vocab) logits."""
    flat, indices, cu, max_len = collate.unpad(
        torch.zeros(0, 5), torch.zeros(0, 5, dtype=torch.bool)
    )
    assert flat.shape == (0,) and indices.numel() == 0 and cu.tolist() == [0] and max_len == 0
    model = lm.TinyLM(vocab=7, d=4, heads=1, layers=1, max_len=8)
    empty = torch.zeros(1, 0, dtype=torch.long)
    logits = model.forward_packed(empty, empty, torch.zeros(2, dtype=torch.int32))
    assert logits.shape == (1, 0, 7)


def test_forward_packed_refuses_contradicting_cu_seqlens_and_a_second_row():
    """Issue 16: forward_packed accepted cu_seqlens that contradict position_ids (attention across
    a sample boundary, or a sample split) and ignored every row but the first. Now each is a
    ValueError naming the argument."""
    model = lm.TinyLM(vocab=8, d=4, heads=2, layers=1, max_len=8)
    ids, pos = torch.tensor([[1, 2, 3, 4, 5]]), torch.tensor([[0, 1, 2, 0, 1]])
    cu = torch.tensor([0, 3, 5], dtype=torch.int32)
    model.forward_packed(ids, pos, cu)
    for wrong_cu in ([0, 5], [0, 2, 5], [0, 1, 3, 5]):  # merged, shifted, split samples
        with pytest.raises(ValueError, match="^position_ids: must count 0, 1, 2"):
            model.forward_packed(ids, pos, torch.tensor(wrong_cu, dtype=torch.int32))
    for wrong_cu in ([0, 3, 6], [1, 3, 5], [0, 3], [[0, 3, 5]], [0.0, 3.0, 5.0], [0, 3, 2, 5]):
        with pytest.raises((ValueError, TypeError), match="^cu_seqlens: "):
            model.forward_packed(ids, pos, torch.tensor(wrong_cu))
    with pytest.raises(ValueError, match="^input_ids: expected one packed row"):
        model.forward_packed(ids.expand(2, 5), pos.expand(2, 5), cu)  # a second row
    with pytest.raises(ValueError, match="^input_ids: token ids must lie in"):
        model.forward_packed(torch.tensor([[1, 2, 3, 4, 8]]), pos, cu)
    with pytest.raises(ValueError, match="^position_ids: shape"):
        model.forward_packed(ids, pos[:, :4], cu)


def test_collate_and_tiny_lm_refuse_wrong_input_by_name():
    """Issue 16: samples with a float, negative or missing token id, a mask of other values or
    shape, position_ids that jump, labels out of range: a ValueError or TypeError naming the
    argument."""
    model = lm.TinyLM(vocab=8, d=4, heads=2, layers=1, max_len=8)
    ids, mask = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    nan_logits = torch.full((1, 2, 3), torch.nan)
    for call, argument in [
        (lambda: collate.packed([[1, 2.5]]), "samples"),
        (lambda: collate.padded([[1, -3]]), "samples"),
        (lambda: collate.padded([1, 2]), "samples"),
        (lambda: collate.padded(None), "samples"),
        (lambda: collate.padded([[1]], pad_id=-1), "pad_id"),
        (lambda: collate.cu_seqlens_from_position_ids(torch.tensor([[0, 1, 3]])), "position_ids"),
        (lambda: collate.cu_seqlens_from_position_ids(torch.tensor([0, 1, 0])), "position_ids"),
        (lambda: collate.cu_seqlens_from_mask(None), "attention_mask"),
        (lambda: collate.pad(torch.zeros(2, 1), torch.tensor([1, 1]), 1, 2), "indices"),
        (lambda: collate.pad(torch.zeros(2, 1), torch.tensor([0, 2]), 1, 2), "indices"),
        (lambda: collate.shifted_token_loss(torch.zeros(1, 2, 3), torch.tensor([[0, 3]])), "labels"),
        (lambda: collate.shifted_token_loss(nan_logits, torch.tensor([[0, 1]])), "logits"),
        (lambda: model.forward_padded(ids, mask[:, :2]), "attention_mask"),
        (lambda: model.forward_unpadded(ids + 5, mask), "input_ids"),
        (lambda: model.forward_padded(ids.float(), mask), "input_ids"),
        (lambda: lm.TinyLM(dtype=torch.int64), "dtype"),
        (lambda: lm.TinyLM(vocab=0), "vocab"),
        (lambda: model.blocks[0](torch.zeros(3, 5, dtype=F64), lambda q, k, v: v), "h"),
    ]:  # fmt: skip
        with pytest.raises((ValueError, TypeError), match=f"^{argument}:"):
            call()
