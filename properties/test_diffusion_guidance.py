"""CFG-01..CFG-06: classifier and classifier-free guidance (impl/diffusion/guidance.py), checked
on Gaussian-mixture oracles whose scores and class posteriors are exact.

Budget for comparing two float64 evaluations of mixture scores: the log-densities log pi_k N(x)
are off by about u (|log p_k| + d^2) each, which moves the softmax weights by as much, and the
linear solves add d^2 u relative: 64 u (K + d^2 + max |log p_k|) (|score| + 1) per entry.
"""

import numpy as np
import torch
from hypothesis import find, given
from hypothesis import strategies as st

from impl.diffusion import cfg_training, ddim, guidance, oracle, schedules
from properties import stats
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.strategies import floats, seeds
from properties.tolerances import assert_close

F64 = torch.float64
U = 2.0**-53
ABAR = schedules.alphas_cumprod(schedules.linear_betas())


@st.composite
def mixtures(draw):
    d = draw(st.integers(1, 3))
    K = draw(st.integers(2, 4))
    seed = draw(seeds)
    gen = seed.torch()
    means = 2 * torch.randn(K, d, generator=gen, dtype=F64)
    std = draw(floats(0.3, 1.5))
    classes = torch.tensor([k % 2 for k in range(K)])
    weights = torch.softmax(torch.randn(K, generator=gen, dtype=F64), 0)
    return oracle.isotropic_mixture(means, std, weights, classes), seed


def grad_log_classifier(g, x, a, y):
    x = x.clone().requires_grad_(True)
    torch.log(g.class_posterior(x, a)[:, y]).sum().backward()
    return x.grad


def budget(g, x, a, *values):
    logp = g._components(x, a)[0]
    scale = sum(v.abs() for v in values) + 1
    return 64 * U * (g.means.shape[0] + g.d**2 + logp.abs().max().item()) * scale


@st.composite
def points(draw):
    g, seed = draw(mixtures())
    a = draw(floats(1e-3, 0.999))
    x = 3 * torch.randn(16, g.d, generator=seed.torch(), dtype=F64)
    return g, a, x, draw(st.integers(0, 1))


@claim("CFG-01")
@given(case=points())
def test_bayes_rule_for_scores(case):
    g, a, x, y = case
    lhs = g.restrict(y).score(x, a)
    grad = grad_log_classifier(g, x, a, y)
    rhs = g.score(x, a) + grad
    assert_close(
        lhs,
        rhs,
        ulps=0,
        abs_floor=budget(g, x, a, lhs, grad),
        what="grad log p(x|y) - (grad log p(x) + grad log p(y|x))",
    )
    current().summary = (
        "grad log p(x|y) = grad log p(x) + grad log p(y|x) on random mixtures, noise levels, points"
    )


@claim("CFG-02")
@given(d=st.integers(1, 4), seed=seeds, s2=floats(0.01, 4.0))
def test_gaussian_times_linear_tilt_is_a_shifted_gaussian(d, seed, s2):
    gen = seed.torch()
    mu, g_vec = torch.randn(2, d, generator=gen, dtype=F64)
    x = 3 * torch.randn(32, d, generator=gen, dtype=F64)
    shifted = guidance.guided_mean(mu, s2, g_vec, 1.0)

    def log_normal(x, m):
        return -0.5 * ((x - m) ** 2).sum(1) / s2

    diff = log_normal(x, mu) + x @ g_vec - log_normal(x, shifted)  # must not depend on x
    scale = ((x - mu) ** 2).sum(1) / s2 + (x @ g_vec).abs() + ((x - shifted) ** 2).sum(1) / s2
    assert_close(diff - diff[0], torch.zeros_like(diff), ulps=0, abs_floor=16 * d * U * (scale + scale[0]),
                 what="log N(mu) + g.x - log N(mu + s^2 g): constant in x")  # fmt: skip
    current().summary = "N(mu, s^2 I) exp(g.x) = N(mu + s^2 g, s^2 I) up to a constant"


@claim("CFG-02")
@given(case=points(), gamma=floats(0.0, 5.0))
def test_eps_form_of_classifier_guidance(case, gamma):
    """eps - sqrt(1 - a) gamma grad log p(y|x) = -sqrt(1 - a) (score + gamma grad log p(y|x)); at
    gamma = 1 it is the class-conditional eps."""
    g, a, x, y = case
    grad = grad_log_classifier(g, x, a, y)
    guided = guidance.classifier_guided_eps(g.eps(x, a), a, grad, gamma)
    want = -((1 - a) ** 0.5) * (g.score(x, a) + gamma * grad)
    assert_close(
        guided, want, ulps=0, abs_floor=budget(g, x, a, guided, grad) * (1 + gamma), what="eps form"
    )
    conditional = guidance.classifier_guided_eps(g.eps(x, a), a, grad, 1.0)
    assert_close(conditional, g.restrict(y).eps(x, a), ulps=0, abs_floor=budget(g, x, a, conditional, grad),
                 what="gamma = 1: conditional eps")  # fmt: skip


TWO_CLASSES = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.0]], 0.8, classes=[0, 1])


def tilted_score_1d(g, y, gamma, a, x):
    """Score at x of the noised tilted density p_gamma(x0) ~ p(x0) p(y|x0)^gamma, by quadrature on
    a grid of 8001 points on [-12, 12] (the Gaussians' tails beyond it are below 1e-30)."""
    grid = torch.linspace(-12, 12, 8001, dtype=F64)[:, None]
    log_w = g.log_density(grid, 1.0) + gamma * torch.log(g.class_posterior(grid, 1.0)[:, y])
    log_k = -0.5 * (x - a**0.5 * grid[:, 0]) ** 2 / (1 - a) + log_w
    r = torch.softmax(log_k, 0)
    return float((r * (-(x - a**0.5 * grid[:, 0]) / (1 - a))).sum())


@claim(refutes="CFG-03.tilted-distribution")
def test_guided_score_is_not_the_score_of_the_tilted_distribution():
    g = oracle.isotropic_mixture([[-1.0], [1.0]], 0.8, classes=[0, 1])

    def matches(case):
        gamma, a, x = case
        xt = torch.tensor([[x]], dtype=F64)
        guided = float(g.score(xt, a)[0, 0] + gamma * grad_log_classifier(g, xt, a, 1)[0, 0])
        return abs(guided - tilted_score_1d(g, 1, gamma, a, x)) <= 1e-6

    cases = st.tuples(
        st.sampled_from([1.0, 2.0, 3.0]),
        st.sampled_from([0.999, 0.5, 0.1]),
        st.sampled_from([0.0, 0.5, -1.0]),
    )
    gamma, a, x = refute(cases, matches, claim="CFG-03.tilted-distribution",
                         describe=lambda c: f"gamma = {c[0]}, abar_t = {c[1]}, x = {c[2]}")  # fmt: skip
    xt = torch.tensor([[x]], dtype=F64)
    guided = float(g.score(xt, a)[0, 0] + gamma * grad_log_classifier(g, xt, a, 1)[0, 0])
    at_one = abs(
        float(g.score(xt, a)[0, 0] + grad_log_classifier(g, xt, a, 1)[0, 0])
        - tilted_score_1d(g, 1, 1.0, a, x)
    )
    current().record(
        guided_score=guided, tilted_score=tilted_score_1d(g, 1, gamma, a, x), gamma_1_gap=at_one
    )
    current().summary = (
        f"gamma = {gamma}, abar_t = {a}, x = {x}: guided score {guided:.3f} vs the noised tilted "
        f"density's {tilted_score_1d(g, 1, gamma, a, x):.3f} (exact at gamma = 1: gap {at_one:.1e})"
    )


def guided_samples(gamma, n=4000, steps=50):
    ts = schedules.timesteps(1000, steps, "leading")

    def eps(x, t):
        a = float(ABAR[t])
        return guidance.classifier_guided_eps(
            TWO_CLASSES.eps(x, a), a, grad_log_classifier(TWO_CLASSES, x, a, 1), gamma
        )

    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    return ddim.sample(eps, x_T, ABAR, ts, 1.0, torch.Generator().manual_seed(1))


@claim("CFG-03.tradeoff")
def test_guidance_scale_trades_diversity_for_fidelity():
    """Two classes N((-1, 0), 0.64 I), N((1, 0), 0.64 I); DDIM (eta = 1, 50 steps), 4000 samples
    with common noise for gamma in {0, 1, 2, 4}. Fidelity: p(y = 1 | x_0) rises for more than half
    of the paired samples (sign test, alpha = 1e-7). Diversity: the spread |x - mean|^2 falls (a
    one-sided test of its paired mean difference, normal approximation, alpha = 1e-7)."""
    gammas = (0.0, 1.0, 2.0, 4.0)
    samples = {gamma: guided_samples(gamma) for gamma in gammas}
    conf = {k: TWO_CLASSES.class_posterior(x, 1.0)[:, 1] for k, x in samples.items()}
    spread = {k: ((x - x.mean(0)) ** 2).sum(1) for k, x in samples.items()}
    for lo, hi in zip(gammas, gammas[1:], strict=False):
        stats.binomial_exceeds(
            int((conf[hi] > conf[lo]).sum()),
            4000,
            0.5,
            what=f"confidence up from gamma {lo} to {hi}",
        )
        stats.mean_negative(
            (spread[hi] - spread[lo]).numpy(), what=f"spread down from gamma {lo} to {hi}"
        )
    table = {k: (float(conf[k].mean()), float(spread[k].mean())) for k in gammas}
    current().record(
        **{
            f"gamma = {k}: mean p(y|x), mean |x - mean|^2": f"{c:.3f}, {s:.3f}"
            for k, (c, s) in table.items()
        }
    )

    def draw(fig):
        ax = fig.subplots()
        ax.plot(gammas, [table[k][0] for k in gammas], "o-", label="fidelity: mean p(y=1 | x_0)")
        ax2 = ax.twinx()
        ax2.plot(
            gammas,
            [table[k][1] for k in gammas],
            "s--",
            color="C1",
            label="diversity: mean |x_0 - mean|^2",
        )
        ax.set_xlabel("guidance scale gamma")
        ax.set_ylabel("fidelity")
        ax2.set_ylabel("diversity")
        fig.legend(loc="center right")
        ax.set_title("Classifier guidance on a two-class Gaussian oracle (DDIM, 50 steps)")

    figure("cfg03_tradeoff", draw)
    current().summary = "raising gamma raises p(y|x_0) and shrinks the spread (0 -> 1 -> 2 -> 4)"


@claim("CFG-04")
@given(seed=seeds, w=floats(-2.0, 20.0))
def test_the_two_parametrisations_agree(seed, w):
    eps_c, eps_u = torch.randn(2, 32, generator=seed.torch(), dtype=F64)
    s = 1 + w
    a, b = guidance.cfg_w(eps_c, eps_u, w), guidance.cfg_s(eps_c, eps_u, s)
    scale = (abs(s) + abs(w) + 2) * (eps_c.abs() + eps_u.abs())
    assert_close(
        a, b, ulps=4, scale=scale, what="(1 + w) eps_c - w eps_u - (eps_u + s (eps_c - eps_u))"
    )
    assert torch.equal(guidance.cfg_s(eps_c, eps_u, 0.0), eps_u)
    assert_close(
        guidance.cfg_s(eps_c, eps_u, 1.0),
        eps_c,
        ulps=2,
        scale=eps_c.abs() + eps_u.abs(),
        what="s = 1",
    )
    assert torch.equal(guidance.cfg_s(eps_u, eps_u, s), eps_u), (
        "independent of s when eps_c = eps_u"
    )
    mid = guidance.cfg_s(eps_c, eps_u, s / 2)  # linear in s: the midpoint of s = 0 and s
    assert_close(mid, (eps_u + b) / 2, ulps=8, scale=scale, what="linearity in s")
    current().summary = (
        "(1 + w) eps_c - w eps_u = eps_u + s (eps_c - eps_u); s = 0, 1, linearity, eps_c = eps_u"
    )


@claim("CFG-05")
@given(case=points(), s=floats(0.0, 10.0))
def test_cfg_is_classifier_guidance_with_the_bayes_classifier(case, s):
    g, a, x, y = case
    eps_c, eps_u = g.restrict(y).eps(x, a), g.eps(x, a)
    grad = grad_log_classifier(g, x, a, y)
    cfg = guidance.cfg_s(eps_c, eps_u, s)
    on_u = guidance.classifier_guided_eps(eps_u, a, grad, s)
    on_c = guidance.classifier_guided_eps(eps_c, a, grad, s - 1)
    tol = budget(g, x, a, cfg, grad, eps_c, eps_u) * (1 + s)
    assert_close(
        cfg, on_u, ulps=0, abs_floor=tol, what="CFG - classifier guidance (scale s) on eps_u"
    )
    assert_close(
        cfg, on_c, ulps=0, abs_floor=tol, what="CFG - classifier guidance (scale s - 1) on eps_c"
    )
    implied = guidance.implied_classifier_grad(eps_c, eps_u, a)
    assert_close(
        implied, grad, ulps=0, abs_floor=tol / (1 - a) ** 0.5, what="implied classifier gradient"
    )
    current().summary = (
        "CFG(s) = classifier guidance with the Bayes classifier, scale s on eps_u or s - 1 on eps_c"
    )


def _relative_errors(net, g, n=400):
    gen = torch.Generator().manual_seed(5)
    x0, y = g.sample(n, gen)
    t = torch.randint(0, 1000, (n,), generator=gen)
    a = ABAR[t]
    x_t = a.sqrt()[:, None] * x0 + (1 - a).sqrt()[:, None] * torch.randn(
        n, g.d, generator=gen, dtype=F64
    )
    with torch.no_grad():
        e_c = net(x_t.float(), a.float(), y).double()
        e_u = net(x_t.float(), a.float(), torch.full_like(y, net.n_classes)).double()
    star_c = torch.cat([g.restrict(int(y[i])).eps(x_t[i : i + 1], float(a[i])) for i in range(n)])
    star_u = torch.cat([g.eps(x_t[i : i + 1], float(a[i])) for i in range(n)])

    def rel(e, s):
        return float(((e - s) ** 2).sum(1).mean() / (s**2).sum(1).mean())

    return rel(e_c, star_c), rel(e_u, star_u)


def test_eps_network_is_the_written_out_mlp():
    """eps(x, a, c) = W3 silu(W2 silu(W1 [x, sqrt(a), sqrt(1 - a), E c] + b1) + b2) + b3, with
    an embedding row E c for each of the K labels and one for the null label K."""
    import pytest

    K, d = 3, 2
    model = cfg_training.EpsMLP(d, K, width=8)
    assert model.n_classes == K
    x = torch.randn(4, d, generator=torch.Generator().manual_seed(0))
    a = torch.tensor([0.9, 0.5, 0.2, 0.01])
    c = torch.tensor([0, 1, 2, K])
    l1, l2, l3 = (m for m in model.net if isinstance(m, torch.nn.Linear))
    f = torch.cat([x, a.sqrt()[:, None], (1 - a).sqrt()[:, None], model.embed.weight[c]], dim=1)
    silu = torch.nn.functional.silu
    want = l3(silu(l2(silu(l1(f)))))
    # the same float32 operations in another order at most: a few u = 6e-8 of O(1) values
    assert torch.allclose(model(x, a, c), want, rtol=0, atol=1e-6)
    with pytest.raises(IndexError):
        model(x[:1], a[:1], torch.tensor([K + 1]))


@claim("CFG-06")
def test_condition_dropout_trains_one_network_for_both():
    """Two classes in 2-D; a 128-wide MLP trained 1500 Adam steps (batch 512) with p_uncond = 0.1
    predicts both the conditional and the unconditional optimal eps (relative squared error
    < 0.05 against the oracle); trained with p_uncond = 0 (negative control) its null-label output
    is at least 5x worse."""
    g = oracle.isotropic_mixture([[-1.0, 0.0], [1.0, 0.0]], 0.5, classes=[0, 1])
    with_dropout = _relative_errors(
        cfg_training.train(g, ABAR, 0.1, 1500, torch.Generator().manual_seed(0)), g
    )
    without = _relative_errors(
        cfg_training.train(g, ABAR, 0.0, 1500, torch.Generator().manual_seed(0)), g
    )
    assert with_dropout[0] < 0.05 and with_dropout[1] < 0.05, with_dropout
    assert without[1] > 5 * with_dropout[1], (without, with_dropout)
    current().record(
        p_uncond_0_1=np.round(with_dropout, 4).tolist(), p_uncond_0=np.round(without, 4).tolist()
    )
    current().summary = (
        f"p_uncond = 0.1: relative errors {with_dropout[0]:.3f} (conditional), {with_dropout[1]:.3f} "
        f"(unconditional); p_uncond = 0: unconditional {without[1]:.3f}"
    )


@claim("CFG-02")
def test_negative_control_sign_flip_in_guidance():
    """eps + sqrt(1 - a) gamma grad log p(y|x) (the sign flipped) fails the gamma = 1 check above:
    it moves away from the class instead of giving the conditional eps."""

    def flipped_matches(case):
        g, a, x, y = case
        grad = grad_log_classifier(g, x, a, y)
        wrong = g.eps(x, a) + (1 - a) ** 0.5 * grad
        return bool(
            torch.all((wrong - g.restrict(y).eps(x, a)).abs() <= budget(g, x, a, wrong, grad))
        )

    case = find(points(), lambda c: not flipped_matches(c))
    current().record(sign_flip_rejected_at=f"abar_t = {case[1]:.3g}, class {case[3]}")


@claim("CFG-04")
def test_negative_control_w_for_s_confusion():
    """Passing w as the guidance_scale s (s = w instead of 1 + w) is rejected by the agreement
    check above whenever eps_c != eps_u: eps_u + w (eps_c - eps_u) differs from (1 + w) eps_c - w eps_u
    by eps_c - eps_u."""
    eps_c, eps_u = torch.randn(2, 32, generator=torch.Generator().manual_seed(0), dtype=F64)
    w = 7.5
    wrong, right = guidance.cfg_s(eps_c, eps_u, w), guidance.cfg_w(eps_c, eps_u, w)
    assert_close(wrong - right, eps_u - eps_c, ulps=64, scale=(eps_c.abs() + eps_u.abs()) * (2 * w + 2),
                 what="(s = w) - (w parametrisation) = -(eps_c - eps_u)")  # fmt: skip
    assert float((wrong - right).abs().max()) > 1.0
