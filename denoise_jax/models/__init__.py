"""Model zoo. Importing this package registers every family."""

from denoise_jax.models import (  # noqa: F401
    autoencoder,
    dncnn,
    drunet,
    ffdnet,
    mwcnn,
    nafnet,
    pridnet,
    rednet,
)
from denoise_jax.models.registry import get_model, names, register

__all__ = ["get_model", "names", "register"]
