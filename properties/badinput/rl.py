"""Bad-input specs: rl."""
