"""FA-03, FA-04, FA-05: tiled attention forward and backward against naive attention
(impl/attention/tiled.py against impl/attention/reference.py), through the `attention` family so
that --target attention=sdpa-math (or sdpa-flash) runs torch's SDPA through the same properties."""

import math

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from impl.attention import reference, tiled
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
LENGTHS = st.one_of(st.just(1), st.sampled_from([2, 3, 7, 13, 31, 37]), st.integers(1, 48))


@st.composite
def problems(draw, dtype=F64, max_logit=8.0, padding=True):
    """An attention problem: shapes, blocks (dividing N or not, larger than N), causal or not, a
    key-padding mask (rows and whole batches fully masked allowed), logits of a drawn size."""
    B, H = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    n_q, n_k = draw(LENGTHS), draw(LENGTHS)
    d, d_v = draw(st.integers(1, 17)), draw(st.integers(1, 9))
    g = draw(seeds).torch()
    # logits scale * q.k ~ N(0, a^2 ...): a drawn so the largest |logit| is about max_logit
    a = math.sqrt(draw(floats(0.05, 1.0)) * max_logit)
    q = (a * torch.randn(B, H, n_q, d, generator=g, dtype=F64)).to(dtype)
    k = (a * torch.randn(B, H, n_k, d, generator=g, dtype=F64)).to(dtype)
    v = torch.randn(B, H, n_k, d_v, generator=g, dtype=F64).to(dtype)
    keep = None
    if padding and draw(st.booleans()):
        keep = torch.rand(B, n_k, generator=g) < draw(floats(0.0, 1.0))
    return dict(
        q=q, k=k, v=v, causal=draw(st.booleans()), key_padding_mask=keep,
        block_q=draw(st.integers(1, 64)), block_k=draw(st.integers(1, 64)),
    )  # fmt: skip


def describe(p):
    return (
        f"q {tuple(p['q'].shape)}, k {tuple(p['k'].shape)}, v {tuple(p['v'].shape)}, "
        f"causal={p['causal']}, padded={p['key_padding_mask'] is not None}, "
        f"blocks=({p['block_q']}, {p['block_k']})"
    )


def naive(p, **kw):
    """The reference, float64 unless the inputs are of another dtype."""
    mask = None
    if p["causal"]:
        mask = reference.causal_mask(p["q"].shape[2], p["k"].shape[2])
    if p["key_padding_mask"] is not None:
        pad = reference.padding_mask(p["key_padding_mask"])
        mask = pad if mask is None else mask & pad
    return reference.attention(p["q"], p["k"], p["v"], mask, **kw)


def logit_bound(q, k):
    """S = max_ij scale sum_l |q_il| |k_jl|: bounds every |logit| and, times u d, its rounding."""
    scale = 1 / math.sqrt(q.shape[-1])
    s = scale * (q.abs().double() @ k.abs().double().transpose(-2, -1))
    return float(s.max()) if s.numel() else 0.0


def forward_budget(p):
    """|O - O_ref| and |L - L_ref| budgets, in units of u.

    A logit s_ij is computed with absolute error <= d u S (S = logit_bound); P_ij = e^{s_ij - m}/l
    then has relative error <= 2 d u S + (N_k + 4) u (two exponent errors, exp, the N_k-term sum,
    the division). O_i = sum_j P_ij v_j adds d_v-independent (N_k + 1) u relative to max|v|, and
    both sides of the comparison err: O budget 2 (2 d S + 2 N_k + 5) max|v| u; L = m + log l has
    absolute error 2 (d S + N_k + 2) u + |L| u."""
    d, n_k = p["q"].shape[-1], p["k"].shape[2]
    S = logit_bound(p["q"], p["k"])
    return 2 * (2 * d * S + 2 * n_k + 5) * float(p["v"].abs().max()), 2 * (d * S + n_k + 2)


def compare(o, lse, o_ref, lse_ref, budget, what):
    """O within budget[0] ulps; L (if given) -inf exactly on unseen rows, else within
    budget[1] + |L| ulps. Ulps are those of O's dtype (assert_close)."""
    assert_close(o.detach(), o_ref, ulps=budget[0], what=f"{what} O - naive O")
    if lse is not None:
        seen = torch.isfinite(lse_ref)
        assert torch.equal(torch.isfinite(lse), seen), "rows that see no key must have L = -inf"
        lse_scale = budget[1] + lse_ref[seen].abs()
        assert_close(lse[seen].to(o.dtype), lse_ref[seen], ulps=1, scale=lse_scale,
                     what=f"{what} L - naive logsumexp")  # fmt: skip


def check_forward(attention, p):
    o, lse = attention.attention(**p)
    compare(o, lse, *naive({**p, **{t: p[t].double() for t in "qkv"}}), forward_budget(p), "tiled")
    return o, lse


@claim("FA-03")
@given(p=problems())
def test_tiled_equals_naive_attention(attention, p):
    check_forward(attention, p)
    current().summary = (
        "tiled = naive in float64 for random blocks (non-dividing, larger than N), N_q != N_k, "
        "N_q = 1, causal (bottom-right), key padding; L = logsumexp; unseen rows O = 0, L = -inf"
    )


@claim("FA-03")
def test_causal_alignment_is_bottom_right(attention):
    """N_q = 2, N_k = 4: query 0 sees keys 0..2, query 1 all four; N_q = 3, N_k = 2: query 0 sees
    nothing (O = 0, and L = -inf where L is returned). The last query always sees every key."""
    assert reference.causal_mask(2, 4).tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert reference.causal_mask(3, 2).tolist() == [[0, 0], [1, 0], [1, 1]]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, n, 3, generator=g, dtype=F64) for n in (3, 2, 2))
    o, lse = attention.attention(q, k, v, causal=True, block_q=1, block_k=1)
    assert torch.all(o[0, 0, 0] == 0) and (lse is None or lse[0, 0, 0] == -math.inf)
    assert torch.allclose(o[0, 0, 1], v[0, 0, 0], rtol=0, atol=1e-15)


@claim("FA-03")
def test_lazy_rescaling_moves_the_max_only_past_tau(attention):
    """One query, keys in blocks of 2 with block maxima 0, 2, 5, 9, 20, 0 nats (tau = 8 is in
    base 2, about 5.5 nats): the running max is set by the first block and moved only at the
    blocks of 9 and 20 (each more than tau above it), three rescales where rescaling at every
    block makes six; O and L still equal naive attention (float64 budget). An adapter whose
    rescaling cannot be observed (rescales None) is not asked."""
    if attention.rescales is None:
        pytest.skip("the adapter does not expose its rescaling")
    scores = torch.tensor([0.0, 0, 1, 2, 3, 5, 9, 9, 20, 20, 0, 0], dtype=F64)
    p = dict(q=torch.ones(1, 1, 1, 1, dtype=F64), k=scores.reshape(1, 1, -1, 1),
             v=torch.randn(1, 1, 12, 3, generator=torch.Generator().manual_seed(0), dtype=F64),
             causal=False, key_padding_mask=None, block_q=1, block_k=2)  # fmt: skip
    o, lse, rescales = attention.rescales(**p)
    compare(o, lse, *naive(p), forward_budget(p), "lazy")
    assert rescales == 3, f"{rescales} rescales"


# varlen: packed sequences attend only within themselves
@st.composite
def packed(draw):
    n = draw(st.integers(1, 5))
    len_q = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    len_k = [draw(st.integers(1, 12)) if lq else draw(st.integers(0, 12)) for lq in len_q]
    H, d = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    g = draw(seeds).torch()
    cu_q = torch.tensor([0, *torch.tensor(len_q).cumsum(0).tolist()], dtype=torch.int32)
    cu_k = torch.tensor([0, *torch.tensor(len_k).cumsum(0).tolist()], dtype=torch.int32)
    q = torch.randn(int(cu_q[-1]), H, d, generator=g, dtype=F64)
    k = torch.randn(int(cu_k[-1]), H, d, generator=g, dtype=F64)
    v = torch.randn(int(cu_k[-1]), H, d, generator=g, dtype=F64)
    return q, k, v, cu_q, cu_k, draw(st.booleans()), draw(st.integers(1, 16))


@claim("FA-03")
@given(case=packed().filter(lambda c: c[1].shape[0] > 0))
def test_varlen_equals_naive_with_a_block_diagonal_mask(attention, case):
    q, k, v, cu_q, cu_k, causal, block = case
    o, lse = attention.varlen_attention(q, k, v, cu_q, cu_k, causal, None, block, block)
    mask = reference.block_diagonal_mask(cu_q, cu_k, causal)
    o_ref, lse_ref = reference.attention(*(t.transpose(0, 1)[None] for t in (q, k, v)), mask)
    budget = forward_budget(dict(q=q.transpose(0, 1), k=k.transpose(0, 1), v=v))
    compare(o, lse, o_ref[0].transpose(0, 1), lse_ref[0], budget, "varlen")


def grads(attention, p, do):
    q, k, v = (p[t].detach().requires_grad_() for t in "qkv")
    o, _ = attention.attention(**{**p, "q": q, "k": k, "v": v})
    return torch.autograd.grad(o, (q, k, v), do, allow_unused=True)


def gradient_magnitudes(p, do):
    """Bounds on the terms that make up dQ, dK, dV. With sum_j P_ij = 1 and |dP_ij| <= d_v G V
    (G = max|dO|, V = max|v|): |dV_j| <= N_q G, |dQ_i| <= 2 scale d_v G V max|k|,
    |dK_j| <= 2 scale N_q d_v G V max|q|."""
    q, k, v = p["q"], p["k"], p["v"]
    n_q, d_v = q.shape[2], v.shape[-1]
    G, V, scale = float(do.abs().max()), float(v.abs().max()), 1 / math.sqrt(q.shape[-1])
    return (2 * scale * d_v * G * V * float(k.abs().max()),
            2 * scale * n_q * d_v * G * V * float(q.abs().max()), n_q * G)  # fmt: skip


def backward_budget(p, do):
    """Budgets (ulps) of dQ, dK, dV: each is a sum of products of recomputed P (relative error
    2 d S + N_k + 4, as in the forward) and terms of at most d_v + N_q + N_k roundings; both
    sides err: 2 (2 d S + d_v + N_q + 2 N_k + 8) times the magnitude."""
    q, k, v = p["q"], p["k"], p["v"]
    n_q, n_k, d, d_v = q.shape[2], k.shape[2], q.shape[-1], v.shape[-1]
    rel = 2 * (2 * d * logit_bound(q, k) + d_v + n_q + 2 * n_k + 8)
    return [rel * m for m in gradient_magnitudes(p, do)]


def check_backward(attention, p, do):
    ref = grads(REFERENCE, {**p, **{t: p[t].double() for t in "qkv"}}, do.double())
    for name, g, g_ref, ulps in zip(
        "qkv", grads(attention, p, do), ref, backward_budget(p, do), strict=True
    ):
        assert_close(g, g_ref, ulps=ulps, what=f"d{name} - autograd of naive")


class REFERENCE:
    """Naive attention as an adapter: autograd through it is the reference gradient."""

    @staticmethod
    def attention(q, k, v, causal, key_padding_mask, block_q, block_k):
        return naive(dict(q=q, k=k, v=v, causal=causal, key_padding_mask=key_padding_mask))


@claim("FA-04")
@given(p=problems(), seed=seeds)
def test_recomputing_backward_equals_autograd_of_naive(attention, p, seed):
    do = torch.randn(*p["q"].shape[:3], p["v"].shape[-1], generator=seed.torch(), dtype=F64)
    check_backward(attention, p, do)
    current().summary = (
        "dQ, dK, dV from (Q, K, V, O, L) block by block = autograd of naive attention (float64), "
        "including masked keys and rows that see nothing (zero gradients)"
    )


@claim("FA-05")
@given(p=problems(dtype=torch.float32, max_logit=1e4))
def test_huge_logits_stay_finite_and_correct_in_float32(attention, p):
    """Logits up to about 1e4 (exp overflows float32 past 88.7): the tiled result is finite and
    within the float32 budget of the float64 result; softmax without max subtraction overflows."""
    o, _ = check_forward(attention, p)
    assert torch.isfinite(o).all()
    current().summary = (
        "float32 logits up to ~1e4: finite and within the derived budget, where softmax without "
        "max subtraction overflows; fp16/bf16: error <= 2x naive in the same dtype (3x for dQ, "
        "dK, dV)"
    )
    current().worst("largest |logit|", logit_bound(p["q"], p["k"]))


@claim("FA-05")
def test_negative_control_naive_without_max_subtraction_overflows(attention):
    p = find(problems(dtype=torch.float32, max_logit=1e4, padding=False),
             lambda p: not torch.isfinite(naive(p, subtract_max=False)[0]).all(),
             settings=settings(database=None, derandomize=True))  # fmt: skip
    o, _ = attention.attention(p["q"], p["k"], p["v"], p["causal"])
    assert torch.isfinite(o).all()
    current().record(no_max_subtraction_overflows_on=describe(p))


@claim("FA-05")
@given(p=problems(dtype=torch.float16) | problems(dtype=torch.bfloat16), seed=seeds)
def test_low_precision_error_at_most_twice_naive_in_the_same_dtype(attention, p, seed):
    """The FlashAttention test rule: |O - O_64| <= 2 |O_naive,dtype - O_64| (max over entries),
    and 3x for each of dQ, dK, dV; plus one rounding in the dtype of the terms each result is made
    of (u max|v| for O, u times the gradient_magnitudes), so that a naive result that happens to
    be exact, as when N_k = 1 makes dQ = 0, does not demand the impossible."""
    dtype = p["q"].dtype
    u = torch.finfo(dtype).eps / 2
    p64 = {**p, **{t: p[t].double() for t in "qkv"}}
    o64 = naive(p64)[0]
    o, _ = attention.attention(**p)
    o_naive = naive(p)[0]
    err, err_naive = (o.double() - o64).abs().max(), (o_naive.double() - o64).abs().max()
    floor = u * float(p64["v"].abs().max())
    current().worst(
        f"{dtype} O error / (2 naive error + floor)", float(err / (2 * err_naive + floor))
    )
    assert err <= 2 * err_naive + floor, (
        f"O error {err:.3e} > 2 x naive {err_naive:.3e} + {floor:.1e}"
    )
    do = torch.randn(*o.shape, generator=seed.torch(), dtype=F64).to(dtype)
    ref, mine, low = (
        grads(REFERENCE, p64, do.double()),
        grads(attention, p, do),
        grads(REFERENCE, p, do),
    )
    magnitudes = gradient_magnitudes(p64, do.double())
    for name, g64, g, g_low, size in zip("qkv", ref, mine, low, magnitudes, strict=True):
        err, err_naive = (g.double() - g64).abs().max(), (g_low.double() - g64).abs().max()
        floor = u * size
        assert err <= 3 * err_naive + floor, (
            f"d{name} error {err:.3e} > 3 x naive {err_naive:.3e} + {floor:.1e}"
        )


def test_bad_input_names_the_argument():
    x = torch.zeros(1, 2, 4, 8)
    packed = torch.zeros(6, 2, 8)
    cu = torch.tensor([0, 2, 6], dtype=torch.int32)
    for call, argument in [
        (lambda: tiled.attention(x, torch.zeros(1, 2, 4, 5), x), "k"),
        (lambda: tiled.attention(x, x[:, :, :0], x[:, :, :0]), "k"),
        (lambda: tiled.attention(x, x, x[:, :, :3]), "v"),
        (lambda: tiled.attention(x[0], x, x), "q"),
        (lambda: tiled.attention(x, x, x, block_q=0), "block_q"),
        (lambda: tiled.attention(x, x, x, block_k=-4), "block_k"),
        (lambda: tiled.attention(x, x, x, key_padding_mask=torch.ones(1, 3, dtype=torch.bool)),
         "key_padding_mask"),
        (lambda: tiled.attention(x, x, x, key_padding_mask=torch.ones(1, 4)), "key_padding_mask"),
        (lambda: tiled.varlen_attention(packed, packed, packed, cu + 1, cu), "cu_seqlens_q"),
        (lambda: tiled.varlen_attention(packed, packed, packed, cu, cu.flip(0)), "cu_seqlens_k"),
        (lambda: tiled.varlen_attention(packed, packed, packed, cu, cu[:2]), "cu_seqlens_k"),
        (lambda: tiled.varlen_attention(packed, packed, packed, cu.float(), cu), "cu_seqlens_q"),
        (lambda: tiled.varlen_attention(packed, packed, packed, torch.tensor([0, 6]), cu),
         "cu_seqlens_k"),
        (lambda: tiled.varlen_attention(x, x, x, cu, cu), "q"),
        (lambda: tiled.varlen_attention(packed, packed, packed, cu[None], cu), "cu_seqlens_q"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{argument}:"):
            call()
    with pytest.raises(TypeError, match="mixed dtypes"):
        tiled.attention(x, x.double(), x)
    with pytest.raises(TypeError, match="floating"):
        tiled.attention(x.long(), x.long(), x.long())


@pytest.mark.parametrize("causal", [None, True])
def test_varlen_is_per_sequence_attention_with_its_options(causal):
    """varlen_attention on packed sequences (one empty, lengths q != k) is reference attention
    per sequence with the same causal flag (default: not causal), scale and any block sizes;
    L is (H, total_q) in packing order. An empty batch gives empty O and L of the right shapes.
    The block diagonal mask of the reference (default not causal) is the same computation."""
    g = torch.Generator().manual_seed(4)
    H, d, dv = 2, 3, 5
    cu_q, cu_k = torch.tensor([0, 3, 3, 7]), torch.tensor([0, 4, 6, 11])
    q, k, v = (
        torch.randn(n, H, e, generator=g, dtype=torch.float64)
        for n, e in ((7, d), (11, d), (11, dv))
    )
    kwargs = {} if causal is None else {"causal": causal}
    o, lse = tiled.varlen_attention(q, k, v, cu_q, cu_k, scale=0.3, block_q=2, block_k=3, **kwargs)
    mask = reference.block_diagonal_mask(cu_q, cu_k, **kwargs)
    ro, rl = reference.attention(*(t.transpose(0, 1)[None] for t in (q, k, v)), mask, 0.3)
    assert o.shape == (7, H, dv) and lse.shape == (H, 7)
    assert_close(o, ro[0].transpose(0, 1), ulps=64, scale=1.0, what="varlen O")
    assert_close(lse, rl[0], ulps=64, scale=rl[0].abs() + 1, what="varlen L")
    for s in range(3):
        (a, b), (c, e) = cu_q[s : s + 2].tolist(), cu_k[s : s + 2].tolist()
        expect = (
            reference.causal_mask(b - a, e - c)
            if causal
            else torch.ones(b - a, e - c, dtype=torch.bool)
        )
        assert torch.equal(mask[a:b, c:e], expect)
    empty = torch.zeros(0, H, d, dtype=torch.float64)
    o0, l0 = tiled.varlen_attention(empty, k, v, torch.tensor([0, 0]), torch.tensor([0, 11]))
    assert o0.shape == (0, H, dv) and l0.shape == (H, 0)
    for bad in ([0, 5, 3, 11], [[0, 4, 6, 11]], [0.0, 4.0, 6.0, 11.0], [0]):
        with pytest.raises(ValueError, match="^cu_seqlens_k: "):
            tiled.varlen_attention(q, k, v, cu_q, torch.tensor(bad))


@claim("FA-07")
@given(n_q=st.integers(1, 40), n_k=st.integers(1, 40), block_q=st.integers(1, 16),
       block_k=st.integers(1, 16))  # fmt: skip
def test_causal_pass_visits_only_the_blocks_it_must_and_masks_only_the_diagonal(
    attention, n_q, n_k, block_q, block_k
):
    """Causal (bottom-right, row i sees keys j <= i + n_k - n_q): for each block of query rows the
    pass visits exactly the key blocks holding a key some row sees, and builds a mask exactly for
    those holding a key some row does not see. Extra blocks would not change O (they are masked)
    but would cost the skipped work (about half of the score blocks for n_q = n_k)."""
    shift = n_k - n_q
    for i0 in range(0, n_q, block_q):
        i1 = min(i0 + block_q, n_q)
        got = [(j0, j1, m is not None)
               for j0, j1, m in attention.key_blocks(i0, i1, n_q, n_k, block_k, True, None)]  # fmt: skip
        want = []
        for j0 in range(0, n_k, block_k):
            j1 = min(j0 + block_k, n_k)
            seen = [j <= i + shift for i in range(i0, i1) for j in range(j0, j1)]
            if any(seen):
                want.append((j0, j1, not all(seen)))
        assert got == want, (i0, i1)


def test_fully_masked_rows_and_the_unsubtracted_softmax():
    """A query row that sees no key has O = 0 and L = log 0 = -inf in the reference and in the
    tiled pass; with moderate logits, skipping the max subtraction changes nothing but rounding."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, n, 4, generator=g, dtype=F64) for n in (3, 5, 5))
    keep = torch.tensor([[False] * 5])
    for o, lse in (reference.attention(q, k, v, reference.padding_mask(keep)),
                   tiled.attention(q, k, v, key_padding_mask=keep)):  # fmt: skip
        assert torch.equal(o, torch.zeros_like(o)) and torch.equal(
            lse, torch.full_like(lse, -torch.inf)
        )
    o1, lse1 = reference.attention(q, k, v)
    o2, lse2 = reference.attention(q, k, v, subtract_max=False)
    assert torch.allclose(o1, o2, rtol=1e-14) and torch.allclose(lse1, lse2, rtol=1e-14)
    o3, _ = tiled.attention(q, k, v)  # not causal by default
    assert torch.allclose(o3, o1, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_results_come_back_in_the_inputs_dtype(dtype):
    """O through autograd, and (dQ, dK, dV) of the public backward(), are in the inputs' dtype
    (the accumulation is float32 inside); L stays float32."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, n, 8, generator=g).to(dtype) for n in (5, 7, 7))
    o, lse = tiled.attention(q, k, v)
    assert o.dtype == dtype and lse.dtype == torch.float32
    o32, lse32 = tiled.forward(q, k, v, False, None, 8**-0.5, 4, 4)
    grads = tiled.backward(q, k, v, o32, lse32, torch.ones_like(o), False, None, 8**-0.5, 4, 4)
    assert [t.dtype for t in grads] == [dtype] * 3


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_input_is_refused_not_read_as_a_masked_row(bad):
    """Issue 16: with an inf in q, tiled attention returned O = 0, L = -inf for that row (a row
    that reads as masked; naive attention gives NaN), and with scale = nan every row did. Now
    each is a ValueError naming the argument, in the tiled pass and in the reference."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, n, 4, generator=g, dtype=F64) for n in (3, 5, 5))
    for name in "qkv":
        args = dict(q=q.clone(), k=k.clone(), v=v.clone())
        args[name][0, 1, 2, 3] = bad
        for attention in (tiled.attention, reference.attention):
            with pytest.raises(ValueError, match=f"^{name}: "):
                attention(**args)
        with pytest.raises(ValueError, match=f"^{name}: "):
            tiled.varlen_attention(*(args[t][0].transpose(0, 1) for t in "qkv"),
                                   torch.tensor([0, 3]), torch.tensor([0, 5]))  # fmt: skip
    for attention in (tiled.attention, reference.attention):
        with pytest.raises(ValueError, match="^scale: "):
            attention(q, k, v, scale=bad)
    with pytest.raises(ValueError, match="^scale: "):
        tiled.forward(q, k, v, False, None, bad, 2, 2)


def test_errors_name_the_argument_the_caller_used():
    """Issue 16: an error about a mask names the argument as the caller spelled it: `mask` in
    reference.attention, `key_padding_mask` in tiled.attention and reference.padding_mask."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, n, 4, generator=g, dtype=F64) for n in (3, 5, 5))
    keep = torch.ones(1, 5, dtype=torch.bool)
    for call, argument, error in [
        (lambda: reference.attention(q, k, v, mask=keep.float()), "mask", TypeError),
        (lambda: reference.attention(q, k, v, mask=torch.ones(3, 4, dtype=torch.bool)), "mask",
         ValueError),
        (lambda: reference.attention(q, k, v, mask=keep[None, None, None]), "mask", ValueError),
        (lambda: reference.attention(q, k, v, mask="causal"), "mask", TypeError),
        (lambda: tiled.attention(q, k, v, key_padding_mask=keep[:, :4]), "key_padding_mask",
         ValueError),
        (lambda: tiled.attention(q, k, v, key_padding_mask=[[True] * 5]), "key_padding_mask",
         TypeError),
        (lambda: reference.padding_mask(keep.float()), "key_padding_mask", TypeError),
        (lambda: reference.padding_mask(keep[0]), "key_padding_mask", ValueError),
        (lambda: tiled.attention(q, k.float(), v), "k", TypeError),
        (lambda: tiled.attention(q, k, v, causal="yes"), "causal", TypeError),
        (lambda: reference.attention(q, k, v, subtract_max=None), "subtract_max", TypeError),
        (lambda: reference.block_diagonal_mask([0, 2], [0, 3, 4]), "cu_seqlens_k", ValueError),
        (lambda: reference.causal_mask(3, -1), "n_k", ValueError),
    ]:  # fmt: skip
        with pytest.raises(error, match=f"^{argument}: "):
            call()
