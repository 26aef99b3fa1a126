"""FFDNet (Zhang, Zuo, Zhang, TIP 2018): a DnCNN-like conv stack at quarter resolution.

Layers: pixel-unshuffle ×2 (C → 4C channels at H/2 × W/2), conv+ReLU, `depth - 2` ×
(conv+ReLU), conv to 4C, pixel-shuffle back; the result is the noise and the model returns
`x - noise`. The paper's colour model is 12 layers × 96 features (15 × 64 for grey).

Differences from the paper: blind (no noise-level map input); no batch norm by default
(the paper trains with BN; without it a layer's output never depends on the rest of the
batch or image, so tiles and whole photos agree; `use_bn=True` puts BN back, the middle
convs then lose their bias); the last conv starts at zero, so the untrained net is the
identity; odd H or W are reflect-padded to even and cropped back.
Parameters (colour, 12 × 96): 851,244; 13.9 GMACs at 256×256.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.dncnn import predict_noise
from denoise_jax.models.layers import (
    crop_to,
    depth_to_space,
    pad_to_multiple,
    space_to_depth,
)
from denoise_jax.models.registry import register


@register("ffdnet", tiny=dict(depth=3, features=8))
class FFDNet(nn.Module):
    """FFDNet: conv+ReLU stack on the pixel-unshuffled image (H/2 × W/2 × 4C); returns x - noise.

    `depth` counts all conv layers (12 for the paper's colour model), `features` their width.
    With `use_bn=True`, apply with `mutable=["batch_stats"]` when `train=True`.

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    depth: int = 12
    features: int = 96
    use_bn: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.depth < 2 or self.features < 1:
            raise UserError(
                f"ffdnet: depth must be >= 2 and features >= 1, got {self.depth}, {self.features}"
            )
        padded, hw = pad_to_multiple(x, 2)
        quarter = space_to_depth(padded.astype(self.dtype))
        noise = predict_noise(quarter, quarter.shape[-1], depth=self.depth,
                              features=self.features, use_bn=self.use_bn, train=train,
                              dtype=self.dtype)
        noise = crop_to(depth_to_space(noise), hw)
        # Subtract in x's dtype: a bfloat16 difference would round the image.
        return x - noise.astype(x.dtype)
