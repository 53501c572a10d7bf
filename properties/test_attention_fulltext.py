"""FA-08 .. FA-13, the claims of the note's full text (Z. Ye, "From Online Softmax to
FlashAttention", and the FlashAttention explainer it is read with): the float16 range
(impl/attention/precision.py), pass counts (passes.py), the normalised-accumulator recurrence and
its surrogate sequences (recurrence.py), tiled matrix multiplication (tiled_matmul.py) and the
on-chip footprint of the tiled forward (io_model.sram_footprint). Each is called through the
`attention` family; the float16 arithmetic (precision.py), naive attention, the untiled product
and the block search are tools (properties/adapters/attention.py TOOLS)."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.attention import io_model, precision, reference, tiled_matmul
from properties.catalogue import claim
from properties.evidence import ClaimNotRefuted, current, figure, refute
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64, F16 = torch.float64, torch.float16
LOGITS = st.lists(floats(-30, 30), min_size=1, max_size=40)


# --- FA-08: float16 range --------------------------------------------------------------------


@claim(refutes="FA-08.max-finite")
def test_largest_finite_float16_is_65504_not_65536():
    """The largest finite float16, read off its bit patterns, is (2 - 2^-10) 2^15 = 65504; the
    article's 65536 = 2^16 is not a float16 at all (it rounds to inf)."""
    x_max = precision.largest_finite(F16)
    if x_max == 65536:
        raise ClaimNotRefuted("FA-08.max-finite: the largest finite float16 came out as 65536")
    assert x_max == (2 - 2**-10) * 2**15
    assert math.isinf(float(torch.tensor(65536.0).to(F16)))
    above = torch.nextafter(torch.tensor(x_max, dtype=F16), torch.tensor(math.inf, dtype=F16))
    assert math.isinf(float(above))
    current().counterexample = f"largest finite float16 = {x_max:g}; 65536 rounds to inf"
    current().discrepancy(what="largest finite float16", article=65536, computed=x_max,
                          case="float16 (1 sign, 5 exponent, 10 fraction bits)")  # fmt: skip
    current().summary = f"largest finite float16 {x_max:g} = (2 - 2^-10) 2^15; 65536 = 2^16 is inf"
    current().record(largest_finite_float16=x_max,
                     largest_finite_bfloat16=precision.largest_finite(torch.bfloat16))  # fmt: skip


@claim(refutes="FA-08.threshold")
def test_exp_of_float16_just_above_11_is_finite():
    """Every float16 x > 11 (all of them: the check is exhaustive) through e^x in float16, and in
    float32 then rounded: those with a finite e^x are counterexamples; the smallest is reported.
    The threshold x* (smallest float16 with e^x = inf) must be the first float16 above
    ln 65520 = 11.0901, the point past which round-to-nearest sends e^x to inf."""
    values = precision._positive_values(F16)
    values = values[torch.isfinite(values) & (values > 11)]
    finite = {
        str(via): values[torch.isfinite(precision.exp_in(values, F16, via))]
        for via in (None, torch.float32)
    }
    if all(len(v) == 0 for v in finite.values()):
        raise ClaimNotRefuted("FA-08.threshold: e^x is inf in float16 for every float16 x > 11")
    smallest = min(float(v.min()) for v in finite.values() if len(v))
    e = float(precision.exp_in(torch.tensor([smallest]), F16))
    current().counterexample = f"x = {smallest!r} (the smallest float16 above 11): e^x = {e:g}"
    thresholds = {str(via): precision.overflow_threshold(F16, via) for via in precision.VIA}
    ln = math.log(65520)
    for via, t in thresholds.items():
        below = float(torch.nextafter(torch.tensor(t, dtype=F16), torch.tensor(0.0, dtype=F16)))
        assert below < ln < t, f"via {via}: threshold {t} is not the first float16 above {ln}"
    current().record(**{f"exp overflow threshold in float16, via {v}": t
                        for v, t in thresholds.items()},
                     finite_exp_above_11=[float(x) for x in finite["None"]],
                     bfloat16_threshold=precision.overflow_threshold(torch.bfloat16))  # fmt: skip
    current().discrepancy(what="smallest float16 x with e^x = inf in float16", article="x > 11",
                          computed=f"{thresholds['None']!r} (the first float16 above ln 65520)",
                          case=f"x = {smallest!r}: e^x = {e:g} (finite)")  # fmt: skip
    current().summary = (
        f"largest finite float16 65504 (not 65536); e^x overflows float16 from x = "
        f"{thresholds['None']} (first float16 above ln 65520 = {ln:.4f}), not from 11: "
        f"{len(finite['None'])} float16 values in (11, {thresholds['None']}) have finite e^x"
    )


@claim("FA-05")
@given(top=floats(0, 30), others=st.lists(floats(-20, 11), min_size=1, max_size=20),
       seed=seeds)  # fmt: skip
def test_float16_logits_past_the_measured_overflow_threshold(attention, top, others, seed):
    """FA-05 in float16 at the measured threshold x* (FA-08), not at the article's 11: one query,
    logits x* + top and others, all float16 (d = 1, scale 1, q = 1, k = the logits). Softmax
    without max subtraction in float16 overflows (its largest e^x is inf); the tiled result is
    finite and no further from the float64 result than 2x the naive float16 result (with max
    subtraction) plus one float16 rounding of max|v|."""
    threshold = precision.overflow_threshold(F16)
    logits = torch.tensor([threshold + top, *others], dtype=F64).to(F16)
    assert torch.isinf(precision.exp_in(logits.max()[None], F16)).all()
    n = len(logits)
    q, k = torch.ones(1, 1, 1, 1, dtype=F16), logits.reshape(1, 1, n, 1)
    v = torch.randn(1, 1, n, 3, generator=seed.torch(), dtype=F64).to(F16)
    plain, _ = reference.attention(q, k, v, scale=1.0, subtract_max=False)
    assert not torch.isfinite(plain).all(), "softmax without max subtraction did not overflow"
    o, _ = attention.attention(q, k, v)  # scale 1 / sqrt(d) = 1
    o64, _ = reference.attention(q.double(), k.double(), v.double(), scale=1.0)
    o_naive, _ = reference.attention(q, k, v, scale=1.0)
    err, err_naive = (o.double() - o64).abs().max(), (o_naive.double() - o64).abs().max()
    floor = 2.0**-11 * float(v.abs().max())
    assert torch.isfinite(o).all() and err <= 2 * err_naive + floor, (err, err_naive)
    current().record(float16_threshold_used=threshold)


# --- FA-09: passes ---------------------------------------------------------------------------


def softmax_budget(x):
    """Relative error of a softmax entry in float64, both sides: the subtraction x - m (|x - m| u,
    <= 60 u here), exp (1 u), the N-term sum and the division: 2 (N + R + 3) u, R = max - min."""
    return 2 * (len(x) + float(max(x) - min(x)) + 3)


@claim("FA-09")
@given(x=LOGITS)
def test_softmax_passes_read_each_logit_three_then_two_times(attention, x):
    """Instrumented: safe softmax reads every logit 3 times, online softmax 2 times, and neither
    writes an output before it has read all N logits; both equal softmax (float64 budget)."""
    x = torch.tensor(x, dtype=F64)
    N, ref = len(x), torch.softmax(x, 0)
    for f, passes_ in ((attention.counted_safe_softmax, 3), (attention.counted_online_softmax, 2)):
        y, reads = f(x)
        assert reads["x"] == [passes_] * N, f"{f.__name__}: reads {reads['x']}"
        assert reads["first_write"] >= N, f"{f.__name__}: wrote after {reads['first_write']}"
        assert_close(y, ref, ulps=softmax_budget(x), scale=ref, what=f"{f.__name__} - softmax")
    current().summary = "reads per logit: safe softmax 3, online 2; attention: K 3/2/1, V 1/1/1"


@claim("FA-09")
@given(N=st.integers(1, 24), d=st.integers(1, 6), d_v=st.integers(1, 4), seed=seeds,
       a=floats(0.1, 3))  # fmt: skip
def test_attention_reads_K_three_two_one_times_and_V_once(attention, N, d, d_v, seed, a):
    """Logits recomputed from K in every pass (they do not fit in fast memory): 3-pass attention
    reads each row of K 3 times, 2-pass 2 times, the one-pass recurrence once; each reads each row
    of V once; all equal naive attention (float64: softmax budget plus the d-term logits)."""
    g = seed.torch()
    q, K = a * torch.randn(d, generator=g, dtype=F64), a * torch.randn(N, d, generator=g, dtype=F64)
    V = torch.randn(N, d_v, generator=g, dtype=F64)
    scale = d**-0.5
    x = scale * (K @ q)
    ref = torch.softmax(x, 0) @ V
    S = scale * float(q.abs() @ K.abs().T.max(1).values) if N else 0.0
    ulps = softmax_budget(x) + 4 * d * S + 2 * (N + 1)
    for f, k_reads in ((attention.three_pass_attention, 3), (attention.two_pass_attention, 2),
                       (attention.one_pass_attention, 1)):  # fmt: skip
        o, reads = f(q, K, V, scale)
        assert reads["K"] == [k_reads] * N and reads["V"] == [1] * N, f"{f.__name__}: {reads}"
        assert_close(o, ref, ulps=ulps, scale=float(V.abs().max()), what=f"{f.__name__} - naive")


@claim("FA-09")
@given(x=st.lists(floats(-30, 30), min_size=2, max_size=40))
def test_no_one_pass_softmax_the_first_output_depends_on_the_last_input(attention, x):
    """y_1 = e^{x_1} / sum_j e^{x_j} depends on x_N: with x_N raised to max(x) + 1 the sum grows
    by at least (e - 1) e^{max}, so y_1 shrinks by a factor <= N / (N + e - 1) (exact), far beyond
    rounding; a softmax that wrote y_1 before reading x_N would be wrong on one of the two."""
    x = torch.tensor(x, dtype=F64)
    x2 = x.clone()
    x2[-1] = x.max() + 1
    y1, y2 = attention.counted_online_softmax(x)[0][0], attention.counted_online_softmax(x2)[0][0]
    N = len(x)
    shrink = N / (N + math.e - 1)
    assert y2 <= y1 * shrink * (1 + 4 * softmax_budget(x) * 2.0**-53), (float(y1), float(y2))


# --- FA-10: the normalised-accumulator recurrence --------------------------------------------


def divisors(n):
    return [b for b in range(1, n + 1) if n % b == 0]


def recurrence_budget(x):
    """Ulps (of max|V|) between a recurrence's O and softmax(x) V in float64. Per tile, d' takes
    b + 3 roundings and every exponent |x - m| u + 1 u <= (R + 1) u (R = max - min of the logits),
    so d'_{N/b} has relative error <= N (2R + 6) u; o' is rescaled by a factor of relative error
    <= 2 N (2R + 6) u + (R + 4) u per tile and adds b weights of that error: |O - O_exact| <=
    4 N (2R + 6) u max|V|. Naive softmax V: (N + R + 4) u. Doubled: two computed sides."""
    N, R = x.shape[-1], float(x.max() - x.min())
    return 2 * (4 * N * (2 * R + 6) + N + R + 4)


@claim("FA-10")
@given(rows=st.integers(1, 3), N=st.sampled_from([1, 2, 6, 12, 24, 36, 48]) | st.integers(1, 48),
       d_v=st.integers(1, 5), seed=seeds, a=floats(0.1, 10))  # fmt: skip
def test_normalised_recurrence_equals_naive_and_unnormalised_for_every_b(
    attention, rows, N, d_v, seed, a
):
    """For every block size b dividing N: the note's normalised recurrence (6), the unnormalised
    accumulator (7) and naive softmax(x) V agree in float64 within recurrence_budget."""
    g = seed.torch()
    x = a * torch.randn(rows, N, generator=g, dtype=F64)
    V = torch.randn(N, d_v, generator=g, dtype=F64)
    ref, scale, ulps = torch.softmax(x, -1) @ V, float(V.abs().max()), recurrence_budget(x)
    for b in divisors(N):
        o_n = attention.normalised_recurrence(x, V, b)
        o_u = attention.unnormalised_recurrence(x, V, b)
        assert_close(o_n, ref, ulps=ulps, scale=scale, what="normalised - naive")
        assert_close(o_u, ref, ulps=ulps, scale=scale, what="unnormalised - naive")
        assert_close(o_n, o_u, ulps=ulps, scale=scale, what="normalised - unnormalised")


def low_precision_errors(attention, N, dtype, blocks, seed=0, rows=8, d_v=16, a=3.0):
    """max |O - O_64| / max|V| of both forms computed in `dtype` (every operation rounded there),
    against float64 on the same (rounded) inputs, and of naive softmax V in dtype (torch's)."""
    g = torch.Generator().manual_seed(seed)
    x = (a * torch.randn(rows, N, generator=g, dtype=F64)).to(dtype)
    V = torch.randn(N, d_v, generator=g, dtype=F64).to(dtype)
    ref = torch.softmax(x.double(), -1) @ V.double()
    vmax = float(V.abs().max())

    def err(o):
        assert torch.isfinite(o).all()
        return float((o.double() - ref).abs().max()) / vmax

    out = {"naive": err(torch.softmax(x, -1) @ V)}
    for b in blocks:
        out[("normalised", b)] = err(attention.normalised_recurrence(x, V, b))
        out[("unnormalised", b)] = err(attention.unnormalised_recurrence(x, V, b))
    ulps = recurrence_budget(x.double())
    x64, V64 = x.double(), V.double()  # the same problem in float64 stays within the budget
    for b in blocks:
        assert_close(attention.normalised_recurrence(x64, V64, b), ref, ulps=ulps, scale=vmax,
                     what="normalised - naive (float64)")  # fmt: skip
    return out


@claim("FA-10")
def test_errors_of_both_forms_in_float16_and_bfloat16(attention):
    """Evidence: both forms computed in float16 and bfloat16 (N = 64, 256; b = 1, 8, 64), errors
    against float64 on the same rounded inputs, beside naive softmax V in the same dtype (whose
    sums torch accumulates in float32); the float64 run of the same problems is checked."""
    numbers = {}
    for dtype in (torch.float16, torch.bfloat16):
        for N in (64, 256):
            errors = low_precision_errors(attention, N, dtype, (1, 8, 64))
            for key, e in errors.items():
                name = key if isinstance(key, str) else f"{key[0]} b={key[1]}"
                numbers[f"{str(dtype)[6:]} N={N} {name}"] = e
    current().record(**{k: float(f"{v:.3g}") for k, v in numbers.items()})
    current().summary = (
        "normalised (note) and unnormalised (FlashAttention-2) accumulators = naive within the "
        "float64 budget for every b | N; in float16/bfloat16 both forms err alike, and more for "
        "small b (more rescaling steps, d' summed in the low precision)"
    )

    def draw(fig):
        sizes, blocks = (64, 256, 1024), (1, 4, 16, 64)
        axes = fig.subplots(1, 2)
        for ax, dtype in zip(axes, (torch.float16, torch.bfloat16), strict=True):
            for N, color in zip(sizes, ("C0", "C1", "C2"), strict=True):
                e = low_precision_errors(attention, N, dtype, blocks)
                for form, style in (("normalised", "o-"), ("unnormalised", "s--")):
                    ax.loglog(blocks, [e[(form, b)] for b in blocks], style, color=color,
                              label=f"{form}, N = {N}")  # fmt: skip
                ax.axhline(e["naive"], lw=0.8, ls=":", color=color,
                           label=f"naive softmax V (torch), N = {N}")  # fmt: skip
            ax.set(xlabel="block size b", ylabel="max |O - O_64| / max|V|",
                   title=f"{str(dtype)[6:]}: every operation in {str(dtype)[6:]}")  # fmt: skip
            ax.legend(fontsize=6)

    figure("fa10_low_precision", draw, size=(10, 4))


# --- FA-11: surrogate sequences --------------------------------------------------------------


@claim("FA-11.identities")
@given(x=LOGITS, d_v=st.integers(1, 4), seed=seeds)
def test_surrogates_end_at_the_true_sequences(attention, x, d_v, seed):
    """From the recurrence (1)-(3): d'_i e^{m_i - m_N} = d_i := sum_{j<=i} e^{x_j - m_N} for
    every i (so d'_N = d_N), o'_N = o_N = softmax(x) V, and o'_i = softmax(x_1..x_i) V_1..i.
    Budget: i steps of (R + 4) u each for d'_i, the direct sum (i + R + 2) u, doubled."""
    x = torch.tensor(x, dtype=F64)
    V = torch.randn(len(x), d_v, generator=seed.torch(), dtype=F64)
    m, d_s, o_s = attention.surrogates(x, V)
    N, R = len(x), float(x.max() - x.min())
    m_N = x.max()
    assert torch.equal(m, torch.cummax(x, 0).values)
    d = torch.cumsum(torch.exp(x - m_N), 0)  # d_i of the note
    ulps = 2 * (N * (R + 4) + N + R + 2)
    assert_close(d_s * torch.exp(m - m_N), d, ulps=ulps, scale=d, what="d'_i e^{m_i - m_N} - d_i")
    assert_close(d_s[-1], d[-1], ulps=ulps, scale=d[-1], what="d'_N - d_N")
    o_N = torch.softmax(x, 0) @ V
    vmax = float(V.abs().max())
    assert_close(o_s[-1], o_N, ulps=recurrence_budget(x), scale=vmax, what="o'_N - o_N")
    for i in range(N):
        prefix = torch.softmax(x[: i + 1], 0) @ V[: i + 1]
        assert_close(o_s[i], prefix, ulps=recurrence_budget(x), scale=vmax, what="o'_i - prefix")
    current().summary = "d'_i e^{m_i - m_N} = d_i for every i, d'_N = d_N, o'_N = o_N (float64)"


def unmasked_softmax_v(x, V):
    keep = x > -torch.inf
    return torch.softmax(x[keep], 0) @ V[keep]


@claim(refutes="FA-11.masked-logits")
def test_recurrence_from_minus_inf_on_a_masked_prefix(attention):
    """Logits with -inf entries (masked), at least one finite: does the recurrence as written,
    from m_0 = -inf, d'_0 = 0, return d'_N = sum over unmasked e^{x_j - m_N} and o'_N = softmax of
    the unmasked logits times their V? The minimal failure: a masked first logit, where
    e^{m_0 - m_1} = e^{-inf - (-inf)} = e^nan."""
    masked = st.lists(st.one_of(floats(-5, 5), st.just(-math.inf)), min_size=1, max_size=6)
    masked = masked.filter(lambda x: max(x) > -math.inf)

    def returns_softmax(x):
        x = torch.tensor(x, dtype=F64)
        V = torch.arange(2.0 * len(x), dtype=F64).reshape(len(x), 2)
        _, d_s, o_s = attention.surrogates(x, V)
        keep = x > -torch.inf
        d_true = torch.exp(x[keep] - x.max()).sum()
        ok_d = bool(torch.isfinite(d_s[-1])) and abs(float(d_s[-1] - d_true)) <= 1e-12 * d_true
        ref = unmasked_softmax_v(x, V)
        return ok_d and bool(torch.allclose(o_s[-1], ref, rtol=1e-12, atol=1e-12))

    x = refute(masked, returns_softmax, claim="FA-11.masked-logits")
    t = torch.tensor(x, dtype=F64)
    V = torch.arange(2.0 * len(x), dtype=F64).reshape(len(x), 2)
    m, d_s, o_s = attention.surrogates(t, V)
    guarded = attention.online_stats(t)  # impl/attention/softmax.py: exponents against finite(m)
    # tiled attention with the same keys masked (q = 0: equal scores on the unmasked keys)
    o_tiled, _ = attention.attention(torch.zeros(1, 1, 1, 1, dtype=F64),
                                 torch.zeros(1, 1, len(x), 1, dtype=F64), V[None, None],
                                 key_padding_mask=(t > -torch.inf)[None])  # fmt: skip
    keep = t > -torch.inf
    assert float(guarded[1]) == pytest.approx(float(torch.exp(t[keep] - t.max()).sum()), rel=1e-15)
    assert torch.allclose(o_tiled.flatten(), unmasked_softmax_v(t, V), rtol=1e-15, atol=0)
    current().record(
        minimal_masked_case=x,
        note_recurrence_returns={"m": m.tolist(), "d'": d_s.tolist(), "o'_N": o_s[-1].tolist()},
        softmax_online_stats_returns=[float(guarded[0]), float(guarded[1])],
        tiled_attention_with_the_key_masked=o_tiled.flatten().tolist(),
        unmasked_softmax_V=unmasked_softmax_v(t, V).tolist(),
    )
    current().discrepancy(
        what="the recurrence from m_0 = -inf, d'_0 = 0 on a masked first logit",
        article="starts from m_0 = -inf, d'_0 = 0 (no case for -inf logits)",
        computed=f"d'_1 = {float(d_s[0])}, o'_N = {o_s[-1].tolist()}",
        case=f"x = {x}",
    )
    current().summary = (
        f"the recurrence as written returns nan on x = {x} (e^(-inf - (-inf))); "
        "impl/attention/softmax.py subtracts finite(m) (0 while m = -inf) and tiled.py keeps "
        "m_safe = 0 and divides only where l > 0: both return the softmax of the unmasked logits"
    )


# --- FA-12: tiled matrix multiplication -------------------------------------------------------


@st.composite
def matmul_problems(draw, entries, max_T=4, max_tiles=3):
    T = draw(st.integers(1, max_T))
    M, K, N = (T * draw(st.integers(1, max_tiles)) for _ in range(3))
    A = np.array(draw(st.lists(entries, min_size=M * K, max_size=M * K)), dtype=object)
    B = np.array(draw(st.lists(entries, min_size=K * N, max_size=K * N)), dtype=object)
    return A.reshape(M, K), B.reshape(K, N), T


integers = st.integers(-50, 50)
fractions = st.builds(Fraction, st.integers(-1000, 1000), st.integers(1, 20))


@claim("FA-12.footprint")
@given(p=matmul_problems(integers, max_T=5, max_tiles=4))
def test_tiled_matmul_keeps_3T2_elements_on_chip(attention, p):
    """The model's peak of tile elements on chip is exactly 3 T^2 for every shape (M, K, N
    multiples of T): A_ik, B_kj and C_ij."""
    A, B, T = p
    _, peak = attention.tiled_matmul(A, B, T)
    assert peak == 3 * T * T, f"shape {A.shape} x {B.shape}, T = {T}: peak {peak}"
    current().summary = "peak on-chip tile elements = 3 T^2 for every shape (exact count)"


@claim("FA-12.exact")
@given(p=matmul_problems(st.one_of(integers, fractions)))
def test_tiled_matmul_is_exact_in_rational_arithmetic(attention, p):
    """The sum of tile-wise products equals A B exactly (ints and Fractions)."""
    A, B, T = p
    C, _ = attention.tiled_matmul(A, B, T)
    exact = np.array([[sum((A[i, k] * B[k, j] for k in range(A.shape[1])), Fraction(0))
                       for j in range(B.shape[1])] for i in range(A.shape[0])], dtype=object)  # fmt: skip
    assert (C == exact).all()
    current().summary = "sum of tile-wise products = A B exactly (ints and Fractions)"


def as_float32(p):
    A, B, T = p
    return A.astype(np.float32), B.astype(np.float32), T


@st.composite
def smallest_shape(draw, entries):
    """T = 2, A (2, 4), B (4, 2): the smallest shape on which (2) regroups (3). With T = 1 each
    tile sum is one product, and with K = T there is one tile sum added to 0: (2) is (3) exactly."""
    A = np.array(draw(st.lists(entries, min_size=8, max_size=8)), dtype=np.float32)
    B = np.array(draw(st.lists(entries, min_size=8, max_size=8)), dtype=np.float32)
    return A.reshape(2, 4), B.reshape(4, 2), 2


@claim(refutes="FA-12.float32-bitwise")
def test_tiled_float32_product_differs_from_the_untiled_one_bit_for_bit(attention):
    """The minimal case (smallest shape, then entries shrunk by Hypothesis) on which the float32
    sum of tile-wise products (2) differs bit for bit from the untiled product summing the same
    products in k order (3). Below that shape the two orders are one (checked on random float32
    problems with T = 1 or K = T)."""
    g = np.random.default_rng(1)
    for _ in range(20):
        T, m, n = (int(i) for i in g.integers(1, 4, 3))
        K = T * int(g.integers(1, 4)) if g.random() < 0.5 else T
        T, K = (1, K) if K > T else (T, K)
        A = g.standard_normal((m * T, K)).astype(np.float32)
        B = g.standard_normal((K, n * T)).astype(np.float32)
        assert (attention.tiled_matmul(A, B, T)[0] == tiled_matmul.sequential(A, B)).all()

    def bitwise_equal(p):
        A, B, T = p
        return bool((attention.tiled_matmul(A, B, T)[0] == tiled_matmul.sequential(A, B)).all())

    p = refute(smallest_shape(st.floats(-4, 4, width=32)), bitwise_equal,
               claim="FA-12.float32-bitwise",
               describe=lambda p: f"T = 2, A = {p[0].tolist()}, B = {p[1].tolist()}")  # fmt: skip
    A, B, T = p
    C, S = attention.tiled_matmul(A, B, T)[0], tiled_matmul.sequential(A, B)
    i = np.unravel_index(int(np.argmax(C != S)), C.shape)
    current().discrepancy(
        what="tiled vs untiled float32 product ('valid because addition is associative')",
        article="equal", computed=f"C{tuple(int(j) for j in i)}: tiled {float(C[i])!r}, "
        f"untiled {float(S[i])!r}", case=f"T = 2, A = {A.tolist()}, B = {B.tolist()}",
    )  # fmt: skip
    current().summary = (
        "float32: the sum of tile sums differs from the sequential sum of the same products on "
        "T = 2, (2 x 4)(4 x 2), the smallest shape that regroups it; a kernel adding each product "
        "straight into C (no tile sums) keeps the sequential order and every bit"
    )


@claim(refutes="FA-12.float32-bitwise")
def test_tiled_float32_products_of_random_matrices(attention):
    """How often the two orders differ on random float32 matrices (32 x 256 x 32, T = 16), and
    how the tiled product compares with numpy's A @ B (BLAS's own order)."""
    g = np.random.default_rng(0)
    A, B = (g.standard_normal(s).astype(np.float32) for s in ((32, 256), (256, 32)))
    C, S = attention.tiled_matmul(A, B, 16)[0], tiled_matmul.sequential(A, B)
    if (C == S).all():
        raise ClaimNotRefuted("FA-12.float32-bitwise: tiled = untiled on a 32 x 256 x 32 problem")
    current().record(
        fraction_of_entries_tiled_ne_untiled=float((C != S).mean()),
        fraction_of_entries_tiled_ne_numpy_matmul=float((C != A @ B).mean()),
        largest_difference_over_max_abs_A_B=float(np.abs(C - S).max() / np.abs(A).max()
                                                   / np.abs(B).max()),
    )  # fmt: skip


# --- FA-13: on-chip footprint -----------------------------------------------------------------


@claim("FA-13")
@given(B=st.integers(1, 96), D=st.integers(1, 256),
       L=st.lists(floats(0, 1), min_size=1, max_size=6))  # fmt: skip
def test_footprint_does_not_depend_on_L(attention, B, D, L):
    """The peak on-chip elements of the tiled forward's loop: 4 B D + B^2 + 2 B for every L >= B
    (Q_i, O_i, K_j, V_j of B x D, S_ij of B x B, m_i, l_i), and no more for L < B; L drawn in
    [1, 20 B], and B, 10 B + 1 (a ragged last block)."""
    full = 4 * B * D + B * B + 2 * B
    for length in (*(1 + int(f * 20 * B) for f in L), B, 10 * B + 1):
        peak = attention.sram_footprint(length, B, D)
        if length >= B:
            assert peak == full, f"L = {length}: {peak} != {full}"
        else:
            assert peak == 4 * length * D + length * length + 2 * length


@claim("FA-13")
def test_largest_block_that_fits_228_KB_at_D_128(attention):
    """228 KB per SM (H100), D = 128: the largest B with footprint x bytes <= capacity, for 16-bit
    and 32-bit storage, and for 228 KiB (233,472 bytes) and 228 kB (228,000 bytes)."""
    out = {}
    for capacity, label in ((228 * 1024, "228 KiB"), (228_000, "228 kB")):
        for size, bits in ((2, 16), (4, 32)):
            B = io_model.largest_block(capacity, 128, size)
            assert attention.sram_footprint(B, B, 128) * size <= capacity
            assert attention.sram_footprint(B + 1, B + 1, 128) * size > capacity
            assert B * B + 514 * B <= capacity // size < (B + 1) ** 2 + 514 * (B + 1)
            out[f"largest B, {label}, {bits}-bit"] = B
    current().record(
        **out, footprint_model="4 B D + B^2 + 2 B elements (Q, K, V, O tiles, S, m, l)"
    )
    current().summary = (
        "footprint 4BD + B^2 + 2B, the same for every L >= B; at D = 128 in 228 KiB: B <= "
        f"{out['largest B, 228 KiB, 16-bit']} (16-bit), {out['largest B, 228 KiB, 32-bit']} (32-bit)"
    )
