"""A tiny latent diffusion model (Stable Diffusion, Rombach et al. 2022; seed article 8): a KL
autoencoder with downsampling factor 8, a text encoder, a UNet with cross-attention, and the
classifier-free-guided DDIM pipeline in latent space."""
