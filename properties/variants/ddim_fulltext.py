"""Rejected variants of the DDIM article's full-text claims (DDIM-12..DDIM-16): misreadings and
bugs a reader of the article (or of its code) would plausibly write, patched into
impl/diffusion/ddim.py, impl/diffusion/ddim_article.py and the family adapter."""

import torch

from impl.diffusion import ddim, ddim_article
from properties.adapters import diffusion as adapter
from properties.variants import variant


@variant("DDIM-12", name="lambda-plus-k-sqrt-abar",
         why="lambda = sqrt(abar_tau) + k sqrt(abar_t): the sign of matching the x_0 terms flipped")  # fmt: skip
def _(mp):
    clean = ddim.coefficients

    def coefficients(a, b, sigma):
        _, k = clean(a, b, sigma)
        return b**0.5 + k * a**0.5, k

    mp.setattr(ddim, "coefficients", coefficients)


@variant("DDIM-12", name="k-over-one-minus-abar-t",
         why="k = sqrt(1 - abar_tau - sigma^2)/(1 - abar_t): the root of the denominator dropped")  # fmt: skip
def _(mp):
    clean = ddim.coefficients

    def coefficients(a, b, sigma):
        _, k = clean(a, b, sigma)
        k = k * (1 - a) ** 0.5 / (1 - a)
        return b**0.5 - k * a**0.5, k

    mp.setattr(ddim, "coefficients", coefficients)


@variant("DDIM-13.independent", name="merged-noise-stds-added",
         why="k sqrt(1 - abar_t) eps_t + sigma eps_tau merged as (k sqrt(1 - abar_t) + sigma) eps: "
             "standard deviations added where variances add")  # fmt: skip
def _(mp):
    def ansatz_variance(a, b, sigma, rho):
        _, k = ddim.coefficients(a, b, sigma)
        return (k * (1 - a) ** 0.5 + sigma) ** 2

    mp.setattr(ddim_article, "ansatz_variance", ansatz_variance)


@variant("DDIM-13.standard-normal-only", name="correlation-ignored",
         why="the article's reason taken as sufficient: eps_t and eps_tau merged (and drawn) as "
             "independent whatever their correlation rho")  # fmt: skip
def _(mp):
    clean_variance, clean_normals = ddim_article.ansatz_variance, ddim_article.correlated_normals

    def ansatz_variance(a, b, sigma, rho):
        return clean_variance(a, b, sigma, 0.0)

    def correlated_normals(rho, n, generator=None):
        return clean_normals(0.0, n, generator)

    mp.setattr(ddim_article, "ansatz_variance", ansatz_variance)
    mp.setattr(ddim_article, "correlated_normals", correlated_normals)


@variant("DDIM-14", name="abar-index-0-is-the-data",
         why="1-based arrays read into the 0-based code: alphas_cumprod[0] = 1 (the data), so the "
             "last step to tau = 0 returns x0_hat; hides the article's off-by-one")  # fmt: skip
def _(mp):
    clean = ddim_article.article_alphas_cumprod

    def shifted(alphas):
        abar = clean(alphas)
        return torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])

    mp.setattr(ddim_article, "article_alphas_cumprod", shifted)


@variant("DDIM-15.per-row", name="grid-slerp-separated-per-row",
         why="the todo resolved: the middle columns interpolated row by row, each row with its own "
             "theta (hides the article's shared theta)")  # fmt: skip
def _(mp):
    clean = ddim_article.grid_from_corners

    def grid_from_corners(top_left, top_right, bottom_left, bottom_right, rows, cols):
        images = clean(top_left, top_right, bottom_left, bottom_right, rows, cols)
        for col in range(1, cols - 1):
            for row in range(rows):
                images[row * cols + col] = ddim_article.slerp(
                    images[row * cols], images[row * cols + cols - 1], col / (cols - 1)
                )
        return images

    mp.setattr(ddim_article, "grid_from_corners", grid_from_corners)


@variant("DDIM-15.angle-zero", name="slerp-with-parallel-guard",
         why="the article's slerp with a guard it does not have: parallel endpoints (computed "
             "cosine >= 1) interpolated linearly (hides the NaN)")  # fmt: skip
def _(mp):
    clean = ddim_article.slerp

    def slerp(x0, x1, alpha):
        cos = torch.sum(x0 * x1) / (torch.norm(x0) * torch.norm(x1))
        if cos >= 1:
            return (1 - alpha) * x0 + alpha * x1
        return clean(x0, x1, alpha)

    mp.setattr(ddim_article, "slerp", slerp)


@variant("DDIM-16", name="direction-along-fresh-noise",
         why="DDIM's direction term sqrt(1 - abar_tau - sigma^2) along fresh N(0, I) noise instead "
             "of eps_theta (x_tau re-noised as by the forward process): eta = 0 not deterministic")  # fmt: skip
def _(mp):
    def step(x_t, eps_hat, a, b, sigma, z):
        x0_hat = (x_t - (1 - a) ** 0.5 * eps_hat) / a**0.5
        out = b**0.5 * x0_hat + max(1 - b - sigma**2, 0.0) ** 0.5 * torch.randn_like(eps_hat)
        return out + sigma * z if sigma else out

    mp.setattr(ddim, "step", step)
    mp.setattr(adapter.Reference, "ddim_step", staticmethod(step))
