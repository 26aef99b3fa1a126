"""RED-Net (Mao, Shen, Yang, NeurIPS 2016): residual encoder-decoder with symmetric skips.

Choices (the paper and the real-noise comparison leave them open or differ):
- Stride 1 and 'same' padding everywhere, no pooling: the paper's denoising setup uses no
  down-sampling; 'same' padding (as the Keras re-implementations the real-noise comparison
  follows) keeps every feature map at the input size, so any H, W work without padding and cropping.
- Skips: decoder layer j (1-based) mirrors encoder layer `depth - j` (same size). Every
  `skip_every`-th decoder layer, counted from the bottleneck, receives the mirrored encoder
  feature map: element-wise sum, then ReLU, as in the paper. Each skip thus spans
  `skip_every` conv plus `skip_every` deconv layers.
- The last deconv maps to C channels without ReLU and the input is added (the outermost skip,
  a global residual), so the output is not clamped at 0 and starts near the input.
- He-normal initialisation for the ReLU layers: with up to 30 layers and no normalisation
  the default LeCun init would halve the activations' variance at every layer.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import Conv, ConvTranspose
from denoise_jax.models.registry import register

_HE_INIT = nn.initializers.kaiming_normal()


@register("rednet", tiny=dict(depth=2, features=8))
class REDNet(nn.Module):
    """RED-Net: `depth` 3×3 convs then `depth` 3×3 deconvs, symmetric skips, global residual.

    `depth` is the number of conv layers in the encoder: 5 gives RED10 (the comparison's 5 conv +
    5 deconv, the default), 10 gives RED20, 15 gives RED30 (paper). 64 features in the paper.

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    depth: int = 5
    features: int = 64
    skip_every: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.depth < 1 or self.features < 1 or self.skip_every < 1:
            raise UserError(
                f"rednet: depth, features and skip_every must be >= 1, got "
                f"{self.depth}, {self.features}, {self.skip_every}"
            )
        channels = x.shape[-1]
        layer = dict(padding="SAME", dtype=self.dtype, param_dtype=jnp.float32)
        h = x.astype(self.dtype)
        encoded = []  # encoded[i]: output of conv layer i + 1
        for i in range(self.depth):
            h = nn.relu(Conv(self.features, (3, 3), kernel_init=_HE_INIT,
                             name=f"conv{i + 1}", **layer)(h))
            encoded.append(h)
        for j in range(1, self.depth):
            h = ConvTranspose(self.features, (3, 3), kernel_init=_HE_INIT,
                              name=f"deconv{j}", **layer)(h)
            if j % self.skip_every == 0:
                h = h + encoded[self.depth - j - 1]
            h = nn.relu(h)
        residual = ConvTranspose(channels, (3, 3), name=f"deconv{self.depth}", **layer)(h)
        # The global residual is added in x's dtype: a bfloat16 sum would round the image.
        return x + residual.astype(x.dtype)
