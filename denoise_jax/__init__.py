"""denoise_jax: image denoising in JAX/Flax."""

__version__ = "0.1.0"
