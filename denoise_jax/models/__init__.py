"""Model zoo. Importing this package registers every family."""

from denoise_jax.models import autoencoder, dncnn, mwcnn, nafnet, pridnet, rednet  # noqa: F401
from denoise_jax.models.registry import get_model, names, register

__all__ = ["get_model", "names", "register"]
