"""Models by name: `get_model(name, **kwargs)` returns a Flax Linen module.

Adding a model is one module file in `denoise_jax/models/` with
`@register("name", tiny={...})` on a factory or class: the package imports every module in
its folder, and `tiny` (small keyword arguments that compile and run in seconds on 2 CPU
cores) is what the model tests build. Nothing else changes.
"""

from collections.abc import Callable

import flax.linen as nn

from denoise_jax.errors import UserError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TINY: dict[str, dict] = {}


def register(name: str, tiny: dict | None = None):
    """Registers a module class (or a factory returning one) under `name`; `tiny`: its
    test-sized keyword arguments (`tiny_kwargs`)."""

    def wrap(factory):
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = factory
        if tiny is not None:
            _TINY[name] = dict(tiny)
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


def tiny_kwargs() -> dict[str, dict]:
    """{name: test-sized kwargs} of the models registered with `tiny`."""
    return {name: dict(kwargs) for name, kwargs in _TINY.items()}
