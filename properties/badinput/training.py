"""Bad-input specs: impl/training/ packing, collate, the tiny LM, checkpointing, accumulation."""

from fractions import Fraction

import numpy as np
import torch
from hypothesis import strategies as st

from impl.training import checkpoint as ck
from impl.training import hf_table, lm
from properties.badinput import exempt, spec
from properties.badinput.wrong import (
    Maker,
    also,
    bad_choice,
    bad_int,
    empty,
    mismatched,
    not_a_number,
    not_a_tensor,
    not_callable,
    not_finite,
    outside,
    randn,
    reshaped,
    values,
)

F64 = torch.float64


def long(*rows):
    return torch.tensor(rows, dtype=torch.int64)


def int_entry(*wrong):
    """One entry of an integer array (list, numpy array or tensor) set to one of `wrong`, its
    integer dtype kept (wrong.outside would make it a float)."""

    def make(kwargs, arg):
        value = kwargs[arg]

        @st.composite
        def broken(draw):
            if isinstance(value, torch.Tensor):
                b = value.clone()
                flat = b.view(-1)
            elif isinstance(value, np.ndarray):
                b = value.copy()
                flat = b.reshape(-1)
            else:
                b = flat = list(value)
            flat[draw(st.integers(0, len(flat) - 1))] = draw(st.sampled_from(wrong))
            return b

        return broken()

    return Maker(make, f"int_entry{wrong!r}")


not_a_dtype = values(None, "float64", torch.int64, torch.complex128, np.float64)
not_a_flag = values(None, "yes", 2, 0.5)

# ---------------------------------------------------------------------------------- packing

LENGTHS = [3, 1, 4, 1, 5]
PACK_OF = np.array([0, 0, 1, -1, 2])
lengths_wrong = [
    values(None, "x", 3, [[1, 2]], [1.5, 2.0], [2**70, 1]),
    int_entry(-1, -7),
    outside(0, None),
    not_finite,
    reshaped,
]
pack_of_wrong = [
    values(None, "x", [[0, 1]], [0.0, 1.0]),
    int_entry(-2, -5, 7),  # below -1, or a pack number skipped
    not_finite,
    reshaped,
]
capacity_wrong = [bad_int(1)]
oversize_wrong = [bad_choice("alone", "filter")]

for packer in ("next_fit", "first_fit_decreasing", "best_fit_decreasing"):
    spec(
        f"impl.training.packing.{packer}",
        valid=lambda: dict(lengths=LENGTHS, capacity=6, oversize="alone"),
        wrong=dict(lengths=lengths_wrong, capacity=capacity_wrong, oversize=oversize_wrong),
    )

spec(
    "impl.training.packing.window",
    valid=lambda: dict(lengths=LENGTHS, capacity=6, W=2, oversize="filter"),
    wrong=dict(
        lengths=lengths_wrong, capacity=capacity_wrong, W=[bad_int(0)], oversize=oversize_wrong
    ),
)

spec(
    "impl.training.packing.packs",
    valid=lambda: dict(pack_of=PACK_OF),
    wrong=dict(pack_of=pack_of_wrong),
)

spec(
    "impl.training.packing.pack_lengths",
    valid=lambda: dict(lengths=LENGTHS, pack_of=PACK_OF),
    wrong=dict(
        lengths=[*lengths_wrong, also("pack_of")(mismatched())],
        pack_of=[*pack_of_wrong, also("lengths")(mismatched())],
    ),
)

spec(
    "impl.training.packing.efficiency",
    valid=lambda: dict(lengths=LENGTHS, pack_of=PACK_OF, capacity=6),
    wrong=dict(
        lengths=[*lengths_wrong, also("pack_of")(mismatched())],
        pack_of=[*pack_of_wrong, also("lengths")(mismatched())],
        capacity=capacity_wrong,
    ),
)

spec(
    "impl.training.packing.lower_bound",
    valid=lambda: dict(lengths=LENGTHS, capacity=6),
    wrong=dict(lengths=lengths_wrong, capacity=capacity_wrong),
)

# ---------------------------------------------------------------------------------- collate

samples_wrong = [
    values(
        None,
        "abc",
        3,
        [],
        [[1, 2], []],
        [[1, 2.5]],
        [[1, -3]],
        [1, 2],
        [[[1]]],
        [["a"]],
        [[1, None]],
        [[1, 2**70]],
    ),  # fmt: skip
]
MASK = long([1, 1, 0], [1, 0, 0])
mask_wrong = [
    not_a_tensor,
    int_entry(2, -1, 5),
    not_finite,
    reshaped,
    values(long([0, 1, 1], [1, 0, 0]).float() + 0.5),
]

spec(
    "impl.training.collate.padded",
    valid=lambda: dict(samples=[[1, 2, 3], [4, 5]], pad_id=0),
    wrong=dict(samples=samples_wrong, pad_id=[bad_int(0)]),
)

spec(
    "impl.training.collate.packed",
    valid=lambda: dict(samples=[[1, 2, 3], [4, 5]]),
    wrong=dict(samples=samples_wrong),
)

spec(
    "impl.training.collate.unpad",
    valid=lambda: dict(x=randn(2, 3, 2), attention_mask=MASK),
    wrong=dict(
        x=[
            not_a_tensor,
            reshaped,
            also("attention_mask")(mismatched(axis=0)),
            also("attention_mask")(mismatched(axis=1)),
        ],
        attention_mask=[*mask_wrong, also("x")(mismatched())],
    ),
)

spec(
    "impl.training.collate.pad",
    valid=lambda: dict(x=randn(3, 2), indices=long(0, 1, 3), B=2, T=3),
    wrong=dict(
        x=[not_a_tensor, values(torch.tensor(1.0)), also("indices")(mismatched(axis=0))],
        indices=[
            not_a_tensor,
            int_entry(-1, 6, 100),
            values(long(0, 0, 3), long(3, 1, 0), torch.tensor([0.0, 1.0, 3.0])),
            reshaped,
            also("x")(mismatched()),
        ],
        B=[bad_int(1)],
        T=[bad_int(1)],
    ),
)

spec(
    "impl.training.collate.cu_seqlens_from_position_ids",
    valid=lambda: dict(position_ids=long([0, 1, 2, 0, 1])),
    wrong=dict(
        position_ids=[
            not_a_tensor,
            int_entry(-1, 3, 7),
            values(torch.tensor([[0.0, 1.0]]), long([0, 1], [0, 1])),
            reshaped,
        ]
    ),
)

spec(
    "impl.training.collate.cu_seqlens_from_mask",
    valid=lambda: dict(attention_mask=MASK),
    wrong=dict(attention_mask=mask_wrong),
)

spec(
    "impl.training.collate.shifted_token_loss",
    valid=lambda: dict(logits=randn(1, 4, 5), labels=long([-100, 1, 2, 4])),
    wrong=dict(
        logits=[
            not_a_tensor,
            not_finite,
            also("labels")(reshaped),  # (..., T, V) with other leading dimensions than labels
            values(long([[1, 2, 3, 4, 0]] * 4)),
            also("labels")(mismatched(axis=0)),
            also("labels")(mismatched(axis=1)),
        ],
        labels=[
            not_a_tensor,
            int_entry(5, -1, -7, 99),
            values(torch.tensor([[0.0, 1.0, 2.0, 3.0]])),
            reshaped,
            also("logits")(mismatched()),
        ],
    ),
)

spec(
    "impl.training.collate.check_mask",
    valid=lambda: dict(attention_mask=MASK, right_padded=True),
    wrong=dict(
        attention_mask=[*mask_wrong, values(long([0, 1, 1], [1, 0, 0]))],
        right_padded=[not_a_flag],
    ),
)

# ---------------------------------------------------------------------------------- the tiny LM

MODEL = lm.TinyLM(vocab=8, d=4, heads=2, layers=1, max_len=8)
BLOCK = lm.Block(4, 2, F64)

spec(
    "impl.training.lm.TinyLM",
    valid=lambda: dict(vocab=8, d=4, heads=2, layers=1, max_len=8, dtype=F64, seed=0),
    wrong=dict(
        vocab=[bad_int(1)],
        d=[bad_int(1)],
        heads=[bad_int(1), values(3)],
        layers=[bad_int(0)],
        max_len=[bad_int(1)],
        dtype=[not_a_dtype],
        seed=[bad_int(0)],
    ),
)

ids_wrong = [
    not_a_tensor,
    int_entry(8, -1, 100),  # outside [0, vocab)
    values(torch.tensor([[1.0, 2.0, 3.0]])),
    reshaped,
]

for path in ("forward_padded", "forward_unpadded"):
    spec(
        f"impl.training.lm.TinyLM.{path}",
        valid=lambda: dict(
            self=MODEL,
            input_ids=long([1, 2, 3], [4, 5, 0]),
            attention_mask=long([1, 1, 1], [1, 1, 0]),
        ),
        wrong=dict(
            input_ids=[
                *ids_wrong,
                values(torch.zeros(2, 9, dtype=torch.int64)),  # longer than max_len
                also("attention_mask")(mismatched()),
            ],
            attention_mask=[
                *mask_wrong,
                values(long([1, 1, 1], [0, 1, 1])),  # not right-padded
                also("input_ids")(mismatched()),
            ],
        ),
        call=lambda self, path=path, **kw: getattr(self, path)(**kw),
    )

spec(
    "impl.training.lm.TinyLM.forward_packed",
    valid=lambda: dict(
        self=MODEL,
        input_ids=long([1, 2, 3, 4, 5]),
        position_ids=long([0, 1, 2, 0, 1]),
        cu_seqlens=torch.tensor([0, 3, 5], dtype=torch.int32),
    ),
    wrong=dict(
        input_ids=[*ids_wrong, also("position_ids")(mismatched())],  # axis 0: a second row
        position_ids=[
            not_a_tensor,
            int_entry(-1, 3, 8, 100),  # negative, contradicting cu_seqlens, >= max_len
            values(torch.tensor([[0.0, 1.0, 2.0, 0.0, 1.0]]), long([0, 1, 2, 3, 4])),
            reshaped,
            also("input_ids")(mismatched()),
        ],
        cu_seqlens=[
            not_a_tensor,
            also("position_ids")(int_entry(-1, 1, 4, 6)),
            also("position_ids")(values(torch.tensor([0, 5]), torch.tensor([0, 3, 2, 5]))),
            values(torch.tensor([0.0, 3.0, 5.0])),
            reshaped,
            empty,
            also("position_ids")(mismatched()),
        ],
    ),
    call=lambda self, **kw: self.forward_packed(**kw),
)

spec(
    "impl.training.lm.Block",
    valid=lambda: dict(d=4, heads=2, dtype=F64),
    wrong=dict(d=[bad_int(1)], heads=[bad_int(1), values(3)], dtype=[not_a_dtype]),
)

spec(
    "impl.training.lm.Block.forward",
    valid=lambda: dict(self=BLOCK, h=randn(1, 3, 4), attend=lambda q, k, v: v),
    wrong=dict(
        h=[
            not_a_tensor,
            not_finite,
            values(randn(4), randn(1, 3, 4).float()),
            mismatched(axis=2),
        ],
        attend=[not_callable, values(lambda q, k, v: q[..., :1], lambda q, k, v: None)],
    ),
    call=lambda self, **kw: self.forward(**kw),
)

# ---------------------------------------------------------------------------------- checkpoint

CHAIN = ck.Chain(3, 2)
chain_wrong = [values(None, "chain", torch.nn.Linear(2, 2), ck.Chain(3, 2, dropout=0.5).layers)]
x_wrong = [
    not_a_tensor,
    not_finite,
    mismatched(axis=1),  # not the chain's width
    values(randn(2, 2).float(), torch.zeros(2, 2, dtype=torch.int64)),
]


def x2():
    return randn(2, 2)


spec(
    "impl.training.checkpoint.Chain",
    valid=lambda: dict(n=3, width=2, dropout=0.1, dtype=F64, seed=0),
    wrong=dict(
        n=[bad_int(1)],
        width=[bad_int(1)],
        dropout=[outside(0, 1, hi_open=True), not_finite, not_a_number],
        dtype=[not_a_dtype],
        seed=[bad_int(0)],
    ),
)

spec(
    "impl.training.checkpoint.Chain.layer",
    valid=lambda: dict(self=CHAIN, i=1, x=x2()),
    wrong=dict(i=[bad_int(0, 2)], x=[not_a_tensor, *x_wrong[2:]]),
    call=lambda self, **kw: self.layer(**kw),
)

spec(
    "impl.training.checkpoint.Chain.run",
    valid=lambda: dict(self=CHAIN, x=x2(), a=1, b=3),
    wrong=dict(
        x=[not_a_tensor, *x_wrong[2:]],
        a=[bad_int(0, 3)],
        b=[bad_int(0, 3), values(0)],  # b < a
    ),
    call=lambda self, **kw: self.run(**kw),
)

# the recursive plans do not replay random state: a chain with dropout is refused
recursive_chain_wrong = [*chain_wrong, values(ck.Chain(3, 2, dropout=0.5))]

for plan in ("store_all", "sqrt_segments", "recompute_all", "bisection"):
    spec(
        f"impl.training.checkpoint.{plan}",
        valid=lambda: dict(chain=CHAIN, x=x2()),
        wrong=dict(
            chain=chain_wrong if plan in ("store_all", "sqrt_segments") else recursive_chain_wrong,
            x=x_wrong,
        ),
    )

spec(
    "impl.training.checkpoint.segments",
    valid=lambda: dict(chain=CHAIN, x=x2(), k=2, checkpoint_fn=None),  # None: impl's checkpoint
    wrong=dict(chain=chain_wrong, x=x_wrong, k=[bad_int(1, 3)], checkpoint_fn=[values(3, "f")]),
)

for plan in ("revolve", "optimal"):
    spec(
        f"impl.training.checkpoint.{plan}",
        valid=lambda: dict(chain=CHAIN, x=x2(), s=1),
        wrong=dict(chain=recursive_chain_wrong, x=x_wrong, s=[bad_int(0)]),
    )

spec(
    "impl.training.checkpoint.checkpoint",
    valid=lambda: dict(fn=torch.tanh, args=(x2(),), preserve_rng_state=True),
    wrong=dict(
        fn=[not_callable, values(lambda x: 3.0)],
        args=[values((), (None,), ("x",), (x2(), 3), ((x2(),),))],
        preserve_rng_state=[not_a_flag],
    ),
    call=lambda fn, args, preserve_rng_state: ck.checkpoint(
        fn, *args, preserve_rng_state=preserve_rng_state
    ),
)

spec(
    "impl.training.checkpoint.SavedBytes",
    valid=lambda: dict(exclude=[torch.zeros(2)]),
    wrong=dict(exclude=[values(None, 3, "x", [1, 2], [None])]),
)

# ---------------------------------------------------------------------------------- accumulate


def accumulation():
    w = torch.zeros(2, dtype=F64, requires_grad=True)
    return dict(
        per_token_loss=lambda batch: (batch @ w + 1) ** 2,
        params=[w],
        micro_batches=[randn(2, 2), randn(3, 2)],
        tokens=[2, 3],
        normalise="tokens",
    )


spec(
    "impl.training.accumulate.accumulate",
    valid=accumulation,
    wrong=dict(
        per_token_loss=[
            not_callable,
            values(lambda b: 3.0, lambda b: b.sum(-1), lambda b: b.sum(-1) * float("nan")),
        ],
        params=[values(None, 3, [], [None], [torch.zeros(2, dtype=F64)])],
        micro_batches=[values(None, 3, [])],
        tokens=[
            values(None, 3, [2], [2, 0], [2.5, 3], ["2", "3"], [True, 3], [-1, 3], [3, 2]),
            mismatched(),
        ],
        normalise=[bad_choice("tokens", "micro_batches")],
    ),
)

# ---------------------------------------------------------------------------------- hf_table

TABLE_ROW = hf_table.ROWS["accumulation"]
row_wrong = [
    values(
        None,
        "accumulation",
        (66.03, 7.75, 8681),
        TABLE_ROW._replace(time=66.03),  # a float, not the exact printed decimal
        TABLE_ROW._replace(rate=Fraction(-1)),
        TABLE_ROW._replace(time=Fraction(0)),
        TABLE_ROW._replace(memory=True),
        TABLE_ROW._replace(memory=-5),
    )
]
exempt("impl.training.hf_table.Row", "a plain record of one printed table row (the data)")
for name in ("implied_samples", "rounding_bound"):
    spec(
        f"impl.training.hf_table.{name}",
        valid=lambda: dict(row=TABLE_ROW),
        wrong=dict(row=row_wrong),
    )
for name in ("time_ratio", "throughput_ratio", "memory_ratio"):
    spec(
        f"impl.training.hf_table.{name}",
        valid=lambda: dict(a=hf_table.ROWS["batch 4"], b=TABLE_ROW),
        wrong=dict(a=row_wrong, b=row_wrong),
    )
spec(
    "impl.training.hf_table.slowdown",
    valid=lambda: dict(a=hf_table.ROWS["batch 4"], b=TABLE_ROW, measure="time"),
    wrong=dict(a=row_wrong, b=row_wrong, measure=[bad_choice("time", "throughput")]),
)
