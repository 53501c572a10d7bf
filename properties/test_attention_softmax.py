"""FA-01, FA-02: safe softmax, the mergeable (max, sum) statistics and the online normaliser
(impl/attention/softmax.py), through the `attention` family; plain softmax (1) is the definition
they are compared with (a tool)."""

import math

import pytest
import torch
from hypothesis import find, given
from hypothesis import strategies as st

from impl.attention import softmax
from properties.catalogue import claim
from properties.evidence import current
from properties.strategies import floats
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53

# Rows of logits: moderate ones (where plain softmax is exact enough to compare), and rows that
# mix magnitudes up to 1e4 (exp overflows float64 past 709.8) with -inf entries (masked keys).
moderate = st.lists(floats(-30, 30), min_size=1, max_size=40)
wide = st.lists(st.one_of(floats(-1e4, 1e4), st.just(-math.inf)), min_size=1, max_size=40).filter(
    lambda x: max(x) > -math.inf
)


def budget(n):
    """Relative error of a softmax entry or of l: exp (1 u), the subtraction x - m (its absolute
    error |x - m| u <= 2e4 u for |x| <= 1e4 becomes a relative error of exp), the n-term sum (n u)
    and the division (1 u): (n + 2e4 + 2) u, doubled for the two computations compared."""
    return 2 * (n + 20002)


@claim("FA-01")
@given(x=moderate)
def test_safe_softmax_equals_softmax(attention, x):
    x = torch.tensor(x, dtype=F64)
    p = attention.safe_softmax(x)
    ref = softmax.softmax(x)
    assert_close(p, ref, ulps=2 * (len(x) + 62), scale=ref, what="safe softmax - softmax")
    current().summary = "safe softmax = softmax where softmax does not overflow; merges exact"


@claim("FA-01")
@given(x=wide, cuts=st.lists(st.integers(0, 40), max_size=4), order=st.randoms())
def test_statistics_of_any_split_merge_to_those_of_the_whole(attention, x, cuts, order):
    """Split x at arbitrary points (empty parts allowed), merge the parts' (m, l) in a random
    order and bracketing: same m exactly, same l to rounding; and softmax of the whole from them."""
    x = torch.tensor(x, dtype=F64)
    bounds = sorted({0, len(x), *(min(c, len(x)) for c in cuts)})
    parts = [attention.stats(x[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    parts += [attention.stats(x[:0])]  # the empty part, identity of the merge
    while len(parts) > 1:  # random tree of merges: associativity and commutativity together
        i = order.randrange(len(parts) - 1)
        a, b = parts[i], parts.pop(i + 1)
        parts[i] = attention.merge(*((b, a) if order.random() < 0.5 else (a, b)))
    (m, l), (m_ref, l_ref) = parts[0], attention.stats(x)
    assert m == m_ref
    assert_close(l, l_ref, ulps=budget(len(x)), scale=l_ref, what="merged l - l of the whole")
    p = torch.exp(x - m) / l
    assert_close(p, attention.safe_softmax(x), ulps=budget(len(x)), scale=p,
                 what="softmax from merged statistics")  # fmt: skip


@claim("FA-01")
@given(a=wide, b=wide)
def test_merge_is_commutative_exactly(attention, a, b):
    sa, sb = (attention.stats(torch.tensor(x, dtype=F64)) for x in (a, b))
    ab, ba = attention.merge(sa, sb), attention.merge(sb, sa)
    assert ab[0] == ba[0] and ab[1] == ba[1]


@claim("FA-01")
def test_negative_control_softmax_without_max_overflows(attention):
    """Plain softmax (1) overflows where the safe form does not: minimal row found below."""
    x = find(wide, lambda x: not torch.isfinite(softmax.softmax(torch.tensor(x, dtype=F64))).all())
    assert torch.isfinite(attention.safe_softmax(torch.tensor(x, dtype=F64))).all()
    current().record(plain_softmax_overflows_at=x)


@claim("FA-02")
@given(x=wide)
def test_online_recurrence_ends_at_the_statistics(attention, x):
    x = torch.tensor(x, dtype=F64)
    m, d = attention.online_stats(x)
    m_ref, l_ref = attention.stats(x)
    assert m == m_ref
    # each step rescales d once (1 u) and adds one term: n steps of (exp 2 u + mul + add)
    assert_close(d, l_ref, ulps=budget(len(x)) + 8 * len(x), scale=l_ref, what="online d_n - l")
    p = attention.online_softmax(x)
    assert_close(p, attention.safe_softmax(x), ulps=budget(len(x)) + 8 * len(x), scale=p,
                 what="online softmax - safe softmax")  # fmt: skip
    current().summary = "one pass of the recurrence gives (max, normaliser) of the row"


@claim("FA-02")
@given(x=st.lists(st.lists(floats(-50, 50), min_size=3, max_size=3), min_size=1, max_size=20))
def test_online_recurrence_runs_row_wise_on_batches(attention, x):
    x = torch.tensor(x, dtype=F64).T  # 3 rows processed together
    m, d = attention.online_stats(x)
    for row, m_i, d_i in zip(x, m, d, strict=True):
        m1, d1 = attention.online_stats(row)
        assert m1 == m_i and d1 == d_i


@claim("FA-02")
def test_negative_control_recurrence_without_rescaling(attention):
    """Tempting wrong recurrence: d_j = d_{j-1} + e^{x_j - m_j} (the old terms keep their old
    max). It disagrees with l as soon as the max moves."""

    def wrong(x):
        m, d = -math.inf, 0.0
        for xj in x:
            m = max(m, xj)
            d = d + math.exp(xj - m)
        return d

    def agrees(x):
        l_ref = float(attention.stats(torch.tensor(x, dtype=F64))[1])
        return abs(wrong(x) - l_ref) <= budget(len(x)) * U * l_ref

    x = find(moderate, lambda x: not agrees(x))
    current().record(no_rescale_counterexample=x)


def test_statistics_batched_in_float64_and_of_empty_rows():
    """On a batch (2, 3, 4) of float64 rows, stats and online_stats are (max, sum exp(x - max))
    per row in float64; softmax normalises each row; an empty last axis gives (-inf, 0) of the
    batch's shape and dtype."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64) * 3
    m = x.amax(-1)
    l = torch.exp(x - m[..., None]).sum(-1)
    for stats in (softmax.stats, softmax.online_stats):
        got_m, got_l = stats(x)
        assert got_m.dtype == got_l.dtype == torch.float64 and got_m.shape == (2, 3)
        assert torch.equal(got_m, m)
        assert torch.allclose(got_l, l, rtol=1e-14, atol=0)
    p = softmax.softmax(x)
    assert torch.allclose(p.sum(-1), torch.ones(2, 3, dtype=torch.float64), rtol=1e-14, atol=0)
    assert torch.allclose(p, torch.softmax(x, -1), rtol=1e-13, atol=0)
    empty = torch.zeros(2, 3, 0, dtype=torch.float64)
    for stats in (softmax.stats, softmax.online_stats):
        em, el = stats(empty)
        assert em.shape == el.shape == (2, 3) and em.dtype == el.dtype == torch.float64
        assert torch.all(em == -torch.inf) and torch.all(el == 0)


def test_nan_and_plus_inf_are_refused_minus_inf_means_masked():
    """Issue 16 (bad input): -inf is a masked logit (allowed), nan and +inf are refused; a row
    with every entry masked has statistics (-inf, 0) but no softmax (0 / 0)."""
    x = torch.tensor([[0.5, -math.inf, 1.0], [-math.inf] * 3], dtype=F64)
    m, l = softmax.stats(x)
    assert m[1] == -math.inf and l[1] == 0
    for bad in (math.nan, math.inf):
        for f in (softmax.softmax, softmax.safe_softmax, softmax.stats, softmax.online_stats,
                  softmax.online_softmax):  # fmt: skip
            with pytest.raises(ValueError, match="^x: "):
                f(torch.tensor([0.5, bad], dtype=F64))
    for f in (softmax.softmax, softmax.safe_softmax, softmax.online_softmax):
        with pytest.raises(ValueError, match="^x: .*all -inf"):
            f(x)
    with pytest.raises(ValueError, match="^a: "):
        softmax.merge((m, l + 1), (m, l))  # l > 0 where m = -inf: not statistics of any set
    with pytest.raises(ValueError, match="^b: "):
        softmax.merge((m, l), (m[:1], l[:1]))
