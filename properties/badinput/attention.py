"""Bad-input specs: impl/attention/ reference, softmax, tiled, triton_kernel, io_model.

Shapes of the valid calls (tiny, float64 unless said): q (1, 2, 5, 3), k (1, 2, 6, 3),
v (1, 2, 6, 2), so N_q != N_k and d != d_v, and a mismatch on an axis that must agree is
always visible (a size-1 axis is only ever grown, never broadcast).

triton_kernel.forward runs on CPU tensors only in Triton's interpreter, which triton fixes when
the kernel module is imported (TRITON_INTERPRET=1, set by properties/conftest.py without a GPU).
Its spec calls it as the tests do: on the GPU when there is one, on the CPU when the module was
imported interpreted, and otherwise (a CPU run outside pytest, e.g. the survey) in a fresh Python
with TRITON_INTERPRET=1, reached only by a call that passed every argument check.
"""

import io
import math
import os
import subprocess
import sys

import numpy as np
import torch
from hypothesis import strategies as st

from impl.attention import reference, tiled
from properties.badinput import spec
from properties.badinput.wrong import (
    Maker,
    also,
    bad_int,
    complex_dtype,
    mismatched,
    not_a_tensor,
    not_finite,
    randn,
    reshaped,
    values,
)

F64 = torch.float64


# --- area-local wrong-value makers ------------------------------------------------------------


def _one_entry(entries, label):
    """A copy of the valid tensor with one drawn entry set to one of `entries`."""

    def make(kwargs, arg):
        x = kwargs[arg]

        @st.composite
        def broken(draw):
            y = x.clone()
            y.view(-1)[draw(st.integers(0, y.numel() - 1))] = draw(st.sampled_from(entries))
            return y

        return broken()

    return Maker(make, label)


# -inf is legitimate where it means "masked" (softmax logits, a running max, L of an unseen row)
nan_or_posinf = _one_entry([math.nan, math.inf], "nan_or_posinf")


def as_dtype(*dtypes):
    """The valid tensor converted to another dtype (an integer, a float mask, a mixed dtype)."""
    return Maker(
        lambda kwargs, arg: st.sampled_from(dtypes).map(kwargs[arg].to), f"as_dtype{dtypes}"
    )


def mismatched_on(axes, *others):
    """`mismatched` restricted to the axes that must agree with another argument."""
    return Maker(
        lambda kwargs, arg: st.one_of([mismatched(axis=a)(kwargs, arg) for a in axes]),
        f"mismatched_on({axes}){others!r}",
        others,
    )


def _all_masked_row(kwargs, arg):
    """One row (along the last axis) entirely -inf: no key to attend to, no softmax."""
    x = kwargs[arg]

    @st.composite
    def masked(draw):
        y = x.clone()
        y.view(-1, x.shape[-1])[draw(st.integers(0, y.numel() // x.shape[-1] - 1))] = -math.inf
        return y

    return masked()


all_masked_row = Maker(_all_masked_row, "all_masked_row")
not_a_bool = values(None, "yes", 1, 0.5, torch.tensor([True, False]))
not_a_scale = values("0.5", [1.0, 2.0], {"x": 1}, True, torch.tensor([0.3, 0.4]))
not_a_mask = Maker(
    lambda kwargs, arg: st.sampled_from(
        [
            kwargs[arg].float(),  # a float mask, not bool
            kwargs[arg][None, None, None],  # 5-D: would broadcast S to 5-D
            kwargs[arg].reshape(-1),
            "x",
            1,
            [[True]],
        ]
    ),
    "not_a_mask",
)


def _decreasing(kwargs, arg):
    cu = torch.as_tensor(kwargs[arg])
    return st.just(torch.cat([cu[:1], cu[1:].flip(0)]))


decreasing = Maker(_decreasing, "decreasing")
not_from_zero = Maker(lambda kwargs, arg: st.integers(1, 3).map(lambda c: kwargs[arg] + c), "+c")


def _broken_pair(kwargs, arg):
    """(m, l) statistics broken in one way: m nan or +inf, l nan, inf or negative, l = 0 for a
    finite m or l > 0 for m = -inf, m and l of different shapes, not tensors."""
    m, l = kwargs[arg]
    finite = torch.isfinite(m)

    def at(t, where, value):
        t = t.clone()
        t[where.nonzero()[0, 0]] = value
        return t

    return st.sampled_from(
        [
            (at(m, finite, math.nan), l),
            (at(m, finite, math.inf), l),
            (m, at(l, finite, math.nan)),
            (m, at(l, finite, math.inf)),
            (m, at(l, finite, -1.0)),
            (m, at(l, finite, 0.0)),
            (m, at(l, ~finite, 1.0)),
            (m, l[:-1]),
            (m.tolist(), l),
            (m, l.tolist()),
            (m, l, l),
            (m,),
            m,
            None,
        ]
    )


broken_pair = Maker(_broken_pair, "broken_pair")


def _pair_mismatched(kwargs, arg):
    m, l = kwargs[arg]
    return st.sampled_from([(m[:-1], l[:-1]), (m[None], l[None])])


pair_mismatched = also("a", "b")(Maker(_pair_mismatched, "pair_mismatched"))


def qkv_wrong(role):
    """Wrong values of q, k or v of the (B, H, N, d) attention functions: which axes must agree
    depends on the role (q's N_q and v's d_v are free)."""
    axes, others = {"q": ((0, 1, 3), ("k",)), "k": ((0, 1, 2, 3), ("q", "v")),
                    "v": ((0, 1, 2), ("k",))}[role]  # fmt: skip
    return [
        not_finite,
        not_a_tensor,
        reshaped,
        complex_dtype,
        as_dtype(torch.int64),
        mismatched_on(axes, *others),
    ]


# --- reference ----------------------------------------------------------------------------------


def qkv():
    return dict(
        q=randn(1, 2, 5, 3, seed=1), k=randn(1, 2, 6, 3, seed=2), v=randn(1, 2, 6, 2, seed=3)
    )


KEEP = torch.tensor([[True, True, False, True, True, False]])  # (B, N_k) key-padding mask

spec(
    "impl.attention.reference.attention",
    valid=lambda: dict(**qkv(), mask=reference.causal_mask(5, 6), scale=0.4, subtract_max=True),
    wrong=dict(
        q=qkv_wrong("q"),
        k=qkv_wrong("k") + [also("q")(as_dtype(torch.float32))],
        v=qkv_wrong("v") + [also("q")(as_dtype(torch.float32))],
        mask=[not_a_mask, mismatched()],
        scale=[not_finite, not_a_scale],
        subtract_max=[not_a_bool],
    ),
)
spec(
    "impl.attention.reference.check",
    valid=qkv,
    wrong=dict(
        q=qkv_wrong("q"),
        k=qkv_wrong("k") + [also("q")(as_dtype(torch.float32))],
        v=qkv_wrong("v") + [also("q")(as_dtype(torch.float32))],
    ),
)
spec(
    "impl.attention.reference.causal_mask",
    valid=lambda: dict(n_q=3, n_k=4, device=None),
    wrong=dict(n_q=[bad_int(0)], n_k=[bad_int(0)], device=[values("nope", 1.5, {"x": 1}, [0])]),
)
spec(
    "impl.attention.reference.padding_mask",
    valid=lambda: dict(key_padding_mask=KEEP.clone()),
    wrong=dict(key_padding_mask=[not_a_tensor, reshaped, as_dtype(torch.float32, torch.int64)]),
)
cu_wrong = [
    not_a_tensor,
    reshaped,
    decreasing,
    not_from_zero,
    as_dtype(torch.float32),
    values(torch.tensor([0]), torch.tensor([], dtype=torch.int64)),
]
spec(
    "impl.attention.reference.block_diagonal_mask",
    valid=lambda: dict(
        cu_seqlens_q=torch.tensor([0, 2, 5]), cu_seqlens_k=torch.tensor([0, 3, 4]), causal=True
    ),
    wrong=dict(
        cu_seqlens_q=[*cu_wrong, also("cu_seqlens_k")(mismatched())],
        cu_seqlens_k=[*cu_wrong, also("cu_seqlens_q")(mismatched())],
        causal=[not_a_bool],
    ),
)

# --- softmax ------------------------------------------------------------------------------------


def logits():
    x = randn(3, 4, seed=4)
    x[1, 2] = -math.inf  # a masked entry: legitimate
    return dict(x=x)


x_wrong = [nan_or_posinf, not_a_tensor, complex_dtype, as_dtype(torch.int64),
           values(torch.tensor(1.0))]  # fmt: skip
for name in ("stats", "online_stats"):
    spec(f"impl.attention.softmax.{name}", valid=logits, wrong=dict(x=x_wrong))
for name in ("softmax", "safe_softmax", "online_softmax"):
    spec(f"impl.attention.softmax.{name}", valid=logits, wrong=dict(x=[*x_wrong, all_masked_row]))
spec(
    "impl.attention.softmax.merge",
    valid=lambda: dict(
        a=(
            torch.tensor([0.3, -math.inf, 1.2], dtype=F64),
            torch.tensor([1.5, 0.0, 2.0], dtype=F64),
        ),
        b=(
            torch.tensor([1.0, 0.2, -math.inf], dtype=F64),
            torch.tensor([1.2, 3.0, 0.0], dtype=F64),
        ),
    ),
    wrong=dict(a=[broken_pair, pair_mismatched], b=[broken_pair, pair_mismatched]),
)

# --- tiled --------------------------------------------------------------------------------------


def tiled_args():
    return dict(**qkv(), causal=True, key_padding_mask=KEEP.clone(), scale=0.4, block_q=2,
                block_k=4)  # fmt: skip


options_wrong = dict(
    causal=[not_a_bool],
    key_padding_mask=[not_a_mask, mismatched("k")],
    scale=[not_finite, not_a_scale],
    block_q=[bad_int(1)],
    block_k=[bad_int(1)],
)
attention_wrong = dict(
    q=qkv_wrong("q"),
    k=qkv_wrong("k") + [also("q")(as_dtype(torch.float32))],
    v=qkv_wrong("v") + [also("q")(as_dtype(torch.float32))],
    **options_wrong,
)
spec("impl.attention.tiled.attention", valid=tiled_args, wrong=attention_wrong)
spec(
    "impl.attention.tiled.forward",
    valid=lambda: dict(**tiled_args(), io={}),
    wrong=dict(**attention_wrong, io=[values("x", 3, [1], {"reads": "x"}, {"writes": 1.5})]),
)
O, L = tiled.forward(**tiled_args())  # once: backward does not change its arguments
spec(
    "impl.attention.tiled.backward",
    valid=lambda: dict(**tiled_args(), o=O, lse=L, do=randn(1, 2, 5, 2, seed=5)),
    wrong=dict(
        **attention_wrong,
        o=[not_finite, not_a_tensor, mismatched()],
        lse=[nan_or_posinf, not_a_tensor, mismatched()],
        do=[not_finite, not_a_tensor, mismatched()],
    ),
)
spec(
    "impl.attention.tiled.rescale",
    valid=lambda: dict(
        m=torch.tensor([[-math.inf], [0.5], [1.0]], dtype=F64),
        m_new=torch.tensor([[0.0], [0.7], [1.0]], dtype=F64),
    ),
    wrong=dict(
        m=[
            nan_or_posinf,
            not_a_tensor,
            also("m_new")(mismatched()),
            also("m_new")(Maker(lambda kw, arg: st.just(kw[arg] + 5), "above m_new")),
        ],
        m_new=[
            not_finite,
            not_a_tensor,
            also("m")(mismatched()),
            also("m")(Maker(lambda kw, arg: st.just(kw[arg] - 5), "below m")),
        ],
    ),  # fmt: skip
)
spec(
    "impl.attention.tiled.delta",
    valid=lambda: dict(do=randn(1, 2, 5, 2, seed=5), o=randn(1, 2, 5, 2, seed=6)),
    wrong=dict(
        do=[not_finite, not_a_tensor, also("o")(mismatched())],
        o=[not_finite, not_a_tensor, also("do")(mismatched())],
    ),
)


def packed():
    return dict(
        q=randn(5, 2, 3, seed=1),
        k=randn(4, 2, 3, seed=2),
        v=randn(4, 2, 2, seed=3),
        cu_seqlens_q=torch.tensor([0, 2, 5]),
        cu_seqlens_k=torch.tensor([0, 3, 4]),
        causal=True,
        scale=0.4,
        block_q=2,
        block_k=2,
    )


spec(
    "impl.attention.tiled.varlen_attention",
    valid=packed,
    wrong=dict(
        q=[
            not_finite,
            not_a_tensor,
            reshaped,
            complex_dtype,
            as_dtype(torch.int64),
            also("k", "cu_seqlens_q")(mismatched()),
        ],
        k=[
            not_finite,
            not_a_tensor,
            reshaped,
            complex_dtype,
            also("q")(as_dtype(torch.float32)),
            also("q", "v", "cu_seqlens_k")(mismatched()),
        ],
        v=[
            not_finite,
            not_a_tensor,
            reshaped,
            also("q")(as_dtype(torch.float32)),
            mismatched_on((0, 1), "k", "cu_seqlens_k"),
        ],
        cu_seqlens_q=[*cu_wrong, also("cu_seqlens_k")(mismatched())],
        cu_seqlens_k=[*cu_wrong, also("cu_seqlens_q")(mismatched())],
        **{a: options_wrong[a] for a in ("causal", "scale", "block_q", "block_k")},
    ),  # fmt: skip
)

# --- triton_kernel ------------------------------------------------------------------------------


def _kernel_in_a_fresh_python(kwargs):
    """forward(**kwargs) in a new Python with TRITON_INTERPRET=1 (tensors through torch.save)."""
    buffer = io.BytesIO()
    torch.save(kwargs, buffer)
    code = (
        "import io, sys, torch\n"
        "from impl.attention import triton_kernel\n"
        "kwargs = torch.load(io.BytesIO(sys.stdin.buffer.read()))\n"
        "out = io.BytesIO()\n"
        "torch.save(triton_kernel.forward(**kwargs), out)\n"
        "sys.stdout.buffer.write(out.getvalue())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=buffer.getvalue(),
        capture_output=True,
        cwd=root,
        env={**os.environ, "TRITON_INTERPRET": "1"},
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr.decode()[-2000:])
    return torch.load(io.BytesIO(done.stdout))


def kernel_forward(**kwargs):
    """triton_kernel.forward as the tests run it (the module docstring above)."""
    from impl.attention import triton_kernel

    if triton_kernel.INTERPRETED:
        return triton_kernel.forward(**kwargs)
    if torch.cuda.is_available():
        moved = {a: t.cuda() if isinstance(t, torch.Tensor) else t for a, t in kwargs.items()}
        return triton_kernel.forward(**moved)
    try:  # the argument checks run before the kernel needs the interpreter or a GPU
        return triton_kernel.forward(**kwargs)
    except RuntimeError as e:
        if "TRITON_INTERPRET=1" not in str(e):
            raise
    return _kernel_in_a_fresh_python(kwargs)


def kernel_args():
    return dict(
        q=randn(1, 1, 2, 4, seed=1, dtype=torch.float32),
        k=randn(1, 1, 3, 4, seed=2, dtype=torch.float32),
        v=randn(1, 1, 3, 4, seed=3, dtype=torch.float32),
        causal=False,
        scale=0.4,
        block_m=16,
        block_n=16,
    )


not_a_block = values(24, 8, 0, -16, 2**40, 16.0, True, "16")
spec(
    "impl.attention.triton_kernel.forward",
    valid=kernel_args,
    call=kernel_forward,
    wrong=dict(
        q=[
            not_finite,
            not_a_tensor,
            reshaped,
            complex_dtype,
            also("k", "v")(as_dtype(torch.float64)),
            mismatched_on((0, 1, 3), "k"),
        ],
        k=[
            not_finite,
            not_a_tensor,
            reshaped,
            also("q")(as_dtype(torch.float16)),
            mismatched_on((0, 1, 2, 3), "q", "v"),
        ],
        v=[
            not_finite,
            not_a_tensor,
            reshaped,
            also("q")(as_dtype(torch.float16)),
            mismatched_on((0, 1, 2), "k"),
        ],
        causal=[not_a_bool],
        scale=[not_finite, not_a_scale],
        block_m=[not_a_block],
        block_n=[not_a_block],
    ),  # fmt: skip
)

# --- io_model -----------------------------------------------------------------------------------

spec(
    "impl.attention.io_model.standard",
    valid=lambda: dict(N=8, d=4),
    wrong=dict(N=[bad_int(1)], d=[bad_int(1)]),
)
for name in ("tiled", "tiled_closed_form"):
    spec(
        f"impl.attention.io_model.{name}",
        valid=lambda: dict(N=8, d=4, M=64),
        wrong=dict(N=[bad_int(1)], d=[bad_int(1)], M=[bad_int(1), values(15, 4)]),
    )
spec(
    "impl.attention.io_model.flash2",
    valid=lambda: dict(n_q=5, n_k=6, d=3, d_v=2, block_q=2, block_k=4, causal=True),
    wrong=dict(
        **{a: [bad_int(1)] for a in ("n_q", "n_k", "d", "d_v", "block_q", "block_k")},
        causal=[not_a_bool],
    ),
)

# --- full-text claims (FA-08 .. FA-13): precision, passes, recurrence, tiled_matmul, footprint --

not_a_16_bit_format = values(torch.float32, torch.float64, torch.int16, "float16", None, 16)
nan_entry = _one_entry([math.nan], "nan_entry")
spec(
    "impl.attention.precision.largest_finite",
    valid=lambda: dict(dtype=torch.float16),
    wrong=dict(dtype=[not_a_16_bit_format]),
)
spec(
    "impl.attention.precision.overflow_threshold",
    valid=lambda: dict(dtype=torch.bfloat16, via=torch.float32),
    wrong=dict(dtype=[not_a_16_bit_format], via=[values(torch.float16, torch.int32, "f", 1)]),
)
spec(
    "impl.attention.precision.exp_in",
    valid=lambda: dict(x=randn(3, 4, seed=7), dtype=torch.float16, via=None),
    wrong=dict(
        x=[nan_entry, not_a_tensor, complex_dtype, as_dtype(torch.int64)],
        dtype=[not_a_16_bit_format],
        via=[values(torch.float16, torch.int32, "f", 1)],
    ),
)
for name in ("safe_softmax", "online_softmax"):
    spec(
        f"impl.attention.passes.{name}",
        valid=lambda: dict(x=randn(5, seed=8)),
        wrong=dict(
            x=[
                not_finite,
                not_a_tensor,
                reshaped,
                complex_dtype,
                as_dtype(torch.int64),
                values(torch.zeros(0, dtype=F64)),
            ]
        ),  # fmt: skip
    )


def one_query():
    return dict(q=randn(3, seed=1), K=randn(5, 3, seed=2), V=randn(5, 2, seed=3), scale=0.5)


for name in ("three_pass_attention", "two_pass_attention", "one_pass_attention"):
    spec(
        f"impl.attention.passes.{name}",
        valid=one_query,
        wrong=dict(
            q=[
                not_finite,
                not_a_tensor,
                reshaped,
                also("K")(mismatched()),
                also("K")(as_dtype(torch.float32)),
            ],
            K=[
                not_finite,
                not_a_tensor,
                reshaped,
                also("q", "V")(mismatched()),
                as_dtype(torch.float32),
            ],
            V=[
                not_finite,
                not_a_tensor,
                reshaped,
                mismatched_on((0,), "K"),
                as_dtype(torch.float32),
            ],
            scale=[not_finite, not_a_scale, values(0.0, -1.0)],
        ),  # fmt: skip
    )


def row_logits():
    x = randn(2, 6, seed=9)
    x[1, 4] = -math.inf  # a masked logit: legitimate
    return dict(x=x, V=randn(6, 3, seed=10))


recurrence_wrong = dict(
    x=[nan_or_posinf, not_a_tensor, complex_dtype, as_dtype(torch.int64),
       also("V")(mismatched_on((1,), "V")), values(torch.tensor(1.0, dtype=F64))],
    V=[not_finite, not_a_tensor, reshaped, mismatched_on((0,), "x"), as_dtype(torch.float32)],
)  # fmt: skip
for name in ("normalised", "unnormalised"):
    spec(
        f"impl.attention.recurrence.{name}",
        valid=lambda: dict(**row_logits(), b=3),
        wrong=dict(**recurrence_wrong, b=[bad_int(1), values(4, 5, 7)]),
    )
spec("impl.attention.recurrence.surrogates", valid=row_logits, wrong=recurrence_wrong)


def matrices():
    g = np.random.default_rng(0)
    return dict(A=g.standard_normal((4, 6)).astype(np.float32),
                B=g.standard_normal((6, 2)).astype(np.float32))  # fmt: skip


not_a_matrix = values(None, "x", [[1.0, 2.0]], torch.ones(2, 2))
matrix_wrong = dict(
    A=[not_finite, not_a_matrix, reshaped, also("B")(mismatched_on((1,), "B")),
       also("B")(Maker(lambda kw, arg: st.just(kw[arg].astype(np.int64)), "int64")),
       also("B")(Maker(lambda kw, arg: st.just(kw[arg].astype(object)), "object of floats"))],
    B=[not_finite, not_a_matrix, reshaped, mismatched_on((0,), "A"),
       Maker(lambda kw, arg: st.just(kw[arg].astype(np.float64)), "float64 beside float32")],
)  # fmt: skip
spec(
    "impl.attention.tiled_matmul.tiled",
    valid=lambda: dict(**matrices(), T=2),
    wrong=dict(**matrix_wrong, T=[bad_int(1), values(3, 4, 5)]),
)
spec("impl.attention.tiled_matmul.sequential", valid=matrices, wrong=matrix_wrong)
spec(
    "impl.attention.io_model.sram_footprint",
    valid=lambda: dict(L=100, B=16, D=8),
    wrong=dict(L=[bad_int(1)], B=[bad_int(1)], D=[bad_int(1)]),
)
spec(
    "impl.attention.io_model.largest_block",
    valid=lambda: dict(capacity_bytes=228 * 1024, D=128, bytes_per_element=2),
    wrong=dict(capacity_bytes=[bad_int(1)], D=[bad_int(1)], bytes_per_element=[bad_int(1)]),
)
