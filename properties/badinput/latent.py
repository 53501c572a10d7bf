"""Bad-input specs: latent."""
