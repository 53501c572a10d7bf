"""torch.nn.functional.scaled_dot_product_attention as a peer (FA-03, FA-04): what its CPU backends
do where conventions differ. The full properties run on it with --target attention=sdpa-math or
--target attention=sdpa-flash (properties/adapters/attention.py); these pin the disagreements."""

import signal
import subprocess
import sys
import warnings

import pytest
import torch
from hypothesis import given
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.bias import causal_lower_right
from torch.nn.functional import scaled_dot_product_attention as sdpa

from impl.attention import reference, tiled
from properties.adapters.attention import SdpaFlash, SdpaMath
from properties.catalogue import claim, finding
from properties.evidence import current
from properties.test_attention_tiled import compare, forward_budget, naive, problems

F64 = torch.float64
BACKENDS = [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]


def qkv(n_q, n_k, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, 2, n, d, generator=g, dtype=F64) for n in (n_q, n_k, n_k))


@finding("FA-03")
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_finding_sdpa_is_causal_is_top_left_aligned(backend):
    """is_causal=True masks j > i (top-left): equal to ours when N_q = N_k, different otherwise;
    torch's causal_lower_right bias gives our (bottom-right) alignment."""
    q, k, v = qkv(5, 5)
    with sdpa_kernel(backend):
        same = sdpa(q, k, v, is_causal=True)
    ours = tiled.attention(q, k, v, causal=True)[0]
    assert torch.allclose(same, ours, rtol=0, atol=1e-14)
    q, k, v = qkv(3, 6)
    with sdpa_kernel(backend):
        top_left = sdpa(q, k, v, is_causal=True)
        lower_right = sdpa(q, k, v, attn_mask=causal_lower_right(3, 6))
    top_left_ref = reference.attention(q, k, v, torch.ones(3, 6, dtype=torch.bool).tril())[0]
    ours = tiled.attention(q, k, v, causal=True)[0]
    assert torch.allclose(top_left, top_left_ref, rtol=0, atol=1e-14)
    assert not torch.allclose(top_left, ours, rtol=0, atol=1e-3)
    assert torch.allclose(lower_right, ours, rtol=0, atol=1e-14)
    current().record(
        finding="SDPA is_causal=True is top-left aligned (query i sees keys j <= i); ours and "
        "FlashAttention >= 2.1 are bottom-right (j <= i + N_k - N_q); equal iff N_q = N_k"
    )


@finding("FA-03")
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_finding_sdpa_fully_masked_rows_give_zero_despite_its_warning(backend):
    """A query that sees no key: SDPA returns O = 0 like ours (both backends), while
    causal_lower_right warns that such rows 'will produce NaNs'."""
    q, k, v = qkv(5, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bias = causal_lower_right(5, 3)
    with sdpa_kernel(backend):
        o = sdpa(q, k, v, attn_mask=bias)
    assert torch.all(o[:, :, :2] == 0) and not torch.isnan(o).any()
    assert any("NaN" in str(w.message) for w in caught)
    current().record(
        finding="causal_lower_right warns of NaNs for N_q > N_k, but both CPU backends give 0 "
        "(our convention) for rows that see no key"
    )


@finding("FA-03")
def test_finding_sdpa_flash_reports_logsumexp_zero_for_rows_that_see_nothing():
    """The CPU flash kernel's logsumexp is 0 on a row with no visible key (the empty sum's log is
    -inf, ours). Harmless for its backward (P = exp(-inf - 0) = 0) but not a logsumexp."""
    q, k, v = qkv(3, 2)
    o, lse = SdpaFlash.attention(q, k, v, causal=True)
    assert torch.all(o[:, :, 0] == 0) and torch.all(lse[:, :, 0] == 0)
    assert tiled.attention(q, k, v, causal=True)[1][0, 0, 0] == -torch.inf
    current().record(finding="SDPA CPU flash: L = 0 (not -inf) on rows that see no key")


@finding("FA-03")
def test_finding_sdpa_flash_cpu_requires_equal_head_dims():
    q, k, v = qkv(4, 4)
    with pytest.raises(RuntimeError, match="same head size"):
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v[..., :3])
    current().record(finding="SDPA CPU flash needs d_v = d; the adapter pads V with zeros")


@finding("FA-03")
def test_finding_sdpa_flash_cpu_op_dies_on_an_empty_query():
    """The aten op behind SDPA's CPU flash backend (the one that returns L) kills the process
    with SIGFPE when N_q = 0, where SDPA itself returns the empty O; the sdpa-flash adapter
    returns the empty (O, L) without calling it (packed batches can hold no query at all)."""
    code = (
        "import torch\n"
        "q, k = torch.zeros(1, 1, 0, 4), torch.randn(1, 1, 3, 4)\n"
        "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, k)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert run.returncode == -signal.SIGFPE, (run.returncode, run.stderr[-400:])
    q, k = torch.zeros(1, 1, 0, 4, dtype=F64), torch.randn(1, 1, 3, 4, dtype=F64)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        assert sdpa(q, k, k).shape == (1, 1, 0, 4)
    current().record(
        finding="torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: SIGFPE (the "
        "process dies) on a query of length 0; the public SDPA returns the empty output"
    )


@claim("FA-03")
@given(p=problems())
def test_sdpa_backends_agree_with_naive_where_conventions_match(p):
    """Both CPU backends, with our causal alignment passed as a mask, equal naive attention in
    float64 to the same budget as ours; flash's L is compared on rows that see a key."""
    ref = naive(p)
    for adapter in (SdpaMath, SdpaFlash):
        o, lse = adapter.attention(**p)
        if lse is not None:
            seen = torch.isfinite(ref[1])
            lse = torch.where(seen, lse, -torch.inf)
        compare(o, lse, *ref, forward_budget(p), adapter.__name__)
