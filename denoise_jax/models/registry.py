"""Models by name: `get_model(name, **kwargs)` returns a Flax Linen module.

Adding a model is one module file with `@register("name")` on a factory or class, plus
one import line in `denoise_jax/models/__init__.py`. Nothing else changes.
"""

from collections.abc import Callable

import flax.linen as nn

from denoise_jax.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    """Registers a module class (or a factory returning one) under `name`."""

    def wrap(factory):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = factory
        return factory

    return wrap


def get_model(name: str, **kwargs) -> nn.Module:
    """Returns the registered module `name` built with `kwargs`."""
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**kwargs)


def factory(name: str) -> Callable[..., nn.Module]:
    """The registered class or factory itself (for its docstring and defaults)."""
    if name not in _MODELS:
        get_model(name)  # raises the UserError listing the names
    return _MODELS[name]


def names() -> list[str]:
    return sorted(_MODELS)
