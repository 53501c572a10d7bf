"""Attention (seed article 11): the naive reference, safe and online softmax, tiled attention
(FlashAttention) in PyTorch with a recomputing backward, a Triton forward kernel, an IO model."""
