"""Custom operations: a oneDNN-backed convolution for CPU (see `denoise_jax.ops.conv`).

Imported lazily, so `python -m denoise_jax.ops.build` runs without loading JAX's side.
"""

from typing import Any

__all__ = ["available", "conv2d", "unavailable_reason"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from denoise_jax.ops import conv

        return getattr(conv, name)
    raise AttributeError(f"module 'denoise_jax.ops' has no attribute {name!r}")
