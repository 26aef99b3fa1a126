"""The Keras MNIST autoencoder's networks: the dense 784-32-784 one and its Keras-blog conv variant.

Both end in a sigmoid, as in the tutorial, so their output is a probability-like image in [0, 1].
The tutorial trains them with binary cross-entropy; for a numerically stable BCE build them with
`return_logits=True` and use `optax.sigmoid_binary_cross_entropy(logits, clean)`; the
denoised image is then `jax.nn.sigmoid(logits)`.

Weights start from Keras' defaults (Glorot-uniform kernels, zero biases) so the tutorial's
training behaviour (Adadelta, 100 epochs) carries over.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import Conv, crop_to, pad_to_multiple
from denoise_jax.models.registry import register

_KERAS_INIT = nn.initializers.glorot_uniform()


@register("dae_dense", tiny=dict(hidden=16))
class DenseDAE(nn.Module):
    """Dense DAE (Keras MNIST autoencoder): Dense(32, relu), Dense(784, sigmoid).

    `hidden` is the code size: 32 in the tutorial's code (`encoding_dim = 32`) although its text
    says 64. The output layer has H*W*C units, so a 28×28×1 input gives the tutorial's 784 and
    other sizes work too (Flax infers the input size at `init`; the variables then fit only
    that size).

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns
    [B, H, W, C] sigmoid outputs (or pre-sigmoid logits when `return_logits`), in x's dtype.
    """

    hidden: int = 32
    return_logits: bool = False
    dtype: Any = jnp.float32
    # The input size the tutorial built it for; `summary.table` measures it there.
    summary_shape: ClassVar[tuple[int, ...]] = (1, 28, 28, 1)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.hidden < 1:
            raise UserError(f"dae_dense: hidden must be >= 1, got {self.hidden}")
        b, h, w, c = x.shape
        dense = dict(dtype=self.dtype, param_dtype=jnp.float32, kernel_init=_KERAS_INIT)
        z = x.reshape(b, h * w * c).astype(self.dtype)
        z = nn.relu(nn.Dense(self.hidden, name="encoder", **dense)(z))
        logits = nn.Dense(h * w * c, name="decoder", **dense)(z)
        out = logits if self.return_logits else nn.sigmoid(logits)
        return out.reshape(x.shape).astype(x.dtype)


@register("dae_conv", tiny=dict(features=8))
class ConvDAE(nn.Module):
    """Conv DAE (Keras blog): Conv32-pool-Conv32-pool / Conv32-up-Conv32-up-Conv(C, sigmoid).

    All convolutions 3×3 'same'; pooling is 2×2 max, up-sampling 2× nearest neighbour, as
    Keras' MaxPooling2D / UpSampling2D. Input is reflect-padded to a multiple of 4 and the
    output cropped back, so any H, W work.

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns
    [B, H, W, C] sigmoid outputs (or logits when `return_logits`), in x's dtype.
    """

    features: int = 32
    return_logits: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        channels = x.shape[-1]
        y, hw = pad_to_multiple(x, 4)
        y = y.astype(self.dtype)

        def conv(features: int, name: str) -> Conv:
            return Conv(features, (3, 3), padding="SAME", dtype=self.dtype,
                        param_dtype=jnp.float32, kernel_init=_KERAS_INIT, name=name)

        for i in (1, 2):
            y = nn.relu(conv(self.features, f"enc{i}")(y))
            y = nn.max_pool(y, (2, 2), strides=(2, 2))
        for i in (1, 2):
            y = nn.relu(conv(self.features, f"dec{i}")(y))
            y = jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)
        logits = conv(channels, "out")(y)
        out = logits if self.return_logits else nn.sigmoid(logits)
        return crop_to(out, hw).astype(x.dtype)
