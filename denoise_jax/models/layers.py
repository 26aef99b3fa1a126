"""Building blocks shared by every model family.

Every model builds its convolutions with `Conv` from here (never `nn.Conv` directly), so
one switch can change the convolution implementation for all models at once.
"""

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from denoise_jax.ops import conv as _ops_conv

CONV_IMPLS = _ops_conv.IMPLS
_conv_impl = "auto"  # oneDNN where it is built and supports the case, else XLA
_NHWC_HWIO = ("NHWC", "HWIO", "NHWC")


def set_conv_impl(name: str) -> None:
    """Selects the convolution every `Conv` uses from now on: "xla" (lax.conv_general_dilated),
    "onednn" (oneDNN custom calls wherever they support the case) or "auto" (oneDNN where it
    measured faster). Unsupported cases (and a missing oneDNN library, or a non-CPU backend)
    use XLA silently. Read when a model is traced: set it before jitting the step."""
    global _conv_impl
    if name not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {name!r}")
    _conv_impl = name


def get_conv_impl() -> str:
    """The current convolution implementation name (see `set_conv_impl`)."""
    return _conv_impl


@contextlib.contextmanager
def conv_impl(name: str) -> Iterator[None]:
    """`with conv_impl("onednn"): ...` selects the implementation inside the block only."""
    previous = _conv_impl
    set_conv_impl(name)
    try:
        yield
    finally:
        set_conv_impl(previous)


def _is_nhwc_hwio(lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any) -> bool:
    if lhs.ndim != 4 or rhs.ndim != 4 or dimension_numbers is None:
        return False
    return lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == \
        lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC_HWIO)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int],
                         padding: Any, lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None) -> jax.Array:
    """`lax.conv_general_dilated`, sent to the implementation `set_conv_impl` selected when it
    is a 2-D NHWC/HWIO convolution without input dilation (what `Conv` builds)."""
    plain = (not lhs_dilation or all(d == 1 for d in lhs_dilation)) and batch_group_count == 1
    if (_conv_impl != "xla" and plain and precision is None and preferred_element_type is None
            and _is_nhwc_hwio(lhs, rhs, dimension_numbers)):
        return _ops_conv.conv2d(lhs, rhs, strides=window_strides, padding=padding,
                                rhs_dilation=rhs_dilation or (1, 1),
                                feature_group_count=feature_group_count, impl=_conv_impl)
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, batch_group_count=batch_group_count,
        precision=precision, preferred_element_type=preferred_element_type)


class Conv(nn.Conv):
    """`flax.linen.Conv` (same fields, parameter names, shapes and initialisers, so
    checkpoints are interchangeable) whose convolution follows `set_conv_impl`."""

    conv_general_dilated: Any = conv_general_dilated


# The convolution every model uses. Kept as a name so a faster implementation with the
# same interface can replace it in one place.
ConvTranspose = nn.ConvTranspose


def pad_to_multiple(x: jnp.ndarray, multiple: int) -> tuple[jnp.ndarray, tuple[int, int]]:
    """Reflect-pads x: [B, H, W, C] so H and W are multiples of `multiple`.

    Returns the padded array and the original (H, W) for `crop_to`.
    """
    h, w = x.shape[1], x.shape[2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflect needs pad < size; fall back to edge padding for tiny inputs.
        mode = "reflect" if ph < h and pw < w else "edge"
        x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    return x, (h, w)


def crop_to(x: jnp.ndarray, hw: tuple[int, int]) -> jnp.ndarray:
    """Crops x: [B, H', W', C] back to the (H, W) returned by `pad_to_multiple`."""
    return x[:, : hw[0], : hw[1], :]


def space_to_depth(x: jnp.ndarray, r: int = 2) -> jnp.ndarray:
    """Pixel-unshuffle x: [B, H, W, C] → [B, H/r, W/r, r·r·C] (H, W multiples of r).

    Channel (i·r + j)·C + c holds sub-pixel (i, j) of channel c (TensorFlow's order, not
    PyTorch's c·r·r + i·r + j): the transpose then moves whole C-vectors, which XLA on CPU
    does faster. For a freshly trained model the order is only a relabelling of channels.
    """
    b, h, w, c = x.shape
    x = x.reshape(b, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // r, w // r, r * r * c)


def depth_to_space(x: jnp.ndarray, r: int = 2) -> jnp.ndarray:
    """Pixel-shuffle, the inverse of `space_to_depth`: [B, H, W, r·r·C] → [B, H·r, W·r, C]."""
    b, h, w, rrc = x.shape
    x = x.reshape(b, h, w, r, r, rrc // (r * r)).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * r, w * r, rrc // (r * r))
