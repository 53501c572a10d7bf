"""Bad-input specs: attention."""
