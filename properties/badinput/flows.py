"""Bad-input specs: flows."""
