"""Bad-input specs: impl/diffusion/sde.py (score SDEs), impl/diffusion/oracle.py (Gaussian-mixture
oracles) and impl/ode.py (the fixed-step and adaptive integrators)."""

import numpy as np
import torch
from hypothesis import strategies as st

from impl import ode
from impl.diffusion import oracle, sde
from properties.badinput import spec
from properties.badinput.wrong import (
    Maker,
    also,
    bad_choice,
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


# area-local makers

not_sde = values(None, "VP", 3.0, sde.VP)  # the class itself, not an instance
not_generator = values("seed", 3, 0.5, np.random.default_rng(0))
time = [outside(0, 1), not_finite, not_a_number]  # a time t in [0, 1]
positive = [outside(0, None, lo_open=True), not_finite, not_a_number]  # a number > 0


def _covariance_broken(kind):
    """One covariance of the valid (K, d, d) stack made non-symmetric, indefinite or singular."""

    def make(kwargs, arg):
        c = torch.as_tensor(kwargs[arg], dtype=F64)

        @st.composite
        def broken(draw):
            b = c.clone()
            k = draw(st.integers(0, b.shape[0] - 1))
            if kind == "asymmetric":
                i, j = draw(st.sampled_from([(0, 1), (1, 0)]))
                b[k, i, j] += draw(st.sampled_from([1e-3, 0.1, -0.2]))
            elif kind == "indefinite":
                b[k] = -b[k] if draw(st.booleans()) else b[k] - 10 * torch.eye(b.shape[1])
            else:  # singular: rank one
                v = b[k, 0]
                b[k] = torch.outer(v, v)
            return b

        return broken()

    return Maker(make, f"covariance_{kind}")


def _weights_not_summing_to_one(kwargs, arg):
    w = torch.as_tensor(kwargs[arg], dtype=F64)
    return st.sampled_from([0.5, 0.999, 1.001, 2.0]).map(lambda s: (w * s).tolist())


asymmetric = _covariance_broken("asymmetric")
indefinite = _covariance_broken("indefinite")
singular = _covariance_broken("singular")
not_summing_to_one = Maker(_weights_not_summing_to_one, "not_summing_to_one")

# impl/diffusion/sde.py

for cls, lo, hi in (("VP", "beta_min", "beta_max"), ("SubVP", "beta_min", "beta_max")):
    spec(
        f"impl.diffusion.sde.{cls}",
        valid=lambda: dict(beta_min=0.1, beta_max=20.0),
        wrong={lo: positive, hi: positive},
    )
spec(
    "impl.diffusion.sde.VE",
    valid=lambda: dict(sigma_min=0.01, sigma_max=50.0),
    wrong=dict(
        sigma_min=[*positive, also("sigma_max")(values(50.0, 60.0))],
        sigma_max=[*positive, also("sigma_min")(values(0.01, 0.005))],
    ),
)

PROCESSES = dict(VP=sde.VP(), SubVP=sde.SubVP(), VE=sde.VE())
X = randn(3, 2)
METHODS = dict(
    VP=("beta", "integral", "g", "kernel"), SubVP=("g", "kernel"), VE=("sigma", "g", "kernel")
)
for cls, methods in METHODS.items():
    for method in methods:
        spec(
            f"impl.diffusion.sde.{cls}.{method}",
            valid=lambda cls=cls: dict(self=PROCESSES[cls], t=0.3),
            wrong=dict(t=time),
            call=lambda self, method=method, **kw: getattr(self, method)(**kw),
        )
for cls in ("VP", "VE"):
    spec(
        f"impl.diffusion.sde.{cls}.f",
        valid=lambda cls=cls: dict(self=PROCESSES[cls], x=X, t=0.3),
        wrong=dict(x=[not_finite, not_a_tensor, complex_dtype], t=time),
        call=lambda self, **kw: self.f(**kw),
    )


def score(x, t):
    return -x


def prior(x):
    return -0.5 * (x**2).sum(-1)


x_wrong = [not_finite, not_a_tensor, reshaped, empty, complex_dtype]  # a batch (n, d)
forward = dict(
    sde=[not_sde],
    x=x_wrong,
    t0=[*time, also("t1")(values(0.6, 0.9))],
    t1=[*time, also("t0")(values(0.1, 0.05))],
    n=[bad_int(1)],
    generator=[not_generator],
)
spec(
    "impl.diffusion.sde.euler_maruyama",
    valid=lambda: dict(sde=PROCESSES["VP"], x=X, t0=0.1, t1=0.6, n=3, generator=None),
    wrong=forward,
)
backward = dict(
    forward,
    score=[not_callable],
    t1=[*time, also("t0")(values(0.5, 0.3))],
    t0=[*time, also("t1")(values(0.6, 0.9))],
)
spec(
    "impl.diffusion.sde.reverse_euler_maruyama",
    valid=lambda: dict(sde=PROCESSES["VE"], score=score, x=X, t1=0.6, t0=0.5, n=3, generator=None),
    wrong=backward,
)
spec(
    "impl.diffusion.sde.predictor_corrector",
    valid=lambda: dict(
        sde=PROCESSES["VP"], score=score, x=X, t1=0.6, t0=0.5, n=3, generator=None, snr=0.16
    ),
    wrong=dict(backward, snr=positive),
)
drift_wrong = dict(
    sde=[not_sde], score=[not_callable], x=[not_finite, not_a_tensor, complex_dtype], t=time
)
spec(
    "impl.diffusion.sde.reverse_drift",
    valid=lambda: dict(sde=PROCESSES["SubVP"], score=score, x=X, t=0.3),
    wrong=drift_wrong,
)
spec(
    "impl.diffusion.sde.ode_drift",
    valid=lambda: dict(sde=PROCESSES["VP"], score=score, x=X, t=0.3, half=True),
    wrong=dict(drift_wrong, half=[values(None, "yes", 0.5, 2)]),
)
spec(
    "impl.diffusion.sde.hutchinson",
    valid=lambda: dict(jvp_probe=lambda v: 2 * v, v=X),
    wrong=dict(jvp_probe=[not_callable], v=[not_finite, not_a_tensor, empty, complex_dtype]),
)
spec(
    "impl.diffusion.sde.probes",
    valid=lambda: dict(kind="rademacher", shape=(3, 2), generator=None, dtype=F64),
    wrong=dict(
        kind=[bad_choice("rademacher", "gaussian")],
        shape=[values((0, 2), (-1, 2), (2.5, 1), (True, 2), "ab", None, 3, ())],
        generator=[not_generator],
        dtype=[values(torch.int64, torch.complex128, torch.bool, "float64", None, np.float64)],
    ),
)
spec(
    "impl.diffusion.sde.log_likelihood",
    valid=lambda: dict(
        sde=PROCESSES["VP"],
        score=score,
        prior_log_density=prior,
        x0=X,
        n=2,
        t_eps=0.0,
        generator=None,
        probe="rademacher",
    ),
    wrong=dict(
        sde=[not_sde],
        score=[not_callable],
        prior_log_density=[not_callable],
        x0=x_wrong,
        n=[bad_int(1)],
        t_eps=[outside(0, 1, hi_open=True), not_finite, not_a_number],
        generator=[not_generator],
        probe=[values("uniform", "", "Gaussian", 1, True)],
    ),
)
consistency = dict(
    t=[values(0.001, 0.0, -1.0), not_finite, not_a_number],
    sigma_data=positive,
    eps=[also("t")(outside(0, None, lo_open=True)), not_finite, not_a_number],
)
spec(
    "impl.diffusion.sde.consistency_coefficients",
    valid=lambda: dict(t=1.0, sigma_data=0.5, eps=0.002),
    wrong=consistency,
)
spec(
    "impl.diffusion.sde.consistency_function",
    valid=lambda: dict(F=lambda x, t: x + t, x=X, t=1.0, sigma_data=0.5, eps=0.002),
    wrong=dict(consistency, F=[not_callable], x=[not_finite, not_a_tensor, empty, complex_dtype]),
)

# impl/diffusion/oracle.py

COVARIANCES = [[[0.5, 0.1], [0.1, 0.3]], [[0.2, -0.05], [-0.05, 0.7]]]


def mixture_kwargs():
    return dict(
        weights=[0.4, 0.6],
        means=[[0.1, -0.3], [1.7, 0.9]],
        covariances=torch.tensor(COVARIANCES, dtype=F64),
        classes=[0, 1],
    )


spec(
    "impl.diffusion.oracle.GaussianMixture",
    valid=mixture_kwargs,
    wrong=dict(
        weights=[
            outside(0, 1),
            not_finite,
            not_summing_to_one,
            also("means")(mismatched()),
            not_a_tensor,
            empty,
        ],
        means=[
            not_finite,
            reshaped,
            also("weights", "covariances")(mismatched()),
            not_a_tensor,
            empty,
            complex_dtype,
        ],
        covariances=[
            asymmetric,
            indefinite,
            singular,
            not_finite,
            reshaped,
            also("means")(mismatched()),
            not_a_tensor,
            complex_dtype,
        ],
        classes=[values([0, -1], [0.5, 1.0], [0], [0, 1, 1], [[0, 1]], "ab", [True, False])],
    ),
)
MIXTURE = oracle.GaussianMixture(**mixture_kwargs())
POINTS = randn(4, 2)
x_points = [not_finite, not_a_tensor, reshaped, also("self")(mismatched(axis=1)), complex_dtype]
abar = [outside(0, 1), not_finite, not_a_number]
s2_wrong = [outside(0, None), not_finite, values("0.5", [1.0, 2.0], {"x": 1})]
for method, extra, wrong_extra in (
    ("log_density", dict(s2=4.0), dict(s2=s2_wrong)),
    ("score", dict(s2=4.0), dict(s2=s2_wrong)),
    ("responsibilities", {}, {}),
    ("eps", {}, {}),
    ("class_posterior", {}, {}),
):
    spec(
        f"impl.diffusion.oracle.GaussianMixture.{method}",
        valid=lambda extra=extra: dict(self=MIXTURE, x=POINTS, a=0.5, **extra),
        wrong=dict(x=x_points, a=abar, **wrong_extra),
        call=lambda self, method=method, **kw: getattr(self, method)(**kw),
    )
spec(
    "impl.diffusion.oracle.GaussianMixture.x0_mean",
    valid=lambda: dict(self=MIXTURE, x=POINTS, a=0.5),
    wrong=dict(x=x_points, a=[outside(0, 1, lo_open=True), not_finite, not_a_number]),
    call=lambda self, **kw: self.x0_mean(**kw),
)
class_label = values(-1, 2, 0.5, "0", None, True)
spec(
    "impl.diffusion.oracle.GaussianMixture.restrict",
    valid=lambda: dict(self=MIXTURE, y=1),
    wrong=dict(y=[class_label]),
    call=lambda self, **kw: self.restrict(**kw),
)
spec(
    "impl.diffusion.oracle.GaussianMixture.sample",
    valid=lambda: dict(self=MIXTURE, n=5, generator=None),
    wrong=dict(n=[bad_int(1)], generator=[not_generator]),
    call=lambda self, **kw: self.sample(**kw),
)
ABAR = torch.linspace(0.99, 0.01, 10, dtype=F64)
spec(
    "impl.diffusion.oracle.GaussianMixture.eps_model",
    valid=lambda: dict(self=MIXTURE, abar=ABAR, y=1),
    wrong=dict(
        abar=[outside(0, 1), not_finite, not_a_tensor, reshaped, empty, complex_dtype],
        y=[values(-1, 2, 0.5, "0", True)],
    ),
    call=lambda self, **kw: self.eps_model(**kw),
)
spec(
    "impl.diffusion.oracle.isotropic_mixture",
    valid=lambda: dict(
        means=[[0.1, -0.3], [1.7, 0.9]], std=0.5, weights=[0.3, 0.7], classes=[1, 0]
    ),
    wrong=dict(
        means=[not_finite, reshaped, not_a_tensor, empty],
        std=positive,
        weights=[outside(0, 1), not_finite, not_summing_to_one, also("means")(mismatched())],
        classes=[values([0, -1], [0.5, 1.0], [0], [0, 1, 1], "ab")],
    ),
)

# impl/ode.py


def drift(x, t):
    return -x * (1 + t)


def interval(wrong_start, wrong_end):
    return dict(
        t_start=[*time, also("t_end")(values(wrong_start))],
        t_end=[*time, also("t_start")(values(wrong_end))],
    )


spec(
    "impl.ode.grid",
    valid=lambda: dict(t_start=1.0, t_end=0.2, n=4),
    wrong=dict(interval(0.2, 1.0), n=[bad_int(1)]),
)
ode_wrong = dict(
    interval(0.2, 1.0),
    drift=[not_callable],
    x=[not_finite, not_a_tensor, empty, complex_dtype],
    n=[bad_int(1)],
)
spec(
    "impl.ode.ode_solve",
    valid=lambda: dict(drift=drift, x=X, t_start=1.0, t_end=0.2, n=3, method="heun"),
    wrong=dict(ode_wrong, method=[bad_choice("euler", "heun")]),
)
spec(
    "impl.ode.solve_with_divergence",
    valid=lambda: dict(
        drift=drift, x=X, t_start=1.0, t_end=0.2, n=2, divergence=ode.divergence_exact
    ),
    wrong=dict(ode_wrong, x=[*ode_wrong["x"], reshaped], divergence=[not_callable]),
)
spec(
    "impl.ode.ode_solve_adaptive",
    valid=lambda: dict(drift=drift, x=X, t_start=1.0, t_end=0.2, rtol=1e-3),
    wrong=dict(
        {k: v for k, v in ode_wrong.items() if k != "n"},
        rtol=[outside(0, 1, lo_open=True, hi_open=True), not_finite, not_a_number],
    ),
)
divergence_wrong = dict(
    drift=[not_callable], x=[not_finite, not_a_tensor, reshaped, empty, complex_dtype], t=time
)
spec(
    "impl.ode.divergence_exact",
    valid=lambda: dict(drift=drift, x=X, t=0.3),
    wrong=divergence_wrong,
)
spec(
    "impl.ode.divergence_hutchinson",
    valid=lambda: dict(drift=drift, x=X, t=0.3, v=randn(3, 2, seed=1)),
    wrong=dict(
        divergence_wrong, v=[also("x")(mismatched()), not_finite, not_a_tensor, complex_dtype]
    ),
)
