"""Diffusion samplers (impl/diffusion): step overhead against diffusers' schedulers on the same
tensors, and end-to-end sampling of an oracle model, DDPM 1000 steps against DDIM 10..100 steps
(time, and the KS distance of the samples to the data as a tracked quality number)."""

import numpy as np
import torch
from scipy import stats

from impl.diffusion import ddim, ddpm, oracle, schedules

ABAR = schedules.alphas_cumprod(schedules.linear_betas())


class StepOverhead:
    """One sampler step on a batch of 64 latents of shape 4 x 64 x 64 (float32), t = 500 -> 480."""

    params = [["ours DDIM", "diffusers DDIM", "ours DDPM", "diffusers DDPM"]]
    param_names = ["implementation"]

    def setup(self, implementation):
        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(0)
        self.x, self.eps, self.z = torch.randn(3, 64, 4, 64, 64, generator=gen)
        if implementation.startswith("diffusers"):
            import diffusers

            cls = diffusers.DDIMScheduler if "DDIM" in implementation else diffusers.DDPMScheduler
            self.scheduler = cls(clip_sample=False)
            self.scheduler.set_timesteps(50)  # stride 20: 500 -> 480
        self.a, self.b = ABAR[500].item(), ABAR[480].item()
        self.sigma = ddim.sigma_paper(1.0, self.a, self.b)

    def time_step(self, implementation):
        if implementation == "ours DDIM":
            ddim.step(self.x, self.eps, self.a, self.b, self.sigma, self.z)
        elif implementation == "ours DDPM":
            ddpm.ancestral_step(self.x, self.eps, self.a, self.b, self.z)
        elif implementation == "diffusers DDIM":
            self.scheduler.step(self.eps, 500, self.x, eta=1.0, variance_noise=self.z)
        else:
            self.scheduler.step(self.eps, 500, self.x, generator=torch.Generator().manual_seed(1))


MIXTURE = oracle.isotropic_mixture(
    [[-2.0], [1.5]], 0.4, weights=torch.tensor([0.3, 0.7], dtype=torch.float64)
)
SAMPLERS = ["DDPM 1000", "DDIM 10", "DDIM 20", "DDIM 50", "DDIM 100"]


def mixture_cdf(x):
    return 0.3 * stats.norm.cdf(x, -2, 0.4) + 0.7 * stats.norm.cdf(x, 1.5, 0.4)


class OracleSampling:
    """20000 samples of a 1-D Gaussian mixture with its exact eps-predictor."""

    params = [SAMPLERS]
    param_names = ["sampler"]
    timeout = 300

    def setup(self, sampler):
        self.x_T = torch.randn(
            20_000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        self.model = MIXTURE.eps_model(ABAR)

    def _run(self, sampler):
        kind, n = sampler.split()
        gen = torch.Generator().manual_seed(1)
        if kind == "DDPM":
            return ddpm.sample(self.model, self.x_T, ABAR, torch.arange(int(n) - 1, -1, -1), gen)
        return ddim.sample(
            self.model, self.x_T, ABAR, schedules.timesteps(1000, int(n), "leading"), 0.0, gen
        )

    def time_sample(self, sampler):
        self._run(sampler)

    def track_ks_distance_to_data(self, sampler):
        return float(stats.kstest(np.asarray(self._run(sampler)[:, 0]), mixture_cdf).statistic)

    track_ks_distance_to_data.unit = "KS distance"
