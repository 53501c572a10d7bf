"""Hypothesis properties of the audited claims, the claim catalogue, the helpers they share, the
adapters for implementations under test, and the audit runner (python -m properties.audit)."""
