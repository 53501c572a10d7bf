"""Training-memory techniques: sequence packing with padding removal (seed article 4) and gradient
checkpointing (seed article 2)."""
