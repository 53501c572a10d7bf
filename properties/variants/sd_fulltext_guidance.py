"""Rejected variants of SD-12, SD-13 and SD-18 (the Stable Diffusion article's full text): the
guidance scale (impl/diffusion/guidance.py), clipping in latent space and dynamic thresholding
(impl/diffusion/thresholding.py, latent/autoencoder.py)."""

from impl.diffusion import guidance, thresholding
from impl.diffusion.latent import autoencoder
from properties.variants import variant


@variant(
    "SD-12.alignment",
    name="cfg-sign-flipped",
    why="eps_u - s (eps_c - eps_u): the guidance direction reversed (eps_u and eps_c swapped in "
    "the pipeline's chunk), which steers away from the class",
)
def _(mp):
    mp.setattr(guidance, "cfg_s", lambda eps_c, eps_u, s: eps_u - s * (eps_c - eps_u))


@variant(
    "SD-12.tradeoff",
    "SD-12.out-of-range",
    "SD-12.over-saturated-at-11",
    name="cfg-scale-ignored",
    why="the conditional eps returned whatever the guidance scale (do_classifier_free_guidance "
    "never switched on): the scale changes nothing",
)
def _(mp):
    mp.setattr(guidance, "cfg_s", lambda eps_c, eps_u, s: eps_c + 0 * eps_u)


@variant(
    "SD-12.minimum-above-1",
    name="underfit-conditional-branch",
    why="an imperfect model whose conditional eps sits 2/3 of the way back to the unconditional "
    "one: CFG at s = 3 restores the exact conditional eps, so the distance is lowest at 3",
)
def _(mp):
    right = guidance.cfg_s
    mp.setattr(
        guidance,
        "cfg_s",
        lambda eps_c, eps_u, s: right(eps_u + (eps_c - eps_u) / 3, eps_u, s),
    )


@variant(
    "SD-13",
    name="latents-divided-by-scale",
    why="the diffusion latents taken as z / scale (the decoder's direction) in place of z * scale: "
    "they are not at unit variance",
)
def _(mp):
    mp.setattr(autoencoder, "to_diffusion", lambda z, scale: z / scale)


@variant(
    "SD-13",
    name="clip-sample-never-applied",
    why="clip_sample=True passed but never applied to x0_hat: the clipped samples equal the "
    "free ones",
)
def _(mp):
    mp.setattr(thresholding, "static_threshold", lambda x0_hat: x0_hat)


@variant(
    "SD-18.with-division",
    name="dynamic-without-division",
    why="the article's prose taken as the code: clip to [-s, s] and stop, without dividing by s",
)
def _(mp):
    right = thresholding.dynamic_threshold
    mp.setattr(
        thresholding,
        "dynamic_threshold",
        lambda x0_hat, p=0.99, divide=True: right(x0_hat, p, divide=False),
    )


@variant(
    "SD-18.as-written",
    name="prose-silently-divides",
    why="the prose's rule computed with the code image's division: the counterexample (no "
    "reduction against static clipping) disappears",
)
def _(mp):
    right = thresholding.dynamic_threshold
    mp.setattr(
        thresholding,
        "dynamic_threshold",
        lambda x0_hat, p=0.99, divide=True: right(x0_hat, p, divide=True),
    )


@variant(
    "SD-18.as-written-in-sampler",
    name="percentile-ignored",
    why="s fixed at 1 (the percentile never computed): the rule is static clipping",
)
def _(mp):
    import torch

    mp.setattr(
        thresholding,
        "percentile_s",
        lambda x0_hat, p=0.99: torch.ones(x0_hat.shape[0], dtype=x0_hat.dtype),
    )


@variant(
    "SD-18.s-at-most-1",
    name="s-not-raised-to-1",
    why="s = quantile(|x0_hat|, p) without max(., 1): when s < 1 the division scales x0_hat up",
)
def _(mp):
    import torch

    def raw(x0_hat, p=0.99):
        return torch.quantile(x0_hat.abs().reshape(x0_hat.shape[0], -1), p, dim=1)

    mp.setattr(thresholding, "percentile_s", raw)
