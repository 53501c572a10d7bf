"""FA-03, FA-05: the Triton FlashAttention forward (impl/attention/triton_kernel.py) against naive
attention (impl/attention/reference.py) in float64, on the same (rounded) inputs.

Without a CUDA GPU the kernel runs in Triton's interpreter (numpy, one program at a time) on small
shapes (N <= 40, d <= 40, B, H <= 2); there the kernel emulates the GPU's bfloat16 arithmetic (see
its forward()). With a GPU the same properties run on it.

float32 budget (u = 2^-24). Per score s = scale q.k, the d-term dot product, the scaling by
scale log2 e and the subtraction of the row max give an absolute error in the exponent of at most
about (d + 4) u sigma, with sigma = max_j scale sum_t |q_t k_jt|. An exponent error e scales P_j
by (1 + e); O = sum_j P_j V_j / sum_j P_j is a weighted mean, so that moves O by at most
2 e |V|_max. The N_k-term sums l = sum P and A = sum P V carry relative errors up to N_k u, so
A / l moves by up to (2 N_k + 2) u |V|_max with exp2 and the division. Together
    |O - O_ref| <= 2 u ((d + 4) sigma + N_k + 4) |V|_max,
    |L - L_ref| <= u ((d + 4) sigma + N_k + 2 + |L_ref|)            (L = ln 2 (m + log2 l)),
and the properties allow 4 u (...) for both: a factor 2 (O) and 4 (L) of slack, none for luck.

float16 / bfloat16 rule (the FlashAttention test suite's): the kernel is no further from the
float64 result than twice the error of naive attention computed in the same low dtype (max over
the output, for O and for L), plus an absolute floor of one unit round-off at the output's scale,
u |V|_max (u = 2^-11 or 2^-8), for the cases where the low-precision naive result is exact by
luck (a single output element, a row with one visible key).
"""

import os
from dataclasses import dataclass

import pytest
import torch

# conftest.py sets TRITON_INTERPRET=1 without a GPU, before anything imports triton
pytest.importorskip("triton", reason="the Triton kernel needs the triton package")
if not torch.cuda.is_available() and os.environ["TRITON_INTERPRET"] != "1":
    pytest.skip("no CUDA GPU and TRITON_INTERPRET is not 1: cannot run", allow_module_level=True)

import numpy as np  # noqa: E402
from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from impl.attention import reference  # noqa: E402
from impl.attention import triton_kernel as kernel  # noqa: E402
from properties import profiles  # noqa: E402
from properties.catalogue import claim  # noqa: E402
from properties.evidence import current  # noqa: E402
from properties.strategies import Seed, seeds  # noqa: E402
from properties.tolerances import assert_close, unit_roundoff  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F64 = torch.float64
# In the interpreter an example takes 0.02-0.3 s: the profile's counts, thorough capped at 300.
EXAMPLES = {"ci": 40, "dev": 100, "thorough": 300, "mutation": 10, "variants": 40}
examples = settings(max_examples=EXAMPLES[profiles.active()]) if DEVICE == "cpu" else settings()


@dataclass(frozen=True)
class Problem:
    B: int
    H: int
    n_q: int
    n_k: int
    d: int
    d_v: int
    causal: bool
    block_m: int
    block_n: int
    logit_scale: float  # multiplies q: large values push the scores far beyond exp's range
    seed: Seed
    scale: float | None = None  # None: 1 / sqrt(d)

    def inputs(self, dtype):
        """(q, k, v) in dtype; the float64 reference uses exactly these rounded values."""
        gen = self.seed.torch()
        q = torch.randn(self.B, self.H, self.n_q, self.d, generator=gen, dtype=F64)
        k = torch.randn(self.B, self.H, self.n_k, self.d, generator=gen, dtype=F64)
        v = torch.randn(self.B, self.H, self.n_k, self.d_v, generator=gen, dtype=F64)
        return (q * self.logit_scale).to(dtype), k.to(dtype), v.to(dtype)

    def mask(self):
        return reference.causal_mask(self.n_q, self.n_k) if self.causal else None

    def standard(self, q, k, v):
        """Naive attention (the reference implementation) on the given tensors."""
        return reference.attention(q, k, v, mask=self.mask(), scale=self.scale)

    def run(self, attention, q, k, v):
        """The kernel's forward through the family (attention.triton_forward)."""
        o, lse = attention.triton_forward(
            q.to(DEVICE), k.to(DEVICE), v.to(DEVICE), self.causal, self.scale,
            block_m=self.block_m, block_n=self.block_n,
        )  # fmt: skip
        return o.cpu(), lse.cpu()


@st.composite
def problems(draw, max_n=40, max_d=40, logit_scales=(1.0, 100.0)):
    d = draw(st.integers(1, max_d))
    return Problem(
        B=draw(st.integers(1, 2)),
        H=draw(st.integers(1, 2)),
        n_q=draw(st.one_of(st.just(1), st.integers(1, max_n))),
        n_k=draw(st.integers(1, max_n)),
        d=d,
        d_v=draw(st.one_of(st.just(d), st.integers(1, max_d))),
        causal=draw(st.booleans()),
        block_m=draw(st.sampled_from([16, 32])),
        block_n=draw(st.sampled_from([16, 32])),
        logit_scale=draw(st.sampled_from(logit_scales)),
        seed=draw(seeds),
        scale=draw(st.sampled_from([None, 0.3])),
    )


def budget_terms(q, k, v, problem):
    """sigma (per row, (B, H, N_q, 1)) and |V|_max (per (batch, head), (B, H, 1, 1))."""
    scale = problem.d**-0.5 if problem.scale is None else problem.scale
    sigma = (scale * (q.abs() @ k.abs().transpose(-2, -1))).amax(-1, keepdim=True)
    v_max = v.abs().amax(dim=(-2, -1), keepdim=True)
    return sigma, v_max


def assert_lse_close(lse, lse_ref, ulps, scale, what):
    """-inf exactly where the reference has it (rows that see no key), close elsewhere."""
    unseen = torch.isinf(lse_ref)
    assert torch.equal(torch.isneginf(lse), unseen), f"{what}: -inf rows differ"
    assert_close(
        torch.where(unseen, 0.0, lse).numpy(),  # float32: u = 2^-24 in the budget
        torch.where(unseen, 0.0, lse_ref).numpy(),
        ulps=ulps,
        scale=scale.numpy(),
        what=what,
    )


@claim("FA-03")
@examples
@given(problem=problems())
@example(Problem(2, 2, 37, 23, 5, 33, True, 16, 32, 1.0, Seed(1)))  # N_q > N_k: unseen rows
@example(Problem(1, 2, 1, 40, 33, 7, True, 32, 16, 1.0, Seed(2)))  # decoding: N_q = 1
@example(Problem(1, 1, 40, 40, 40, 40, True, 16, 16, 1.0, Seed(3)))  # full, diagonal, skipped
@example(Problem(2, 1, 33, 17, 16, 16, False, 32, 16, 100.0, Seed(4)))  # |s| >> 88
def test_triton_forward_equals_naive_attention_float32(attention, problem):
    q, k, v = problem.inputs(torch.float32)
    o, lse = problem.run(attention, q, k, v)
    o_ref, lse_ref = problem.standard(q.to(F64), k.to(F64), v.to(F64))
    assert o.dtype == torch.float32 and lse.dtype == torch.float32
    sigma, v_max = budget_terms(q.to(F64), k.to(F64), v.to(F64), problem)
    terms = (problem.d + 4) * sigma + problem.n_k + 4  # see the module docstring
    assert_close(
        o.numpy(), o_ref.numpy(), ulps=4, scale=(terms * v_max).expand_as(o_ref).numpy(), what="O"
    )
    unseen = torch.isinf(lse_ref)
    assert torch.all(o[unseen] == 0), "a row that sees no key must give O = 0"
    assert_lse_close(lse, lse_ref, 4, terms[..., 0] + lse_ref.abs().nan_to_num(0, 0, 0), "L")
    current().summary = (
        "the Triton forward equals naive attention within the fp32 budget for any shape, block "
        "sizes, N_q != N_k, N_q = 1 and bottom-right causal masks; L is the row logsumexp"
    )


@claim("FA-05")
@examples
@given(
    problem=problems(logit_scales=(1.0, 8.0, 30.0)),
    dtype=st.sampled_from([torch.float16, torch.bfloat16]),
)
@example(Problem(2, 2, 37, 23, 5, 33, True, 16, 32, 1.0, Seed(1)), torch.bfloat16)
@example(Problem(1, 1, 40, 40, 40, 40, True, 16, 16, 8.0, Seed(3)), torch.float16)
def test_low_precision_error_is_at_most_twice_naive_attention_in_that_precision(
    attention, problem, dtype
):
    q, k, v = problem.inputs(dtype)
    o, lse = problem.run(attention, q, k, v)
    assert o.dtype == dtype and lse.dtype == torch.float32
    exact = problem.standard(q.to(F64), k.to(F64), v.to(F64))
    naive = problem.standard(q, k, v)
    u = unit_roundoff(np.float16) if dtype == torch.float16 else 2.0**-8
    floor = u * v.abs().max().item()
    for name, ours, low, ref in (("O", o, naive[0], exact[0]), ("L", lse, naive[1], exact[1])):
        seen = torch.isfinite(ref)
        assert torch.equal(torch.isfinite(ours), seen), f"{name}: -inf rows differ"
        low_error = (low.to(F64) - ref)[seen].abs().max().item() if seen.any() else 0.0
        assert_close(
            torch.where(seen, ours.to(F64), 0.0).numpy(),
            torch.where(seen, ref, 0.0).numpy(),
            ulps=0,
            abs_floor=2 * low_error + floor,
            what=f"{name} ({str(dtype)[6:]})",
        )
        current().worst(f"{name}: naive {str(dtype)[6:]} error", low_error)
    current().summary = (
        "in float16 / bfloat16 the Triton forward is within 2x the error of naive attention "
        "computed in the same precision (vs float64), for O and L"
    )


def _qkv(dtype=torch.float32, n=4, d=8, d_v=8):
    q = torch.randn(1, 2, n, d, dtype=dtype, device=DEVICE)
    k = torch.randn(1, 2, n, d, dtype=dtype, device=DEVICE)
    v = torch.randn(1, 2, n, d_v, dtype=dtype, device=DEVICE)
    return q, k, v


def test_float64_is_rejected_naming_the_dtype():
    with pytest.raises(TypeError, match=r"^q: .*torch\.float64"):
        kernel.forward(*_qkv(F64))


def test_mixed_dtypes_are_rejected():
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="^k: mixed dtypes"):  # names the one that differs
        kernel.forward(q, k.half(), v)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda q, k, v: kernel.forward(q, k[..., :5], v), "k"),  # head dims differ
        (lambda q, k, v: kernel.forward(q, k, v[:, :, :3]), "v"),  # N_k differs
        (lambda q, k, v: kernel.forward(q[0], k, v), "q"),  # not 4-D
        (lambda q, k, v: kernel.forward(q, k, v, block_m=24), "block_m"),
        (lambda q, k, v: kernel.forward(q, k, v, block_n=8), "block_n"),
        (lambda q, k, v: kernel.forward(q, k, v, block_n=True), "block_n"),
        (lambda q, k, v: kernel.forward(*_qkv(d=257, d_v=8)), "q"),
        (lambda q, k, v: kernel.forward(*_qkv(d=8, d_v=300)), "v"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=rf"^{argument}: "):
        call(*_qkv())


@pytest.mark.skipif(DEVICE != "cpu", reason="CPU tensors")
def test_cpu_tensors_without_the_interpreter_are_refused(monkeypatch):
    monkeypatch.setattr(kernel, "INTERPRETED", False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        kernel.forward(*_qkv())


@pytest.mark.skipif(DEVICE != "cpu", reason="CPU tensors")
def test_argument_checks_run_before_the_interpreter_is_needed(monkeypatch):
    """Issue 16: a wrong argument gets its own error even where the kernel could not run (CPU
    tensors without the interpreter), so the checks hold in any environment."""
    monkeypatch.setattr(kernel, "INTERPRETED", False)
    q, k, v = _qkv()
    for kwargs, argument in [
        (dict(q=q.masked_fill(q > 1, float("inf"))), "q"),
        (dict(v=v.masked_fill(v > 1, float("nan"))), "v"),
        (dict(scale=float("nan")), "scale"),
        (dict(causal="yes"), "causal"),
        (dict(block_m=24), "block_m"),
        (dict(block_n=2**40), "block_n"),
    ]:
        with pytest.raises((ValueError, TypeError), match=rf"^{argument}: "):
            kernel.forward(**{"q": q, "k": k, "v": v, **kwargs})


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_inputs_and_scale_are_refused(bad):
    """Issue 16: an inf in q, or scale = nan, would give a row that reads as masked (O = 0,
    L = -inf) where naive attention gives NaN."""
    q, k, v = _qkv()
    q[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="^q: "):
        kernel.forward(q, k, v)
    with pytest.raises(ValueError, match="^scale: "):
        kernel.forward(*_qkv(), scale=bad)


def test_kernel_contract_layouts_padding_defaults_and_dtype():
    """The host side of the kernel: inputs whose last axis is not contiguous are copied (the
    kernel assumes unit stride there), head dims that are not powers of two are padded (d = 24,
    d_v = 20), the default is not causal, the default block_n comes from the configuration,
    and O comes back in q's dtype (float16 in, float16 out)."""
    g = torch.Generator().manual_seed(7)
    q = torch.randn(1, 2, 24, 9, generator=g).transpose(-1, -2)  # (1, 2, 9, 24), stride(-1) != 1
    k = torch.randn(1, 2, 11, 24, generator=g)
    v = torch.randn(1, 2, 11, 20, generator=g)
    assert q.stride(-1) != 1
    o, lse = kernel.forward(q.to(DEVICE), k.to(DEVICE), v.to(DEVICE))
    ro, rl = reference.attention(q.double(), k.double(), v.double())
    # float32 sums of d + n_k = 35 terms of size <= max|v| (~4): (d + n_k) u32 max|v| < 2e-5
    budget = 35 * unit_roundoff(np.float32) * float(v.abs().max())
    assert_close(o.cpu().double(), ro, ulps=0, abs_floor=budget, what="O, non-contiguous q, d = 24")
    assert_close(lse.cpu().double(), rl, ulps=0, abs_floor=budget, what="L")
    half = kernel.forward(*(t.half().to(DEVICE) for t in (q, k, v)))[0]
    assert half.dtype == torch.float16
    # last-axis strides of 18 (with unit stride on the head axis) and 2: copied too
    for odd in (torch.randn(1, 24, 9, 2, generator=g).permute(0, 3, 2, 1),
                torch.randn(1, 2, 9, 48, generator=g)[..., ::2]):  # fmt: skip
        assert odd.shape == (1, 2, 9, 24) and odd.stride(-1) != 1
        o, _ = kernel.forward(odd.to(DEVICE), k.to(DEVICE), v.to(DEVICE))
        ro, _ = reference.attention(odd.double(), k.double(), v.double())
        assert_close(o.cpu().double(), ro, ulps=0, abs_floor=budget, what="O, strided q")
    empty = kernel.forward(*(t.bfloat16().to(DEVICE) for t in (q[:, :, :0], k, v)))[0]
    assert empty.shape == (1, 2, 0, 20) and empty.dtype == torch.bfloat16
    # NaN in the memory after each row of K (the padded lanes d = 24..31) must not reach O
    kbuf = torch.full((1, 2, 11, 32), float("nan"))
    kbuf[..., :24] = k
    o, _ = kernel.forward(q.to(DEVICE), kbuf[..., :24].to(DEVICE), v.to(DEVICE))
    ro, _ = reference.attention(q.double(), k.double(), v.double())
    assert_close(o.cpu().double(), ro, ulps=0, abs_floor=budget, what="O, NaN beyond K's rows")
