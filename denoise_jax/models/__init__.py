"""Model zoo. Importing this package imports every module in its folder, which registers
every family (`registry.register`): a new model is one new file here."""

import importlib
import pkgutil

from denoise_jax.models.registry import get_model, names, register, tiny_kwargs

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["get_model", "names", "register", "tiny_kwargs"]
