"""diffusers' sigma-form schedulers as adapters of the `sde` family (properties/adapters/sde.py
states the interface: sample_euler(denoiser, x, sigmas), sample_heun(denoiser, x, sigmas),
ode_solve(drift, x, t_start, t_end, n, method)).

diffusers' EulerDiscreteScheduler and HeunDiscreteScheduler work in Karras et al.'s sigma form,
as k-diffusion does: the sample is x_K = x / sqrt(abar) at sigma = sqrt((1 - abar) / abar). The
adapter gives the scheduler the property's sigmas as its table (float64; diffusers builds its
own in float32 from alphas_cumprod), prediction_type "sample" (the model output is the
denoiser's x_0 prediction, so derivative = (x - D(x, sigma)) / sigma, k-diffusion's d), and runs
the pipelines' loop: for each step, model at the scheduler's current sigma, then
scheduler.step. HeunDiscreteScheduler's table is diffusers' own arrangement, every interior sigma
twice ([s_0, s_1, s_1, ..., s_{n-1}, s_{n-1}, 0]: a first-order call, then the second-order call
at the Euler-predicted point), its last interval to sigma = 0 an Euler step; where the last
sigma is not 0 (the ODE solver on a sigma grid) that sigma is doubled too, so that every
interval gets both calls. ode_solve is sample_euler / sample_heun on sigma = t + 1 with the
denoiser x - sigma drift(x, sigma - 1), as the k-diffusion adapter does.

Registered in sde.py's ADAPTERS and PEERS as "diffusers" (--target sde=diffusers). This module
imports sde at its top and sde.py imports it at its end, after Reference: import
properties.adapters.sde (or resolve the family) first, as the fixtures and the audit do.
"""

import torch

from properties.adapters.sde import Reference, sigma_form_ode_solve

F64 = torch.float64


def _run(scheduler, denoiser, x, table):
    """The pipelines' loop on `scheduler` with sigma table `table` (float64)."""
    scheduler.sigmas = torch.as_tensor(table, dtype=F64)
    steps = len(table) - 1
    scheduler.timesteps = torch.arange(steps, 0, -1, dtype=F64)
    scheduler._step_index = 0
    scheduler.is_scale_input_called = True
    for i in range(steps):
        sigma = float(scheduler.sigmas[scheduler.step_index])
        out = denoiser(x, torch.full((x.shape[0],), sigma, dtype=x.dtype))
        x = scheduler.step(out, scheduler.timesteps[i], x).prev_sample
    return x


class Diffusers(Reference):
    """diffusers' EulerDiscreteScheduler (sample_euler) and HeunDiscreteScheduler (sample_heun),
    and the fixed-step ODE solver through them; every other function is the reference's."""

    @staticmethod
    def sample_euler(denoiser, x, sigmas):
        from diffusers import EulerDiscreteScheduler

        s = EulerDiscreteScheduler(num_train_timesteps=10, prediction_type="sample")
        return _run(s, denoiser, x, [float(v) for v in sigmas])

    @staticmethod
    def sample_heun(denoiser, x, sigmas):
        from diffusers import HeunDiscreteScheduler

        sig = [float(v) for v in sigmas]
        inner = sig[1:] if sig[-1] > 0 else sig[1:-1]
        table = [sig[0]] + [v for v in inner for _ in (0, 1)] + ([0.0] if sig[-1] == 0 else [])
        s = HeunDiscreteScheduler(num_train_timesteps=10, prediction_type="sample")
        return _run(s, denoiser, x, table)

    ode_solve = classmethod(sigma_form_ode_solve)
