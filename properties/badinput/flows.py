"""Bad-input specs: impl/flows/ (coupling flows, continuous normalizing flows, flow matching, the
two-moons toy data).

Shapes are chosen so that a wrong-value maker only makes wrong values: where an argument may
broadcast (a time t of shape (n, 1) against samples (n, d)), the resized axes have length 5, so a
resize by 1 to 3 never lands on a length of 1, which would broadcast legitimately; a batch's row
count is free (any n >= 1), so only its columns are resized (`mismatched(axis=1)`)."""

import math

import torch
from hypothesis import strategies as st

from impl.diffusion import oracle
from impl.flows import coupling, marginal, matching, pushforward
from properties.badinput import exempt, spec
from properties.badinput.wrong import (
    Maker,
    also,
    bad_int,
    complex_dtype,
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


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def generator():
    return torch.Generator().manual_seed(0)


# area-local makers

float32 = Maker(lambda kwargs, arg: st.just(kwargs[arg].float()), "float32")  # not the net's dtype
integer_dtype = Maker(lambda kwargs, arg: st.just(kwargs[arg].long()), "integer_dtype")
tensor = [not_a_tensor, not_finite, complex_dtype, integer_dtype]  # a finite real float tensor
not_generator = values("seed", 3, 0.5, [0])
time = [outside(0, 1), not_finite, not_a_number]  # a time t in [0, 1]
positive = [outside(0, None, lo_open=True), not_finite, not_a_number]  # a number > 0
sigma_min = [outside(0, 1, hi_open=True), not_finite, not_a_number]  # in [0, 1)
batch = [*tensor, reshaped, empty]  # an (n, d) batch, n, d >= 1


# velocities that return something other than a tensor of x's shape (broadcasting would hide it)
def one_column(x, t):
    return x[..., :1]


def one_row(x, t):
    return x[:1]


def a_scalar(x, t):
    return x.sum()


def not_a_tensor_out(x, t):
    return None


wrong_velocity = [not_callable, values(one_column, one_row, a_scalar, not_a_tensor_out)]


def std_normal_log_density(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def log_density_per_entry(z):  # (n, d), not one value per row
    return -0.5 * z**2


def log_density_scalar(z):
    return std_normal_log_density(z).sum()


def log_density_none(z):
    return None


def two_moons_like(n, g):
    return torch.randn(n, 2, generator=g, dtype=F64)


def three_columns(n, g):
    return torch.randn(n, 3, generator=g, dtype=F64)


def fewer_rows(n, g):
    return torch.randn(max(n - 1, 1), 2, generator=g, dtype=F64)


def with_nan(n, g):
    return torch.full((n, 2), math.nan, dtype=F64)


def flat(n, g):
    return torch.randn(2 * n, generator=g, dtype=F64)


def integers(n, g):
    return torch.zeros(n, 2, dtype=torch.long)


def nothing(n, g):
    return None


wrong_sample_data = [
    not_callable,
    values(three_columns, fewer_rows, with_nan, flat, integers, nothing),
]


def cnf_field(z, t):
    return -z


# modules built once: the calls below do not change them

torch.manual_seed(0)
COUPLING = coupling.AffineCoupling(torch.tensor([1.0, 0.0, 1.0]), width=4)
PERMUTATION = coupling.Permutation([2, 0, 1])
FLOW = coupling.realnvp(3, 2, 4, generator())
COUPLING_2D = coupling.AffineCoupling(torch.tensor([1.0, 0.0]), width=4)
PERMUTATION_2D = coupling.Permutation([1, 0])
VELOCITY = matching.VelocityMLP(2, width=4)
DATA = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.5]], 0.4)


# impl.flows.cnf

spec(
    "impl.flows.cnf.push",
    valid=lambda: dict(v=cnf_field, z0=randn(3, 2), log_p0=randn(3, seed=1), n=2),
    wrong=dict(
        v=wrong_velocity,
        z0=batch,
        log_p0=[*tensor, reshaped, also("z0")(mismatched())],
        n=[bad_int(1)],
    ),
)

spec(
    "impl.flows.cnf.log_density",
    valid=lambda: dict(v=cnf_field, x=randn(3, 2), log_p0_fn=std_normal_log_density, n=2),
    wrong=dict(
        v=wrong_velocity,
        x=batch,
        log_p0_fn=[
            not_callable,
            values(log_density_per_entry, log_density_scalar, log_density_none),
        ],
        n=[bad_int(1)],
    ),
)


# impl.flows.coupling

spec(
    "impl.flows.coupling.AffineCoupling",
    valid=lambda: dict(mask=torch.tensor([1.0, 0.0, 1.0]), width=4, scale=1.0),
    wrong=dict(
        mask=[
            not_a_tensor,
            not_finite,
            reshaped,
            empty,
            values([0.5, 1.0], [0, 2, 1], torch.tensor([1.0, -1.0]), "101"),
        ],
        width=[bad_int(1)],
        scale=[outside(0, None), not_finite, not_a_number],
    ),
)


def _method(name):
    return lambda self, **kw: getattr(self, name)(**kw)


for method, arg in (("forward", "x"), ("inverse", "y")):
    spec(
        f"impl.flows.coupling.AffineCoupling.{method}",
        valid=lambda arg=arg: {"self": COUPLING, arg: randn(4, 3)},
        wrong={arg: [*batch, mismatched(axis=1), float32]},
        call=_method(method),
    )

spec(
    "impl.flows.coupling.Permutation",
    valid=lambda: dict(perm=[2, 0, 1]),
    wrong=dict(
        perm=[
            not_a_tensor,
            not_finite,
            reshaped,
            empty,
            values([0, 0, 1], [1, 2, 3], [-1, 0, 1], [2.0, 0.0, 1.0], [True, False], "210"),
        ]
    ),
)

for method, arg in (("forward", "x"), ("inverse", "y")):
    spec(
        f"impl.flows.coupling.Permutation.{method}",
        valid=lambda arg=arg: {"self": PERMUTATION, arg: randn(4, 3)},
        wrong={arg: [*batch, mismatched(axis=1)]},
        call=_method(method),
    )

spec(
    "impl.flows.coupling.Flow",
    valid=lambda: dict(layers=[COUPLING_2D, PERMUTATION_2D]),
    wrong=dict(
        layers=[
            values(
                None,
                3,
                "ab",
                [COUPLING_2D, None],
                [COUPLING_2D, torch.nn.Linear(2, 2)],  # no inverse
                [COUPLING_2D, PERMUTATION],  # 2 and 3 dimensions
            )
        ]
    ),
)

for method, arg in (("forward", "x"), ("inverse", "z"), ("log_prob", "x")):
    spec(
        f"impl.flows.coupling.Flow.{method}",
        valid=lambda arg=arg: {"self": FLOW, arg: randn(4, 3)},
        wrong={arg: [*batch, mismatched(axis=1), float32]},
        call=_method(method),
    )

spec(
    "impl.flows.coupling.Flow.sample",
    valid=lambda: dict(self=FLOW, n=4, d=3, generator=generator()),
    wrong=dict(n=[bad_int(1)], d=[bad_int(1), values(2, 4)], generator=[not_generator]),
    call=_method("sample"),
)

spec(
    "impl.flows.coupling.realnvp",
    valid=lambda: dict(d=2, n_layers=1, width=4, generator=generator()),
    wrong=dict(
        d=[bad_int(1)], n_layers=[bad_int(1)], width=[bad_int(1)], generator=[not_generator]
    ),
)

spec(
    "impl.flows.coupling.train",
    valid=lambda: dict(
        flow=coupling.realnvp(2, 1, 4, generator()),
        sample_data=two_moons_like,
        steps=1,
        generator=generator(),
        batch=4,
        lr=1e-3,
    ),
    wrong=dict(
        flow=[
            values(None, "flow", torch.nn.Linear(2, 2), coupling.Flow([PERMUTATION_2D]))
        ],  # the last has nothing to train
        sample_data=wrong_sample_data,
        steps=[bad_int(0)],
        generator=[not_generator],
        batch=[bad_int(1)],
        lr=positive,
    ),
)


# impl.flows.matching

spec(
    "impl.flows.matching.ot_path",
    valid=lambda: dict(x0=randn(5, 3), x1=randn(5, 3, seed=1), t=rand(5, 1), sigma_min=0.1),
    wrong=dict(
        x0=[*tensor, also("x1")(mismatched())],
        x1=[*tensor, also("x0")(mismatched())],
        t=[*time, mismatched(axis=0)],
        sigma_min=sigma_min,
    ),
)

spec(
    "impl.flows.matching.conditional_field",
    valid=lambda: dict(
        x=randn(5, 5),
        x1=randn(5, 5, seed=1),
        t=0.3,
        mu=0.3 * randn(5, 5, seed=1),
        dmu=randn(5, 5, seed=1),
        sigma=0.7,
        dsigma=-1.0,
    ),
    wrong=dict(
        x=[*tensor, also("x1")(mismatched())],
        x1=[*tensor, also("x")(mismatched())],
        t=time,
        mu=[not_a_number, not_finite, also("x")(mismatched())],
        dmu=[not_a_number, not_finite, also("x")(mismatched())],
        sigma=positive,
        dsigma=[not_finite, not_a_number],
    ),
)

spec(
    "impl.flows.matching.ot_conditional_field",
    valid=lambda: dict(x=randn(5, 5), x1=randn(5, 5, seed=1), t=0.9 * rand(5, 1), sigma_min=0.0),
    wrong=dict(
        x=[*tensor, also("x1")(mismatched())],
        x1=[*tensor, also("x")(mismatched())],
        t=[*time, also("x")(mismatched(axis=0)), values(1.0)],  # t = 1 needs sigma_min > 0
        sigma_min=sigma_min,
    ),
)

for name in ("ot_marginal_field", "ot_marginal_log_density"):
    spec(
        f"impl.flows.matching.{name}",
        valid=lambda: dict(data=DATA, x=randn(4, 2), t=0.5, sigma_min=0.0),
        wrong=dict(
            data=[values(None, "data", 3, DATA.means)],
            x=[*batch, mismatched(axis=1)],
            t=[*time, values(torch.full((4, 1), 0.5))]
            + ([values(1.0)] if name == "ot_marginal_field" else []),  # sigma_1 = 0: no field
            sigma_min=sigma_min,
        ),
    )

spec(
    "impl.flows.matching.rectified_flow_pair",
    valid=lambda: dict(x0=randn(5, 3), x1=randn(5, 3, seed=1), t=rand(5, 1)),
    wrong=dict(
        x0=[*tensor, also("x1")(mismatched())],
        x1=[*tensor, also("x0")(mismatched())],
        t=[*time, mismatched(axis=0)],
    ),
)

spec(
    "impl.flows.matching.euler_t",
    valid=lambda: dict(velocity=cnf_field, x0=randn(4, 2), n=3),
    wrong=dict(velocity=wrong_velocity, x0=tensor, n=[bad_int(1)]),
)

spec(
    "impl.flows.matching.euler_sigma",
    valid=lambda: dict(velocity_sigma=cnf_field, x_noise=randn(4, 2), sigmas=[1.0, 0.6, 0.2, 0.0]),
    wrong=dict(
        velocity_sigma=wrong_velocity,
        x_noise=tensor,
        sigmas=[
            not_finite,
            outside(0, None),
            reshaped,
            empty,
            not_a_number,
            values([1.0], [0.0, 0.5, 1.0], [1.0, 0.5, 0.5, 0.0], ["1", "0"]),
        ],
    ),
)

spec(
    "impl.flows.matching.t_velocity_as_sigma",
    valid=lambda: dict(velocity_t=cnf_field),
    wrong=dict(velocity_t=[not_callable]),
)

spec(
    "impl.flows.matching.shift",
    valid=lambda: dict(sigma=torch.linspace(1, 0, 5, dtype=F64), s=3.0),
    wrong=dict(sigma=[*time, values(None, torch.zeros(2, dtype=torch.long) + 2)], s=positive),
)

spec(
    "impl.flows.matching.VelocityMLP",
    valid=lambda: dict(d=2, width=4),
    wrong=dict(d=[bad_int(1)], width=[bad_int(1)]),
)

spec(
    "impl.flows.matching.VelocityMLP.forward",
    valid=lambda: dict(self=VELOCITY, x=randn(5, 2), t=rand(5)),
    wrong=dict(
        x=[*batch, mismatched(axis=1), float32],
        t=[*time, also("x")(mismatched())],
    ),
    call=_method("forward"),
)

spec(
    "impl.flows.matching.train_rectified_flow",
    valid=lambda: dict(
        model=matching.VelocityMLP(2, width=4),
        sample_data=two_moons_like,
        steps=1,
        generator=generator(),
        batch=4,
        lr=1e-3,
    ),
    wrong=dict(
        model=[values(None, "model", torch.nn.Linear(3, 2))],
        sample_data=wrong_sample_data,
        steps=[bad_int(0)],
        generator=[not_generator],
        batch=[bad_int(1)],
        lr=positive,
    ),
)


# impl.flows.toy

spec(
    "impl.flows.toy.two_moons",
    valid=lambda: dict(n=5, generator=generator(), noise=0.1),
    wrong=dict(n=[bad_int(1)], generator=[not_generator], noise=[outside(0, None), *positive[1:]]),
)


# impl.flows.marginal and impl.flows.pushforward (FLOW-10..FLOW-15)

exempt(
    "impl.flows.marginal.GaussianPath",
    "the abstract base of OT, VE and VP: it takes no arguments and has no coefficients itself",
)

OT_PATH = marginal.OT(0.1)
wrong_path = [values(None, "OT", 3, DATA)]

spec("impl.flows.marginal.OT", valid=lambda: dict(sigma_min=0.1), wrong=dict(sigma_min=sigma_min))
spec(
    "impl.flows.marginal.VE",
    valid=lambda: dict(sigma_lo=0.01, sigma_hi=50.0),
    wrong=dict(sigma_lo=positive, sigma_hi=[*positive, values(0.005)]),
)
spec(
    "impl.flows.marginal.VP",
    valid=lambda: dict(beta_min=0.1, beta_max=20.0),
    wrong=dict(beta_min=positive, beta_max=positive),
)

for name, first in (
    ("psi", "x"),
    ("psi_inverse", "y"),
    ("psi_dot", "x"),
    ("conditional_field", "y"),
    ("middle_member_as_written", "y"),
):
    spec(
        f"impl.flows.marginal.{name}",
        valid=lambda first=first: {
            "path": OT_PATH,
            first: randn(5, 3),
            "x1": randn(5, 3, seed=1),
            "t": 0.3,
        },
        wrong={
            "path": wrong_path,
            first: [*tensor, also("x1")(mismatched())],
            "x1": [*tensor, also(first)(mismatched())],
            "t": [*time, values(torch.full((2,), 0.3, dtype=F64))],
        },
    )

spec(
    "impl.flows.marginal.conditional_log_density",
    valid=lambda: dict(path=OT_PATH, x=randn(5, 5), x1=randn(5, 5, seed=1), t=0.3),
    wrong=dict(
        path=wrong_path,
        x=[*tensor, also("x1")(mismatched())],
        x1=[*tensor, also("x")(mismatched())],
        t=[*time, values(torch.full((2,), 0.3, dtype=F64))],
    ),
)

for name in ("marginal_log_density", "posterior_mean", "marginal_field"):
    spec(
        f"impl.flows.marginal.{name}",
        valid=lambda: dict(path=OT_PATH, data=DATA, x=randn(4, 2), t=0.5),
        wrong=dict(
            path=wrong_path,
            data=[values(None, "data", 3, DATA.means)],
            x=[*batch, mismatched(axis=1)],
            t=[*time, values(torch.full((4, 1), 0.5, dtype=F64))],
        ),
    )


def first_column(x):
    return x[:, :1]


def returns_none(x):
    return None


def reflect(x):
    return pushforward.reflection(x)


wrong_inverse = [not_callable, values(first_column, returns_none)]

spec(
    "impl.flows.pushforward.jacobian_det",
    valid=lambda: dict(inverse=reflect, x=randn(4, 2)),
    wrong=dict(inverse=wrong_inverse, x=batch),
)

for name in ("push_forward_as_written", "change_of_variables"):
    spec(
        f"impl.flows.pushforward.{name}",
        valid=lambda: dict(log_p0=std_normal_log_density, inverse=reflect, x=randn(4, 2)),
        wrong=dict(
            log_p0=[
                not_callable,
                values(log_density_per_entry, log_density_scalar, log_density_none),
            ],
            inverse=wrong_inverse,
            x=batch,
        ),
    )

spec("impl.flows.pushforward.reflection", valid=lambda: dict(x=randn(4, 2)), wrong=dict(x=batch))

spec(
    "impl.flows.pushforward.coupling_inverse",
    valid=lambda: dict(y=randn(4, 2), scale=-0.5),
    wrong=dict(y=[*batch, mismatched(axis=1)], scale=[values(0.0, 0), not_finite, not_a_number]),
)
