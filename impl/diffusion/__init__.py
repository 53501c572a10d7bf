"""Diffusion models: schedules, DDPM, DDIM, oracle (exactly known) models, guidance."""
