"""Static and dynamic thresholding of the predicted x0, and a DDIM sampler that applies one at
every step (Saharia et al. 2022, "Imagen", Sec. 2.3; the Stable Diffusion article's paragraph on
dynamic thresholding and its code image; diffusers' DDIMScheduler `clip_sample` / `thresholding`).

x0_hat has shape (n, ...): n samples ("images"), each of any number of entries ("pixels").

(1) static       x0 = clip(x0_hat, -1, 1)
(2) percentile   s = max(quantile(|x0_hat|, p), 1), per sample over its entries (p = 0.99 in the
                 article: "the absolute pixel value at a percentile (e.g. 99%)"; if it exceeds 1)
(3) dynamic      x0 = clip(x0_hat, -s, s) / s   (the article's code image, Imagen, diffusers):
                 always in [-1, 1]; only the entries beyond the percentile reach +-1
(4) as written   x0 = clip(x0_hat, -s, s)       (the article's prose, which stops at the clip):
                 for s >= 1, display(x0) = clip(x0, -1, 1) = clip(x0_hat, -1, 1) = (1)
(5) display      an image's range is [-1, 1]: display(x) = clip(x, -1, 1) (the uint8 conversion);
                 saturated entries: |display(x)| >= 1 - tol (tol = 1e-6)
(6) the sampler  deterministic DDIM (eta = 0) over the steps of ddim.plan:
                 x0_hat = (x_t - sqrt(1 - a) eps) / sqrt(a),  x0 = process(x0_hat),
                 x_tau = sqrt(b) x0 + sqrt(1 - b) eps
                 (diffusers' default, use_clipped_model_output=False: the direction keeps the
                 model's eps). to_data=False stops at the last timestep (set_alpha_to_one=False).
"""

import torch

from impl import _checks
from impl.diffusion import ddim
from impl.diffusion.schedules import _model_output

SATURATION_TOL = 1e-6
METHODS = ("none", "static", "dynamic", "as-written")


def _samples(name, x):
    """A finite floating tensor with a batch dimension and at least one entry per sample."""
    _checks.tensor(name, x)
    if x.ndim < 1 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"{name}: expected shape (n, ...) with n >= 1 samples of >= 1 entries, "
                         f"got {tuple(x.shape)}")  # fmt: skip
    return x


def static_threshold(x0_hat):
    """(1)."""
    return _samples("x0_hat", x0_hat).clamp(-1, 1)


def percentile_s(x0_hat, p=0.99):
    """(2): s per sample, shape (n,); p in [0, 1]."""
    _samples("x0_hat", x0_hat)
    _checks.real("p", p, 0, 1)
    flat = x0_hat.abs().reshape(x0_hat.shape[0], -1)
    return torch.quantile(flat, p, dim=1).clamp(min=1)


def dynamic_threshold(x0_hat, p=0.99, divide=True):
    """(3) with `divide` (the code image), (4) without (the prose)."""
    _checks.flag("divide", divide)
    s = percentile_s(x0_hat, p).reshape(-1, *([1] * (x0_hat.ndim - 1))).to(x0_hat.dtype)
    clipped = torch.maximum(torch.minimum(x0_hat, s), -s)
    return clipped / s if divide else clipped


def display(x):
    """(5): the image range [-1, 1]."""
    return _samples("x", x).clamp(-1, 1)


def saturated_fraction(x, tol=SATURATION_TOL):
    """(5): the fraction of entries of each sample at the ends of the image range, shape (n,);
    tol in [0, 1)."""
    _checks.real("tol", tol, 0, 1, hi_open=True)
    flat = display(x).reshape(x.shape[0], -1)
    return (flat.abs() >= 1 - tol).to(x.dtype).mean(1)


def process(method, x0_hat, p=0.99):
    """x0_hat processed by `method` in METHODS: "none", "static" (1), "dynamic" (3),
    "as-written" (4)."""
    _checks.choice("method", method, METHODS)
    if method == "none":
        return _samples("x0_hat", x0_hat)
    if method == "static":
        return static_threshold(x0_hat)
    return dynamic_threshold(x0_hat, p, divide=method == "dynamic")


def sample(eps_model, x_T, abar, timesteps, method="none", p=0.99, to_data=True):
    """(6): the deterministic DDIM sampler with x0_hat processed by `method` at every step.
    eps_model(x, t) -> eps of x's shape; x_T (n, ...) finite; abar and timesteps as in ddim.plan
    (abar > 0 at the first timestep); to_data as there."""
    _checks.function("eps_model", eps_model)
    _samples("x_T", x_T)
    _checks.choice("method", method, METHODS)
    _checks.real("p", p, 0, 1)
    steps = ddim.plan(abar, timesteps, 0.0, "paper", to_data)
    if steps and steps[0][1] == 0:
        raise ValueError(f"timesteps: abar = 0 at t = {steps[0][0]}: eps cannot predict x_0 there")
    x = x_T
    for t, a, b, _ in steps:
        eps = _model_output(eps_model(x, t), x, t)
        x0 = process(method, (x - (1 - a) ** 0.5 * eps) / a**0.5, p)
        x = b**0.5 * x0 + (1 - b) ** 0.5 * eps
    return x
