"""Bad-input specs: impl/diffusion/ schedules, ddpm, ddim, guidance, cfg_training."""

import numpy as np
import torch
from hypothesis import strategies as st

from impl.diffusion import cfg_training, ddim_article, oracle, schedules
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


def gen():
    return torch.Generator().manual_seed(0)


# a 10-step linear schedule: abar decreasing from 0.9999 to about 0.9
ABAR = schedules.alphas_cumprod(torch.linspace(1e-4, 0.02, 10, dtype=F64))
TIMESTEPS = [7, 4, 0]
MODEL = cfg_training.EpsMLP(2, 2, width=8)  # forward does not mutate it
MIXTURE = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.0]], 0.5, classes=[0, 1])


# area-local makers -------------------------------------------------------------------------


def below(other, equal=False):
    """A number in [0, kwargs[other]) (or [0, other] with `equal`): out of the order other <= arg."""
    return Maker(
        lambda kw, arg: st.floats(0.0, float(kw[other]), exclude_max=not equal),
        f"below({other!r})",
    )


def _not_decreasing(kw, arg):
    v = kw[arg]
    if isinstance(v, torch.Tensor):
        return st.sampled_from([v.flip(0), torch.cat([v[:1], v])])
    return st.sampled_from([list(reversed(v)), [v[0], *v]])


not_decreasing = Maker(_not_decreasing, "not_decreasing")


def int_entry(bad, last=True):
    """One entry of a list or tensor (not the last one unless `last`) replaced by a value of
    bad(kwargs)."""

    def make(kw, arg):
        v = kw[arg]

        @st.composite
        def broken(draw):
            k = draw(st.integers(0, len(v) - 1 - (not last)))
            value = draw(st.sampled_from(bad(kw)))
            if isinstance(v, torch.Tensor):
                w = v.clone()
                w[k] = value
                return w
            return [*v[:k], value, *v[k + 1 :]]

        return broken()

    return Maker(make, "int_entry")


float_labels = Maker(lambda kw, arg: st.just(kw[arg].to(F64)), "float_labels")
other_dtype = Maker(
    lambda kw, arg: st.just(kw[arg].to(torch.float32 if kw[arg].dtype == F64 else F64)),
    "other_dtype",
)
bad_generator = values(3, "seed", np.random.default_rng(0))
bad_model = values(lambda x, t: x[:1], lambda x, t: x * float("nan"), lambda x, t: None)
antiparallel = Maker(
    lambda kw, arg: st.floats(0.1, 10.0).map(lambda c: -c * kw["x_a"]), "antiparallel"
)
zero_vector = Maker(lambda kw, arg: st.just(torch.zeros_like(kw[arg])), "zero_vector")
not_uniform = Maker(
    lambda kw, arg: st.integers(1, kw[arg].numel() - 2).map(
        lambda k: torch.cat([kw[arg][:k], kw[arg][k + 1 :]])
    ),
    "not_uniform",
)

TENSOR = [not_finite, not_a_tensor, complex_dtype]
LEVEL = [not_finite, not_a_number]  # plus the interval of each
SEQUENCE = [not_finite, not_a_tensor, reshaped, empty, complex_dtype]
SCHEDULE = [outside(0, 1), not_decreasing, *SEQUENCE]  # abar
STEPS = [int_entry(lambda kw: [-1, 10, 12]), not_decreasing, outside(0, 9), not_a_tensor, empty]


def other_tensor(name):
    return [also(name)(mismatched()), not_finite, not_a_tensor, complex_dtype]


# schedules -------------------------------------------------------------------------------------

for fn, start, end in (("linear_betas", 1e-4, 0.02), ("scaled_linear_betas", 0.00085, 0.012)):
    spec(
        f"impl.diffusion.schedules.{fn}",
        valid=lambda start=start, end=end: dict(T=10, beta_start=start, beta_end=end),
        wrong=dict(
            T=[bad_int(1)],
            beta_start=[outside(0, 1, lo_open=True), *LEVEL],
            beta_end=[outside(0, 1, lo_open=True), *LEVEL],
        ),
    )

spec(
    "impl.diffusion.schedules.cosine_betas",
    valid=lambda: dict(T=10, s=0.008, max_beta=0.999),
    wrong=dict(
        T=[bad_int(1)],
        s=[outside(0, 1), *LEVEL],
        max_beta=[outside(0, 1, lo_open=True), *LEVEL],
    ),
)

BETAS = [
    outside(0, 1, lo_open=True),
    int_entry(lambda kw: [1.0], last=False),  # beta = 1 before the last step (allowed last)
    *SEQUENCE,
]
spec(
    "impl.diffusion.schedules.alphas_cumprod",
    valid=lambda: dict(betas=torch.linspace(1e-4, 0.02, 10, dtype=F64)),
    wrong=dict(betas=BETAS),
)
spec(
    "impl.diffusion.schedules.rescale_zero_terminal_snr",
    valid=lambda: dict(betas=torch.linspace(1e-4, 0.02, 10, dtype=F64)),
    wrong=dict(betas=[*BETAS, values(torch.tensor([0.1], dtype=F64), [0.02])]),
)
spec(
    "impl.diffusion.schedules.check_abar",
    valid=lambda: dict(abar=ABAR.clone()),
    wrong=dict(abar=[*SCHEDULE, values(torch.tensor([0.0, 0.0]), [0.0])]),
)
spec(
    "impl.diffusion.schedules.timesteps",
    valid=lambda: dict(T=10, n=4, spacing="leading"),
    wrong=dict(
        T=[bad_int(1)],
        n=[bad_int(1), values(11, 100)],
        spacing=[bad_choice("leading", "trailing", "linspace", "ddim-linear", "ddim-quadratic")],
    ),
)
spec(
    "impl.diffusion.schedules.check_timesteps",
    valid=lambda: dict(timesteps=list(TIMESTEPS), T=10),
    wrong=dict(timesteps=STEPS, T=[bad_int(1)]),
)

for fn, first, second, interval in (
    ("eps_to_x0", "x_t", "eps", outside(0, 1, lo_open=True)),
    ("x0_to_eps", "x_t", "x0", outside(0, 1, hi_open=True)),
    ("to_v", "x0", "eps", outside(0, 1)),
    ("v_to_eps", "x_t", "v", outside(0, 1)),
    ("v_to_x0", "x_t", "v", outside(0, 1)),
):
    spec(
        f"impl.diffusion.schedules.{fn}",
        valid=lambda first=first, second=second: {
            first: randn(4, 3),
            second: randn(4, 3),
            "a": 0.5,
        },
        wrong={first: TENSOR, second: other_tensor(first), "a": [interval, *LEVEL]},
    )

# ddpm ------------------------------------------------------------------------------------------

spec(
    "impl.diffusion.ddpm.q_sample",
    valid=lambda: dict(x0=randn(4, 3), a=0.5, eps=randn(4, 3)),
    wrong=dict(
        x0=[not_finite, not_a_tensor],
        a=[outside(0, 1), not_finite, not_a_number],
        eps=[also("x0")(mismatched()), not_finite, not_a_tensor],
    ),
)
spec(
    "impl.diffusion.ddpm.posterior",
    valid=lambda: dict(x_t=randn(4, 3), x0=randn(4, 3), a=0.3, b=0.6),
    wrong=dict(
        x_t=TENSOR,
        x0=other_tensor("x_t"),
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddpm.posterior_variance_article",
    valid=lambda: dict(a=0.3, b=0.6),
    wrong=dict(
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True, hi_open=True), below("a", equal=True), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddpm.ancestral_step",
    valid=lambda: dict(
        x_t=randn(4, 3), eps_hat=randn(4, 3), a=0.3, b=0.6, z=randn(4, 3), variance="posterior"
    ),
    wrong=dict(
        x_t=TENSOR,
        eps_hat=other_tensor("x_t"),
        a=[outside(0, 1, lo_open=True, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
        z=other_tensor("x_t"),
        variance=[bad_choice("posterior", "large")],
    ),
)


def sampler(**extra):
    return lambda: dict(
        eps_model=lambda x, t: 0.1 * x,
        x_T=randn(3, 2),
        abar=ABAR.clone(),
        timesteps=list(TIMESTEPS),
        generator=gen(),
        **extra,
    )


SAMPLER = dict(
    eps_model=[not_callable, bad_model],
    x_T=TENSOR,
    abar=SCHEDULE,
    timesteps=STEPS,
    generator=[bad_generator],
)
spec(
    "impl.diffusion.ddpm.sample",
    valid=sampler(variance="posterior"),
    wrong=SAMPLER | dict(variance=[bad_choice("posterior", "large")]),
)

# ddim ------------------------------------------------------------------------------------------

ETA = [outside(0, None), *LEVEL]
spec(
    "impl.diffusion.ddim.sigma_paper",
    valid=lambda: dict(eta=0.5, a=0.3, b=0.6),
    wrong=dict(
        eta=ETA,
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddim.sigma_article",
    valid=lambda: dict(eta=0.5, a=0.3, b=0.6, alpha_t=0.9),
    wrong=dict(
        eta=ETA,
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
        alpha_t=[outside(0, 1), *LEVEL],
    ),
)
SIGMA = [outside(0, None), values(0.7, 1.0, 5.0), *LEVEL]  # sigma^2 <= 1 - b = 0.4
spec(
    "impl.diffusion.ddim.coefficients",
    valid=lambda: dict(a=0.3, b=0.6, sigma=0.2),
    wrong=dict(
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
        sigma=SIGMA,
    ),
)
spec(
    "impl.diffusion.ddim.step",
    valid=lambda: dict(
        x_t=randn(4, 3), eps_hat=randn(4, 3), a=0.3, b=0.6, sigma=0.2, z=randn(4, 3)
    ),
    wrong=dict(
        x_t=TENSOR,
        eps_hat=other_tensor("x_t"),
        a=[outside(0, 1, lo_open=True, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
        sigma=SIGMA,
        z=other_tensor("x_t"),
    ),
)
spec(
    "impl.diffusion.ddim.article_timesteps",
    valid=lambda: dict(T=10, n=4),
    wrong=dict(T=[bad_int(1)], n=[bad_int(1), values(11, 100)]),
)
spec(
    "impl.diffusion.ddim.single_step_alpha",
    valid=lambda: dict(abar=ABAR.clone(), t=5),
    wrong=dict(abar=SCHEDULE, t=[bad_int(0, 9)]),
)
spec(
    "impl.diffusion.ddim.step_sigma",
    valid=lambda: dict(rule="paper", eta=0.5, abar=ABAR.clone(), t=5, b=ABAR[2].item()),
    wrong=dict(
        rule=[bad_choice("paper", "article")],
        eta=ETA,
        abar=SCHEDULE,
        t=[bad_int(0, 9)],
        b=[outside(0, 1, lo_open=True), values(ABAR[7].item(), 0.5), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddim.plan",
    valid=lambda: dict(
        abar=ABAR.clone(), timesteps=list(TIMESTEPS), eta=0.5, sigma="paper", to_data=True
    ),  # fmt: skip
    wrong=dict(
        abar=SCHEDULE,
        timesteps=STEPS,
        eta=[*ETA, values(50.0)],  # sigma^2 > 1 - b
        sigma=[bad_choice("paper", "article")],
        to_data=[values(None, "yes", 2, 1.0)],
    ),
)
spec(
    "impl.diffusion.ddim.sample",
    valid=sampler(eta=0.5, sigma="paper", to_data=True),
    wrong=SAMPLER
    | dict(
        eta=[*ETA, values(50.0)],
        sigma=[bad_choice("paper", "article")],
        to_data=[values(None, "yes", 2, 1.0)],
    ),
)
spec(
    "impl.diffusion.ddim.invert",
    valid=lambda: dict(
        eps_model=lambda x, t: 0.1 * x, x0=randn(3, 2), abar=ABAR.clone(), timesteps=list(TIMESTEPS)
    ),
    wrong=dict(eps_model=[not_callable, bad_model], x0=TENSOR, abar=SCHEDULE, timesteps=STEPS),
)
spec(
    "impl.diffusion.ddim.ode_euler_step",
    valid=lambda: dict(x_t=randn(4, 3), eps_hat=randn(4, 3), a=0.3, b=0.6),
    wrong=dict(
        x_t=TENSOR,
        eps_hat=other_tensor("x_t"),
        a=[outside(0, 1, lo_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddim.slerp",
    valid=lambda: dict(x_a=randn(5), x_b=randn(2, 5)[1], u=0.3),
    wrong=dict(
        x_a=[*TENSOR, zero_vector],
        x_b=[*other_tensor("x_a"), zero_vector, antiparallel],
        u=[outside(0, 1), *LEVEL],
    ),
)

# ddim_article (the DDIM article's own code) -----------------------------------------------------

ARTICLE = ddim_article.DDIM(num_train_timesteps=10, sample_steps=4, dtype=F64)  # 9, 6, 3, 0
ARTICLE_ETA = [outside(0, None), *LEVEL, values(50.0)]  # 50: sigma_t^2 > 1 - abar_tau at 3 -> 0
spec(
    "impl.diffusion.ddim_article.ansatz_variance",
    valid=lambda: dict(a=0.3, b=0.6, sigma=0.2, rho=0.5),
    wrong=dict(
        a=[outside(0, 1, hi_open=True), *LEVEL],
        b=[outside(0, 1, lo_open=True), below("a"), *LEVEL],
        sigma=SIGMA,
        rho=[outside(-1, 1), *LEVEL],
    ),
)
spec(
    "impl.diffusion.ddim_article.correlated_normals",
    valid=lambda: dict(rho=0.5, n=5, generator=gen()),
    wrong=dict(rho=[outside(-1, 1), *LEVEL], n=[bad_int(1)], generator=[bad_generator]),
)
spec(
    "impl.diffusion.ddim_article.article_alphas_cumprod",
    valid=lambda: dict(alphas=1 - torch.linspace(1e-4, 0.02, 10, dtype=F64)),
    wrong=dict(alphas=[outside(0, 1, lo_open=True), *SEQUENCE]),
)
BAD_DTYPE = values(torch.int64, torch.float16, "float32", None)
spec(
    "impl.diffusion.ddim_article.DDIM",
    valid=lambda: dict(
        num_train_timesteps=10, beta_start=1e-4, beta_end=0.02, sample_steps=4, dtype=torch.float32
    ),  # fmt: skip
    wrong=dict(
        num_train_timesteps=[bad_int(1)],
        beta_start=[outside(0, 1, lo_open=True, hi_open=True), *LEVEL],
        beta_end=[outside(0, 1, lo_open=True, hi_open=True), *LEVEL],
        sample_steps=[bad_int(1), values(11, 100)],
        dtype=[BAD_DTYPE],
    ),
)
spec(
    "impl.diffusion.ddim_article.DDIM.sigma",
    valid=lambda: dict(self=ARTICLE, t=6, tau=3, eta=0.5),
    wrong=dict(t=[bad_int(0, 9)], tau=[bad_int(0, 9), values(6, 7)], eta=ARTICLE_ETA[:-1]),
    call=lambda self, **kw: self.sigma(**kw),
)
spec(
    "impl.diffusion.ddim_article.DDIM.step",
    valid=lambda: dict(
        self=ARTICLE,
        images=randn(4, 3),
        pred_noise=randn(2, 4, 3)[1],
        t=3,
        tau=0,
        eta=0.5,
        epsilon=randn(3, 4, 3)[2],
    ),  # fmt: skip
    wrong=dict(
        images=TENSOR,
        pred_noise=other_tensor("images"),
        t=[bad_int(0, 9)],
        tau=[bad_int(0, 9), values(3, 7)],
        eta=ARTICLE_ETA,
        epsilon=other_tensor("images"),
    ),
    call=lambda self, **kw: self.step(**kw),
)
spec(
    "impl.diffusion.ddim_article.DDIM.sample",
    valid=lambda: dict(
        self=ARTICLE,
        eps_model=lambda x, t: 0.1 * x,
        x_T=randn(3, 2),
        eta=0.5,
        generator=gen(),
        trace=[],
    ),  # fmt: skip
    wrong=dict(
        eps_model=[not_callable, bad_model],
        x_T=[*TENSOR, values(randn(3, 2).float())],
        eta=ARTICLE_ETA,
        generator=[bad_generator],
        trace=[values("list", 3, {})],
    ),
    call=lambda self, **kw: self.sample(**kw),
)
spec(
    "impl.diffusion.ddim_article.to_image",
    valid=lambda: dict(images=randn(2, 3)),
    wrong=dict(images=[not_a_tensor, complex_dtype, values(torch.ones(3, dtype=torch.long))]),
)
spec(
    "impl.diffusion.ddim_article.to_uint8",
    valid=lambda: dict(image=torch.rand(2, 3, generator=gen(), dtype=F64)),
    wrong=dict(image=[*TENSOR, outside(0, 1)]),
)
spec(
    "impl.diffusion.ddim_article.slerp",
    valid=lambda: dict(x0=randn(2, 5), x1=randn(3, 2, 5)[2], alpha=0.3),
    wrong=dict(
        x0=[not_a_tensor, complex_dtype, zero_vector],
        x1=[also("x0")(mismatched()), not_a_tensor, complex_dtype, zero_vector],
        alpha=[outside(0, 1), *LEVEL],
    ),
)
CORNER = [also("top_left")(mismatched()), not_finite, not_a_tensor, complex_dtype, zero_vector]
spec(
    "impl.diffusion.ddim_article.grid_from_corners",
    valid=lambda: dict(
        top_left=randn(3, seed=1),
        top_right=randn(3, seed=2),
        bottom_left=randn(3, seed=3),
        bottom_right=randn(3, seed=4),
        rows=3,
        cols=4,
    ),  # fmt: skip
    wrong=dict(
        top_left=[*TENSOR, zero_vector],
        top_right=[*CORNER, values(randn(3, seed=2).float())],
        bottom_left=CORNER,
        bottom_right=CORNER,
        rows=[bad_int(2)],
        cols=[bad_int(2)],
    ),
)
spec(
    "impl.diffusion.ddim_article.interpolation_grid",
    valid=lambda: dict(
        rows=3, cols=4, in_channels=2, sample_size=3, generator=gen(), dtype=torch.float32
    ),  # fmt: skip
    wrong=dict(
        rows=[bad_int(2)],
        cols=[bad_int(2)],
        in_channels=[bad_int(1)],
        sample_size=[bad_int(1)],
        generator=[bad_generator],
        dtype=[BAD_DTYPE],
    ),
)

# guidance --------------------------------------------------------------------------------------

spec(
    "impl.diffusion.guidance.guided_mean",
    valid=lambda: dict(mu=randn(4, 3), s2=0.5, grad_log_classifier=randn(2, 4, 3)[1], gamma=2.0),
    wrong=dict(
        mu=TENSOR,
        s2=[outside(0, None), *LEVEL],
        grad_log_classifier=other_tensor("mu"),
        gamma=LEVEL,
    ),
)
spec(
    "impl.diffusion.guidance.classifier_guided_eps",
    valid=lambda: dict(eps=randn(4, 3), a=0.5, grad_log_classifier=randn(2, 4, 3)[1], gamma=2.0),
    wrong=dict(
        eps=TENSOR,
        a=[outside(0, 1), *LEVEL],
        grad_log_classifier=other_tensor("eps"),
        gamma=LEVEL,
    ),
)
for fn, scale in (("cfg_w", "w"), ("cfg_s", "s")):
    spec(
        f"impl.diffusion.guidance.{fn}",
        valid=lambda scale=scale: {"eps_c": randn(4, 3), "eps_u": randn(2, 4, 3)[1], scale: 3.0},
        wrong={"eps_c": TENSOR, "eps_u": other_tensor("eps_c"), scale: LEVEL},
    )
spec(
    "impl.diffusion.guidance.implied_classifier_grad",
    valid=lambda: dict(eps_c=randn(4, 3), eps_u=randn(2, 4, 3)[1], a=0.5),
    wrong=dict(eps_c=TENSOR, eps_u=other_tensor("eps_c"), a=[outside(0, 1, hi_open=True), *LEVEL]),
)


def tilted():
    grid = torch.linspace(-3, 3, 7, dtype=F64)
    return dict(
        grid=grid,
        log_p0=-(grid**2) / 2,
        log_classifier0=torch.nn.functional.logsigmoid(grid),
        gamma=1.5,
        a=0.5,
        x=randn(4),
    )


spec(
    "impl.diffusion.guidance.tilted_score",
    valid=tilted,
    wrong=dict(
        grid=[*SEQUENCE, not_uniform, not_decreasing],
        log_p0=other_tensor("grid"),
        log_classifier0=other_tensor("grid"),
        gamma=LEVEL,
        a=[outside(0, 1, lo_open=True, hi_open=True), *LEVEL],
        x=[*TENSOR, reshaped],
    ),
)

# cfg_training ----------------------------------------------------------------------------------

spec(
    "impl.diffusion.cfg_training.EpsMLP",
    valid=lambda: dict(d=2, n_classes=2, width=8),
    wrong=dict(d=[bad_int(1)], n_classes=[bad_int(1)], width=[bad_int(1)]),
)
LABELS = [int_entry(lambda kw: [-1, 3, 7]), float_labels, not_a_tensor, reshaped]
spec(
    "impl.diffusion.cfg_training.EpsMLP.forward",
    valid=lambda: dict(
        self=MODEL,
        x=randn(4, 2).float(),
        a=torch.tensor([0.9, 0.5, 0.2, 0.01]),
        c=torch.tensor([0, 1, 2, 1]),
    ),  # fmt: skip
    wrong=dict(
        x=[*TENSOR, reshaped, also("a", "c")(mismatched()), other_dtype],
        a=[outside(0, 1), not_finite, not_a_tensor, reshaped, also("x")(mismatched()), other_dtype],
        c=[*LABELS, also("x")(mismatched())],
    ),
    call=lambda self, **kw: self.forward(**kw),
)
spec(
    "impl.diffusion.cfg_training.drop_labels",
    valid=lambda: dict(y=torch.tensor([0, 1, 1, 0]), p_uncond=0.3, n_classes=2, generator=gen()),
    wrong=dict(
        y=[int_entry(lambda kw: [-1, 2, 5]), float_labels, not_a_tensor, reshaped],
        p_uncond=[outside(0, 1), *LEVEL],
        n_classes=[bad_int(1)],
        generator=[bad_generator],
    ),
)
spec(
    "impl.diffusion.cfg_training.train",
    valid=lambda: dict(
        data=MIXTURE, abar=ABAR.clone(), p_uncond=0.1, steps=1, generator=gen(), batch=4, lr=1e-3
    ),  # fmt: skip
    wrong=dict(
        data=[values(None, "x", 3, torch.zeros(2))],
        abar=SCHEDULE,
        p_uncond=[outside(0, 1), *LEVEL],
        steps=[bad_int(1)],
        generator=[bad_generator],
        batch=[bad_int(1)],
        lr=[outside(0, None, lo_open=True), *LEVEL],
    ),
)

# thresholding (SD-13, SD-18) ---------------------------------------------------------------------

X0_HAT = [not_finite, not_a_tensor, complex_dtype, empty]
NOT_A_FLAG = values(None, "yes", 1, 0.5)
spec(
    "impl.diffusion.thresholding.static_threshold",
    valid=lambda: dict(x0_hat=3 * randn(4, 6)),
    wrong=dict(x0_hat=X0_HAT),
)
spec(
    "impl.diffusion.thresholding.percentile_s",
    valid=lambda: dict(x0_hat=3 * randn(4, 6), p=0.99),
    wrong=dict(x0_hat=X0_HAT, p=[outside(0, 1), *LEVEL]),
)
spec(
    "impl.diffusion.thresholding.dynamic_threshold",
    valid=lambda: dict(x0_hat=3 * randn(4, 6), p=0.99, divide=True),
    wrong=dict(x0_hat=X0_HAT, p=[outside(0, 1), *LEVEL], divide=[NOT_A_FLAG]),
)
spec(
    "impl.diffusion.thresholding.display",
    valid=lambda: dict(x=3 * randn(4, 6)),
    wrong=dict(x=X0_HAT),
)
spec(
    "impl.diffusion.thresholding.saturated_fraction",
    valid=lambda: dict(x=3 * randn(4, 6), tol=1e-6),
    wrong=dict(x=X0_HAT, tol=[outside(0, 1, hi_open=True), *LEVEL]),
)
spec(
    "impl.diffusion.thresholding.process",
    valid=lambda: dict(method="dynamic", x0_hat=3 * randn(4, 6), p=0.99),
    wrong=dict(
        method=[bad_choice("none", "static", "dynamic", "as-written")],
        x0_hat=X0_HAT,
        p=[outside(0, 1), *LEVEL],
    ),
)
spec(
    "impl.diffusion.thresholding.sample",
    valid=lambda: dict(
        eps_model=lambda x, t: 0.1 * x,
        x_T=randn(3, 2),
        abar=ABAR.clone(),
        timesteps=list(TIMESTEPS),
        method="dynamic",
        p=0.99,
        to_data=True,
    ),
    wrong=dict(
        eps_model=[not_callable, bad_model],
        x_T=[*TENSOR, empty],
        abar=SCHEDULE,
        timesteps=STEPS,
        method=[bad_choice("none", "static", "dynamic", "as-written")],
        p=[outside(0, 1), *LEVEL],
        to_data=[NOT_A_FLAG],
    ),
)
