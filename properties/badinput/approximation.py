"""Bad-input specs: approximation."""
