"""Bad-input specs: sde."""
