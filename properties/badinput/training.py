"""Bad-input specs: training."""
