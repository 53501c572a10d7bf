"""DDIM-12..DDIM-16: the DDIM article's full text -- two derivation steps, what its sampler
returns, its interpolation grid, and sampling consistency (impl/diffusion/ddim_article.py, the
article's own code; impl/diffusion/ddim.py, the project's DDIM).

Rounding budgets are written beside each comparison; u = 2^-53 (float64) unless a property runs
the article's float32 code, where eps32 = 2^-23.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from impl.diffusion import ddim, oracle, schedules
from properties import profiles, stats
from properties.catalogue import claim
from properties.evidence import current, figure, refute
from properties.strategies import floats, seeds
from properties.test_diffusion_ddim import U, step_budget, step_inputs
from properties.tolerances import assert_close

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
ABAR = schedules.alphas_cumprod(schedules.linear_betas())
REFERENCE_CALLS = {
    "test_grid_rows_are_not_slerps_of_their_own_endpoints": "the per-row SLERP (ddim.slerp on each "
    "row's own endpoints) is the reference the article's batch slerp is compared with",
}


# DDIM-12: the mean collapses ------------------------------------------------------------------


@claim("DDIM-12")
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0))
def test_the_mean_collapses(diffusion, inputs, fraction):
    """lambda x0_hat + k x_t = sqrt(b) x0_hat + sqrt(1 - b - sigma^2) eps_theta for ANY x_t and
    eps_theta (x_t is drawn on its own, scale 3, not from x_0), every tau < t (tau = -1: the
    data, b = 1) and every sigma^2 <= 1 - b; lambda and k from ddim.coefficients (DDIM-03).

    Budget (the step's, properties/test_diffusion_ddim.step_budget, x4 as DDIM-04): x0_hat's
    rounding delta enters the two sides times lambda and sqrt(b), which differ by k sqrt(a) <= 1;
    lambda's own rounding (<= 4 u) multiplies |x0_hat| <= (|x_t| + |eps|)/sqrt(a); the products
    and sums add u (sqrt(b/a) + 1)(|x_t| + |eps|) each."""
    t, tau, a, b, x_t, eps, _ = inputs
    sigma = fraction * (1 - b) ** 0.5
    lam, k = diffusion.coefficients(a, b, sigma)
    x0_hat = schedules.eps_to_x0(x_t, eps, a)
    lhs = lam * x0_hat + k * x_t
    rhs = b**0.5 * x0_hat + max(1 - b - sigma**2, 0.0) ** 0.5 * eps
    budget = step_budget(x_t, eps, torch.zeros_like(x_t), a, b) * 4
    assert_close(lhs, rhs, ulps=0, abs_floor=budget,
                 what="lambda x0_hat + k x_t - (sqrt(b) x0_hat + sqrt(1 - b - sigma^2) eps)")  # fmt: skip
    current().summary = (
        "lambda x0_hat + k x_t = sqrt(abar_tau) x0_hat + sqrt(1 - abar_tau - sigma^2) eps_theta "
        "to round-off, for arbitrary x_t and eps_theta: the complicated terms cancel"
    )


# DDIM-13: merging the noise terms -------------------------------------------------------------


@claim("DDIM-13.independent")
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0))
def test_merged_variance_with_independent_noises(diffusion, inputs, fraction):
    """rho = 0: Var(x_tau | x_0) = k^2 (1 - a) + sigma^2 = 1 - b (a few roundings of numbers
    <= 1: 16 u absolute, as DDIM-03)."""
    _, _, a, b, *_ = inputs
    sigma = fraction * (1 - b) ** 0.5
    assert_close(diffusion.ansatz_variance(a, b, sigma, 0.0), 1 - b, ulps=16,
                 what="Var(x_tau | x_0) at rho = 0 - (1 - abar_tau)")  # fmt: skip
    current().summary = "with independent eps_t, eps_tau the ansatz has variance 1 - abar_tau"


def _ansatz_samples(diffusion, a, b, sigma, x0, rho, n, seed):
    """x_tau = lambda x_0 + k x_t + sigma eps_tau, x_t = sqrt(a) x_0 + sqrt(1 - a) eps_t, with
    (eps_t, eps_tau) drawn with correlation rho by impl."""
    lam, k = diffusion.coefficients(a, b, sigma)
    eps_t, eps_tau = diffusion.correlated_normals(rho, n, torch.Generator().manual_seed(seed))
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps_t
    return lam * x0 + k * x_t + sigma * eps_tau


@claim("DDIM-13.independent")
@profiles.statistical()
@given(inputs=step_inputs(), fraction=floats(0.0, 1.0), x0=floats(-3, 3), seed=seeds)
def test_the_merged_law_with_independent_noises(diffusion, inputs, fraction, x0, seed):
    """Monte Carlo: n = 4000 draws of the ansatz's x_tau with independent (eps_t, eps_tau) from
    impl are N(sqrt(b) x_0, 1 - b) (stats.normal_law at alpha = stats.ALPHA = 1e-7)."""
    _, _, a, b, *_ = inputs
    sigma = fraction * (1 - b) ** 0.5
    x_tau = _ansatz_samples(diffusion, a, b, sigma, x0, 0.0, 4000, seed)
    if b == 1:  # tau = -1, the data: sigma = k = 0, lambda = 1
        assert torch.equal(x_tau, torch.full_like(x_tau, x0)), "x_tau at abar_tau = 1 is x_0"
        return
    stats.normal_law(x_tau.numpy(), b**0.5 * x0, 1 - b,
                     what="ansatz x_tau (independent noises) vs N(sqrt(b) x_0, 1 - b)")  # fmt: skip


merge_cases = st.tuples(
    st.integers(1, 999).flatmap(lambda t: st.tuples(st.just(t), st.integers(0, t - 1))),
    floats(0.0, 1.0),
    floats(-1.0, 1.0),
)


@claim(refutes="DDIM-13.standard-normal-only")
def test_two_standard_normals_do_not_merge_unless_independent(diffusion):
    """The article's reason ("both standard normal") with correlation rho: Var = k^2 (1 - a) +
    sigma^2 + 2 rho k sqrt(1 - a) sigma. The minimal (t, tau, sigma/sqrt(1 - b), rho) whose
    variance misses 1 - b by more than its rounding, then a Monte Carlo check at that case
    (n = 20000, alpha = 1e-7): the draws follow the computed variance.

    Rounding: 16 u as at rho = 0, plus the cross term's: D = 1 - b - sigma^2 is computed within
    3 u (1 - b), so k sqrt(1 - a) = sqrt(D) is within sqrt(3 u (1 - b)) (near sigma^2 = 1 - b,
    where D is all rounding) and 2 rho k sqrt(1 - a) sigma within 2 sqrt(3 u) (1 - b) <=
    4 sqrt(u) (1 - b)."""

    def merged(case):
        (t, tau), fraction, rho = case
        a, b = ABAR[t].item(), ABAR[tau].item()
        v = diffusion.ansatz_variance(a, b, fraction * (1 - b) ** 0.5, rho)
        return abs(v - (1 - b)) <= 16 * U + 4 * U**0.5 * (1 - b)

    (t, tau), fraction, rho = refute(merge_cases, merged, claim="DDIM-13.standard-normal-only",
        describe=lambda c: f"t = {c[0][0]}, tau = {c[0][1]}, sigma = {c[1]} sqrt(1 - abar_tau), "
                           f"rho = {c[2]}")  # fmt: skip
    a, b = ABAR[t].item(), ABAR[tau].item()
    sigma = fraction * (1 - b) ** 0.5
    v = diffusion.ansatz_variance(a, b, sigma, rho)
    x_tau = _ansatz_samples(diffusion, a, b, sigma, 0.5, rho, 20_000, 0)
    stats.normal_law(x_tau.numpy(), b**0.5 * 0.5, v,
                     what=f"ansatz x_tau (rho = {rho}) vs N(sqrt(b) x_0, computed variance)")  # fmt: skip
    current().record(abar_t=a, abar_tau=b, sigma=sigma, rho=rho, variance=v,
                     one_minus_abar_tau=1 - b, sample_variance=float(x_tau.var()))  # fmt: skip
    current().discrepancy(
        what="Var(k sqrt(1 - abar_t) eps_t + sigma eps_tau) for two standard normals",
        article="k^2 (1 - abar_t) + sigma^2 (= 1 - abar_tau), 'because both are standard normal'",
        computed=f"{v:.4g} = {v / (1 - b):.4f} (1 - abar_tau), 1 - abar_tau = {1 - b:.4g} "
        f"(the extra 2 rho k sqrt(1 - abar_t) sigma)",
        case=f"t = {t}, tau = {tau}, sigma = {fraction} sqrt(1 - abar_tau), rho = {rho}",
    )
    current().summary = (
        f"t = {t}, tau = {tau}, rho = {rho}: variance {v / (1 - b):.4f} (1 - abar_tau): "
        f"the merge needs eps_t and eps_tau independent, not only standard normal"
    )


# DDIM-14: what the article's sampler returns --------------------------------------------------
#
# Data: "images" of 3 x 8 x 8 pixels (the article's are 3 x 64 x 64; 8 x 8 keeps the oracle
# cheap) from a mixture of 4 template images (pixels uniform in [-0.8, 0.8]) with pixel noise
# 0.1, so that the images lie in [-1, 1]; the oracle eps-predictor on the article's own
# alphas_cumprod (0-based: index t is the noise level the model was trained with at t).

IMAGE = (3, 8, 8)


def _templates():
    g = torch.Generator().manual_seed(14)
    templates = torch.rand(4, math.prod(IMAGE), generator=g, dtype=F64) * 1.6 - 0.8
    return oracle.isotropic_mixture(templates, 0.1)


def _article_run(diffusion, dtype, n=16, seed=0):
    """The article's sampler (T = 1000, linear betas, 20 steps, eta = 0) on n images: (returned
    tensor before to_image, its trace, the sampler)."""
    sampler = diffusion.article_ddim(dtype=dtype)
    model = _templates().eps_model(sampler.alphas_cumprod.double())

    def eps_model(x, t):
        return model(x.reshape(len(x), -1).double(), t).reshape(x.shape).to(x.dtype)

    x_T = torch.randn(n, *IMAGE, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    trace = []
    out = sampler.sample(eps_model, x_T, 0.0, torch.Generator().manual_seed(seed + 1), trace)
    return out, trace, sampler


@claim(refutes="DDIM-14")
def test_the_article_sampler_returns_x_at_abar_index_0(diffusion):
    """At eta = 0 the article's sampler returns sqrt(abar[0]) x0_hat + sqrt(1 - abar[0]) eps_theta
    (its last step goes to tau = 0, abar[0] = 0.9999): an image differs from the last x0_hat by
    more than the step's rounding (4 u (|x0_hat| + |eps|), float64); the difference is
    (sqrt(abar[0]) - 1) x0_hat + sqrt(1 - abar[0]) eps_theta within 8 u (|x0_hat| + |eps|)."""
    out, trace, sampler = _article_run(diffusion, F64)
    assert sampler.timesteps.tolist() == diffusion.article_timesteps().tolist(), (
        "int(linspace(999, 0, 20))"
    )
    assert len(trace) == 19 and trace[-1]["tau"] == 0, "19 steps, the last one to tau = 0"
    x0_hat, eps = trace[-1]["x0_hat"], trace[-1]["pred_noise"]
    diff = out - x0_hat
    rounding = 4 * U * (x0_hat.abs() + eps.abs())

    def returns_x0_hat(i):
        return bool(torch.all(diff[i].abs() <= rounding[i]))

    i = refute(st.integers(0, len(out) - 1), returns_x0_hat, claim="DDIM-14",
               describe=lambda i: f"image {i} of x_T ~ N(0, I) (seed 0), eta = 0")  # fmt: skip
    a0 = sampler.alphas_cumprod[0].item()
    formula = (a0**0.5 - 1) * x0_hat + (1 - a0) ** 0.5 * eps
    assert_close(diff, formula, ulps=0, abs_floor=2 * rounding,
                 what="returned - x0_hat - ((sqrt(abar[0]) - 1) x0_hat + sqrt(1 - abar[0]) eps)")  # fmt: skip
    # the article's own dtype (float32) and its 8-bit output
    out32, trace32, _ = _article_run(diffusion, torch.float32)
    p_out = diffusion.to_uint8(diffusion.to_image(out32))
    p_x0 = diffusion.to_uint8(diffusion.to_image(trace32[-1]["x0_hat"]))
    changed = float((p_out != p_x0).double().mean())
    levels = int((p_out.int() - p_x0.int()).abs().max())
    current().record(abar_index_0=a0, coefficient_of_x0_hat=a0**0.5 - 1,
                     coefficient_of_eps=(1 - a0) ** 0.5,
                     max_abs_difference=float(diff.abs().max()),
                     mean_abs_difference=float(diff.abs().mean()),
                     fraction_of_8bit_pixels_changed=round(changed, 4),
                     max_8bit_level_difference=levels)  # fmt: skip
    current().discrepancy(
        what="the tensor the article's sampler returns (before x/2 + 0.5)",
        article="x_0 ('each x_T corresponds to a unique x_0')",
        computed=f"x at abar[0] = {a0:.6g}: x0_hat + ({a0**0.5 - 1:.3g}) x0_hat + "
        f"{(1 - a0) ** 0.5:.3g} eps_theta; mean |difference| {float(diff.abs().mean()):.2g}, "
        f"{changed:.0%} of the 8-bit pixel values differ from x0_hat's (up to {levels} levels)",
        case=f"image {i}, 3x8x8 oracle images, 20 steps, eta = 0",
    )
    current().summary = (
        f"the last step goes to tau = 0 where abar = {a0:.4f}: the output is "
        f"x0_hat + ({a0**0.5 - 1:.2g}) x0_hat + {(1 - a0) ** 0.5:.2g} eps_theta; "
        f"{changed:.0%} of 8-bit pixels differ from x0_hat's"
    )


# DDIM-15: the interpolation grid --------------------------------------------------------------


def _corners(d, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(d, generator=g, dtype=dtype) for _ in range(4)]


def _angle(x, y):
    c = float(torch.sum(x.double() * y.double()) / (x.double().norm() * y.double().norm()))
    return math.acos(max(-1.0, min(1.0, c)))


def _row_errors(grid, rows, cols):
    """Per row: the largest relative error ||grid - SLERP(own endpoints)|| / ||SLERP|| over its
    middle elements (the reference is ddim.slerp on the row's own endpoints, float64)."""
    g = grid.double().reshape(rows, cols, -1)
    out = []
    for r in range(rows):
        ref = [ddim.slerp(g[r, 0], g[r, -1], j / (cols - 1)) for j in range(1, cols - 1)]
        out.append(max(float((g[r, j] - x).norm() / x.norm()) for j, x in enumerate(ref, 1)))
    return out


grid_cases = st.tuples(
    st.integers(2, 4), st.integers(3, 8), st.integers(2, 16), st.integers(0, 2**16)
)


@claim(refutes="DDIM-15.per-row")
def test_grid_rows_are_not_slerps_of_their_own_endpoints(diffusion):
    """The grid (float64 corners) against a per-row SLERP of each row's own endpoints; a row
    differs when an element misses by more than the two slerps' rounding: the cosine of n
    entries is within (2 n + 6) u of exact, so each slerp is within 16 (n + 4) u |x| /
    sin(theta) (DDIM-11's budget), n = rows * d for the article's stacked call."""

    def per_row(case):
        rows, cols, d, seed = case
        grid = diffusion.grid_from_corners(*_corners(d, seed), rows, cols).reshape(rows, cols, d)
        stacked = _angle(grid[:, 0].reshape(-1), grid[:, -1].reshape(-1))
        for r in range(rows):
            left, right = grid[r, 0], grid[r, -1]
            scale = float(max(left.norm(), right.norm()))
            amplification = 1 / math.sin(stacked) + 1 / math.sin(_angle(left, right))
            budget = 16 * (rows * d + 4) * U * scale * amplification
            for j in range(1, cols - 1):
                ref = ddim.slerp(left, right, j / (cols - 1))
                if float((grid[r, j] - ref).abs().max()) > budget:
                    return False
        return True

    rows, cols, d, seed = refute(grid_cases, per_row, claim="DDIM-15.per-row",
        describe=lambda c: f"rows = {c[0]}, cols = {c[1]}, d = {c[2]}, corners seed {c[3]}")  # fmt: skip
    grid = diffusion.grid_from_corners(*_corners(d, seed), rows, cols).reshape(rows, cols, d)
    stacked = _angle(grid[:, 0].reshape(-1), grid[:, -1].reshape(-1))
    own = [_angle(grid[r, 0], grid[r, -1]) for r in range(rows)]
    errors = _row_errors(grid, rows, cols)
    # the weights at the first middle column, stacked (one theta) and per row
    alpha = 1 / (cols - 1)
    w_stacked = math.sin((1 - alpha) * stacked) / math.sin(stacked)
    w_own = [math.sin((1 - alpha) * th) / math.sin(th) for th in own]
    current().record(stacked_theta_deg=round(math.degrees(stacked), 3),
                     rows_theta_deg=[round(math.degrees(th), 3) for th in own],
                     w0_stacked=w_stacked, w0_rows=w_own,
                     max_relative_error_per_row=errors)  # fmt: skip
    # the article's dimension, 3 x 64 x 64, 4 x 8 grid, its float32 code
    big = diffusion.interpolation_grid(4, 8, 3, 64, torch.Generator().manual_seed(0))
    big_errors = _row_errors(big, 4, 8)
    big_rows = big.double().reshape(4, 8, -1)
    big_own = [math.degrees(_angle(big_rows[r, 0], big_rows[r, -1])) for r in range(4)]
    big_stacked = math.degrees(_angle(big_rows[:, 0].reshape(-1), big_rows[:, -1].reshape(-1)))
    current().record(article_3x64x64_max_relative_error=max(big_errors),
                     article_3x64x64_rows_theta_deg=[round(x, 3) for x in big_own],
                     article_3x64x64_stacked_theta_deg=round(big_stacked, 3))  # fmt: skip
    _figure_error_against_dimension(diffusion)
    current().discrepancy(
        what="the grid's middle elements vs SLERP between each row's own endpoints",
        article="each row's middle elements interpolated between that row's leftmost and "
        "rightmost elements",
        computed=f"one theta {math.degrees(stacked):.1f} deg for the stacked rows (theirs "
        f"{', '.join(f'{math.degrees(th):.1f}' for th in own)} deg): relative error up to "
        f"{max(errors):.2g}; at 3x64x64 (angles {min(big_own):.1f}..{max(big_own):.1f} deg) "
        f"{max(big_errors):.1g}",
        case=f"rows = {rows}, cols = {cols}, d = {d}",
    )
    current().summary = (
        f"one theta for all rows: rows = {rows}, cols = {cols}, d = {d} misses the per-row SLERP "
        f"by {max(errors):.2g} (relative); at the article's 3x64x64 by {max(big_errors):.1g}"
    )


DIMS = [*range(2, 17), 3 * 64 * 64]


def _figure_error_against_dimension(diffusion):
    """Per-row relative error of the article's grid (4 x 8, float64 corners) against the
    dimension: median and max over 40 corner draws (10 at 3 x 64 x 64) of the worst row."""

    def draw(fig):
        med, top = [], []
        for d in DIMS:
            worst = [max(_row_errors(diffusion.grid_from_corners(*_corners(d, s), 4, 8), 4, 8))
                     for s in range(40 if d < 100 else 10)]  # fmt: skip
            med.append(float(np.median(worst)))
            top.append(max(worst))
        ax = fig.subplots()
        x = np.arange(len(DIMS))
        ax.semilogy(x, med, "o-", label="median over corner draws")
        ax.semilogy(x, top, "s--", label="max over corner draws")
        ax.set_xticks(x, [str(d) if d < 100 else "3x64x64" for d in DIMS], fontsize=8)
        ax.set_xlabel("dimension of one grid element")
        ax.set_ylabel("worst row: ||batch slerp - per-row SLERP|| / ||SLERP||")
        ax.set_title("DDIM-15: the article's slerp with one theta for the stacked rows (4 x 8 grid)",
                     fontsize=9)  # fmt: skip
        ax.legend()

    figure("ddim15_row_error_vs_dimension", draw)


parallel_cases = st.tuples(
    st.sampled_from(["column", "row"]),
    st.sampled_from([1.0, 2.0, 0.5]),
    st.sampled_from([torch.float32, F64]),
    st.integers(2, 16),
    st.integers(0, 2**16),
)


def _parallel_grid(diffusion, case):
    """The article's 4 x 5 grid whose left column's corners are parallel (bottom left = c top
    left: "column") or whose every row's endpoints are (right corners = c left corners: "row")."""
    kind, c, dtype, d, seed = case
    tl, tr, bl, br = _corners(d, seed, dtype)
    if kind == "column":
        bl = c * tl
    else:
        tr, br = c * tl, c * bl
    return diffusion.grid_from_corners(tl, tr, bl, br, 4, 5).reshape(4, 5, d)


@claim(refutes="DDIM-15.angle-zero")
def test_grid_with_endpoints_at_angle_zero(diffusion):
    """Endpoints at angle 0 (parallel): the interpolation is (1 - alpha) x0 + alpha x1 (the SLERP
    limit). The grid must be finite and, where it interpolates parallel endpoints (the left
    column for "column", every row for "row"), within 4 (2 n + 6) eps (|x0| + |x1|) of that
    (n entries in the slerp's tensors: a computed cosine within (2 n + 6) eps of 1 has
    theta^2 <= 2 (2 n + 6) eps, and the weights are within theta^2 of linear)."""

    def interpolates(case):
        kind, c, dtype, d, seed = case
        grid = _parallel_grid(diffusion, case)
        if not torch.isfinite(grid).all():
            return False
        eps = torch.finfo(dtype).eps
        if kind == "column":
            pairs = [(grid[0, 0], grid[-1, 0], [grid[r, 0] for r in range(4)], d)]
        else:
            pairs = [(grid[r, 0], grid[r, -1], list(grid[r]), 4 * d) for r in range(4)]
        for x0, x1, line, n in pairs:
            budget = 4 * (2 * n + 6) * eps * float(x0.abs().max() + x1.abs().max())
            for j, x in enumerate(line):
                u = j / (len(line) - 1)
                if float(((1 - u) * x0 + u * x1 - x).abs().max()) > budget:
                    return False
        return True

    case = refute(parallel_cases, interpolates, claim="DDIM-15.angle-zero",
        describe=lambda c: f"{c[0]} corners parallel (factor {c[1]}), {c[2]}, d = {c[3]}, "
                           f"seed {c[4]}")  # fmt: skip
    nan_share = {}
    for dtype in (torch.float32, F64):
        for kind in ("column", "row"):
            bad = sum(not torch.isfinite(_parallel_grid(diffusion, (kind, 1.0, dtype, 8, s))).all()
                      for s in range(200))  # fmt: skip
            nan_share[f"{kind}, {str(dtype)[6:]}"] = bad / 200
    current().record(**{f"NaN grids over 200 draws, {k}, d = 8": v for k, v in nan_share.items()})
    current().discrepancy(
        what="the grid with parallel endpoints (angle 0)",
        article="interpolates between the endpoints",
        computed=f"NaN (theta = arccos(1) = 0 gives 0/0; a cosine rounded above 1 gives "
        f"arccos NaN) in {nan_share['column, float32']:.0%} of float32 draws",
        case=f"{case[0]} corners parallel (factor {case[1]}), {case[2]}, d = {case[3]}",
    )
    current().summary = (
        f"parallel endpoints: the article's slerp divides by sin(0) or takes arccos(> 1): NaN in "
        f"{nan_share['column, float32']:.0%} of float32 draws (d = 8)"
    )


# DDIM-16: sampling consistency -----------------------------------------------------------------
#
# Criterion, fixed before any run: 2-D data, a mixture of 4 isotropic components (std 0.3, means
# 2 N(0, I), uniform weights) with its exact eps-predictor; 256 points x_T ~ N(0, I) and 256
# independent x_T'; DDIM at eta = 0 (the project's sampler, to the data) on the article's
# sub-sequences int(linspace(999, 0, n)), n in {10, 20, 50, 100, 1000}. D(n1, n2) = median over
# the points of ||x0(x_T, S_n1) - x0(x_T, S_n2)||, R = median ||x0(x_T, S_1000) - x0(x_T', S_1000)||.
# The claim holds iff (i) D(n, 1000) strictly decreases over n = 10, 20, 50, 100, and (ii) every
# pair has D(n1, n2) < R / 4.

STEP_COUNTS = (10, 20, 50, 100, 1000)


@claim("DDIM-16")
@profiles.costly()
@given(seed=seeds)
def test_same_x_T_gives_similar_x0_across_step_counts(diffusion, seed):
    g = seed.torch()
    mixture = oracle.isotropic_mixture(torch.randn(4, 2, generator=g, dtype=F64) * 2, 0.3)
    model = mixture.eps_model(ABAR)
    x_T, x_T2 = torch.randn(2, 256, 2, generator=g, dtype=F64)

    def x0(x, n):
        return diffusion.ddim_sample(model, x, ABAR, diffusion.article_timesteps(1000, n), 0.0)

    out = {n: x0(x_T, n) for n in STEP_COUNTS[:-1]}
    out[1000], independent = x0(torch.cat([x_T, x_T2]), 1000).split(256)  # one run: per-step cost
    R = float((out[1000] - independent).norm(dim=1).median())
    D = {(p, q): float((out[p] - out[q]).norm(dim=1).median())
         for i, p in enumerate(STEP_COUNTS) for q in STEP_COUNTS[i + 1 :]}  # fmt: skip
    mode = {n: torch.cdist(out[n], mixture.means).argmin(1) for n in STEP_COUNTS}
    current().record(independent_x_T_median_distance=R,
                     **{f"D({p}, {q}) / R": round(v / R, 5) for (p, q), v in D.items()},
                     same_component_10_vs_1000=float((mode[10] == mode[1000]).double().mean()))  # fmt: skip
    to_1000 = [D[n, 1000] for n in STEP_COUNTS[:-1]]
    assert all(q < p for p, q in zip(to_1000, to_1000[1:], strict=False)), (
        f"D(n, 1000) does not decrease with n: {to_1000}"
    )
    worst = max(D, key=D.get)
    assert D[worst] < R / 4, f"D{worst} = {D[worst]:.3g} is not below R/4 = {R / 4:.3g}"
    current().summary = (
        f"same x_T: median distance {D[10, 1000] / R:.3f} R (10 vs 1000 steps) down to "
        f"{D[100, 1000] / R:.4f} R (100 vs 1000); R = distance between independent x_T's outputs"
    )
