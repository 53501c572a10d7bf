"""asv benchmarks, one module per impl/ topic."""
