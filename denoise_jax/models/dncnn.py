"""DnCNN (Zhang, Zuo, Chen, Meng, Zhang, TIP 2017): a plain conv stack that predicts the noise.

Layers: conv+ReLU, then `depth - 2` × (conv+BN+ReLU), then conv to C channels. The network
output is the noise estimate; the model returns `x - noise` (residual learning).

Choices: the middle convs have no bias when BN follows (BN's offset makes it redundant);
BN uses momentum 0.9 and epsilon 1e-4 (PyTorch momentum 0.1, as in KAIR's DnCNN).
Parameter counts (3×3, 64 features, BN): depth 17 → 556,097 (grey) / 558,403 (colour), the
paper's "about 0.56M"; depth 20 colour (the blind colour model, CDnCNN-B) → 669,379.
Cost at 256×256×3: 36.5 GMACs (depth 17), 43.7 GMACs (depth 20).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import Conv
from denoise_jax.models.registry import register


@register("dncnn", tiny=dict(depth=3, features=8))
class DnCNN(nn.Module):
    """DnCNN: 3×3 conv stack (conv+BN+ReLU) predicting the noise; returns x - noise.

    `depth` counts all conv layers: 17 for a known noise level (DnCNN-S), 20 for blind
    colour denoising (CDnCNN-B). `use_bn=False` drops batch norm (then the middle convs get
    biases). With BN, apply with `mutable=["batch_stats"]` when `train=True`.

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    depth: int = 17
    features: int = 64
    use_bn: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.depth < 2 or self.features < 1:
            raise UserError(
                f"dncnn: depth must be >= 2 and features >= 1, got {self.depth}, {self.features}"
            )
        noise = predict_noise(x.astype(self.dtype), x.shape[-1], depth=self.depth,
                              features=self.features, use_bn=self.use_bn, train=train,
                              dtype=self.dtype)
        # Subtract in x's dtype: a bfloat16 difference would round the image.
        return x - noise.astype(x.dtype)


def predict_noise(h: jnp.ndarray, channels: int, *, depth: int, features: int, use_bn: bool,
                  train: bool, dtype: Any) -> jnp.ndarray:
    """DnCNN's body, [B, H, W, C_in] -> noise [B, H, W, channels]: conv+ReLU, depth - 2 ×
    (conv [+ BN] + ReLU), conv. Called inside a module's compact method, so its layers
    (conv0 … conv{depth-1}, bn1 …) belong to that module (DnCNN, and FFDNet at quarter
    resolution)."""
    # He initialisation, as in the DnCNN paper: without BN it keeps the ReLU stack's
    # activations at unit scale (LeCun's shrinks them by √2 a layer, ~45× over 12).
    layer = dict(padding="SAME", dtype=dtype, param_dtype=jnp.float32)
    he = dict(kernel_init=nn.initializers.he_normal(), **layer)
    h = nn.relu(Conv(features, (3, 3), name="conv0", **he)(h))
    for i in range(1, depth - 1):
        h = Conv(features, (3, 3), use_bias=not use_bn, name=f"conv{i}", **he)(h)
        if use_bn:
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-4,
                             dtype=dtype, param_dtype=jnp.float32, name=f"bn{i}")(h)
        h = nn.relu(h)
    # Zero-initialised, so the network starts as the identity. With BN the features have
    # unit variance and a default-initialised last conv predicts huge "noise" (initial
    # MSE 0.44); Adam's second moments then remember those gradients and training sits
    # at the identity for ~1,000 steps (measured: 20.6 vs 28.2 dB after 300 steps).
    return Conv(channels, (3, 3), name=f"conv{depth - 1}", kernel_init=nn.initializers.zeros,
                **layer)(h)
