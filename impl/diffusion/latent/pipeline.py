"""Text to image in latent space with classifier-free guidance (SD-03, SD-04).

    z_T ~ N(0, I) of shape (B, 4, H/8, W/8)
    for t -> t' over the DDIM timesteps (spacing "leading" + steps_offset, as Stable Diffusion):
        eps_u, eps_c = eps_theta([z_t, z_t], t, [tau(""), tau(y)])     one batched pass
        eps = eps_u + s (eps_c - eps_u)       (guidance scale s >= 0; guidance.cfg_s)
        z_t' = DDIM step from abar_t to abar_t' (abar_t' = final_abar after the last timestep)
    x = decode(z_0 / scale)
The schedule is "scaled linear": sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012), T = 1000.
The denoiser and the decoder are callables, so the same loop drives this package's UNet and
autoencoder, or diffusers' UNet2DConditionModel and AutoencoderKL (properties/test_sd_*).
"""

import torch

from impl import _checks
from impl.diffusion import ddim, schedules
from impl.diffusion import guidance as cfg
from impl.diffusion.latent import _args, autoencoder

T = 1000


def scaled_linear_abar(dtype=torch.float64):
    """abar_t, t = 0..T-1, of the scaled linear schedule, in a real floating dtype."""
    _args.float_dtype("dtype", dtype)
    return schedules.alphas_cumprod(schedules.scaled_linear_betas(T)).to(dtype)


def sd_timesteps(steps, steps_offset):
    """Stable Diffusion's DDIM timesteps: leading spacing, shifted by steps_offset. steps in
    [1, T]; steps_offset >= 0 and small enough that the first (largest) timestep
    (steps - 1) (T // steps) + steps_offset stays <= T - 1."""
    steps = _checks.integer("steps", steps, lo=1, hi=T)
    steps_offset = _checks.integer("steps_offset", steps_offset, lo=0)
    first = (steps - 1) * (T // steps)
    if first + steps_offset > T - 1:
        raise ValueError(
            f"steps_offset: {steps_offset} moves the first of {steps} timesteps to "
            f"{first + steps_offset} > T - 1 = {T - 1}; at most {T - 1 - first} with {steps} steps"
        )
    return schedules.timesteps(T, steps, "leading") + steps_offset


def generate(denoise, decode, cond, uncond, *, steps, guidance, latent_shape, latent_scale,
             generator=None, eta=0.0, steps_offset=1, abar=None, final_abar=None,
             dtype=torch.float32):  # fmt: skip
    """Images for a batch of conditions.

    denoise(z, t, context, mask) -> eps for a batch (t: (B,) long); decode(z) -> images.
    cond, uncond: (context, mask or None) for the prompts and for the empty prompt, batch B.
    abar: the schedule (default: scaled linear in float64); final_abar: abar after the last step
    (Stable Diffusion: abar[0], set_alpha_to_one=False).

    Domain: guidance s >= 0; steps in [1, T] and steps_offset >= 0 as sd_timesteps; eta in [0, 1];
    latent_shape (B, C, h, w) positive integers; latent_scale > 0; cond and uncond: contexts
    (B, L, D) finite, of one shape, masks (B, L) bool (a True per row) or both None; abar T values
    in (0, 1], non-increasing; final_abar in [abar at the last timestep, 1]; dtype a real floating
    dtype; generator a torch.Generator or None; denoise returns eps of its input's shape."""
    _checks.scalar("guidance", guidance, lo=0)
    ts = sd_timesteps(steps, steps_offset).tolist()
    _checks.scalar("eta", eta, lo=0, hi=1)
    latent_shape = _args.sizes("latent_shape", latent_shape, 4)
    _checks.scalar("latent_scale", latent_scale, lo=0, lo_open=True)
    _args.float_dtype("dtype", dtype)
    _checks.generator("generator", generator)
    _checks.function("denoise", denoise)
    _checks.function("decode", decode)
    context, mask = _conditions(cond, uncond, latent_shape[0])
    abar = scaled_linear_abar() if abar is None else _abar(abar)
    final_abar = float(abar[0]) if final_abar is None else final_abar
    _checks.scalar("final_abar", final_abar, lo=float(abar[ts[-1]]), hi=1)
    z = torch.randn(latent_shape, generator=generator, dtype=dtype)
    for i, t in enumerate(ts):
        a = float(abar[t])
        b = float(abar[ts[i + 1]]) if i + 1 < len(ts) else final_abar
        t_batch = torch.full((2 * latent_shape[0],), t, dtype=torch.long)
        eps = denoise(torch.cat([z, z]), t_batch, context, mask)
        if not isinstance(eps, torch.Tensor) or eps.shape != (2 * latent_shape[0], *z.shape[1:]):
            raise ValueError(
                f"denoise: returned {getattr(eps, 'shape', type(eps).__name__)} for a batch of "
                f"shape {(2 * latent_shape[0], *z.shape[1:])}; eps must have the batch's shape"
            )
        eps_u, eps_c = eps.chunk(2)
        eps = cfg.cfg_s(eps_c, eps_u, guidance)
        sigma = ddim.sigma_paper(eta, a, b)
        noise = torch.randn(z.shape, generator=generator, dtype=dtype) if sigma else None
        z = ddim.step(z, eps, a, b, sigma, noise)
    return decode(autoencoder.from_diffusion(z, latent_scale))


def _pair(name, pair, B):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name}: expected a pair (context, mask or None), got {pair!r:.60}")
    context, mask = pair
    _checks.tensor(name, context, ndim=3, finite=False)
    if context.shape[0] != B:
        raise ValueError(f"{name}: context batch {context.shape[0]} != latent_shape's B = {B}")
    if not torch.isfinite(context).all():
        raise ValueError(f"{name}: the context has a non-finite entry (nan or inf)")
    try:
        _args.mask("mask", mask, context.shape[:2])
    except (ValueError, TypeError) as e:
        raise type(e)(f"{name}: {e}") from None
    return context, mask


def _conditions(cond, uncond, B):
    """The batched context [uncond; cond] and mask of the guided pass."""
    c, m = _pair("cond", cond, B)
    u, mu = _pair("uncond", uncond, B)
    if u.shape[1:] != c.shape[1:] or u.dtype != c.dtype:
        raise ValueError(
            f"uncond: context {tuple(u.shape)} {u.dtype} does not match cond's "
            f"{tuple(c.shape)} {c.dtype}"
        )
    if (m is None) != (mu is None):
        raise ValueError("uncond: mask and cond's mask must be both None or both tensors")
    return torch.cat([u, c]), None if m is None else torch.cat([mu, m])


def _abar(abar):
    """abar: T values in (0, 1], non-increasing (a tensor, array or sequence)."""
    if isinstance(abar, (str, bytes)):
        raise TypeError(f"abar: expected T = {T} numbers, got {abar!r:.60}")
    a = torch.as_tensor(abar)
    if a.ndim != 1 or a.shape[0] != T:
        raise ValueError(f"abar: expected shape ({T},), got {tuple(a.shape)}")
    if not a.dtype.is_floating_point:
        raise TypeError(f"abar: expected real floating values, got {a.dtype}")
    _checks.number("abar", a, lo=0, hi=1, lo_open=True)
    if (a[1:] > a[:-1]).any():
        raise ValueError("abar: must be non-increasing in t")
    return abar
