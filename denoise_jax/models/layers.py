"""Building blocks shared by every model family.

Every model builds its convolutions with `Conv` from here (never `nn.Conv` directly), so
one switch can change the convolution implementation for all models at once.
"""

import flax.linen as nn
import jax.numpy as jnp

# The convolution every model uses. Kept as a name so a faster implementation with the
# same interface can replace it in one place.
Conv = nn.Conv
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
