"""MWCNN (Liu, Zhang, Zhang, Lin, Zuo, CVPRW 2018): a U-Net whose down-sampling is a Haar DWT
and whose up-sampling is the inverse transform (IWT), so no information is lost between levels.

Two variants, both registered:

`mwcnn` — the paper. Our reading of the paper and of the official code
(lpj0/MWCNN_PyTorch, `model/mw.py`, `model/common.py`), with widths (w0, w1, w2) =
(160, 256, 256) and n = `convs_per_level - 1` = 3:
    level 0:  DWT -> conv(4C->w0) + n × conv(w0)                                [4 layers]
    level 1:  DWT -> conv(4·w0->w1) + n × conv(w1)                              [4]
    level 2:  DWT -> conv(4·w1->w2) + 2n × conv(w2) + conv(w2->4·w1) -> IWT     [8]
    level 1:  (+ level-1 features) n × conv(w1) + conv(w1->4·w0) -> IWT         [4]
    level 0:  (+ level-0 features) n × conv(w0) + conv(w0->4C) -> IWT           [4]
    output:   x + that (global residual)
24 conv layers; every layer but the last is 3×3 conv + BN + ReLU (the paper; the official
code builds the same blocks with BN switched off: `use_bn=False`). Skips are sums, as in
the official code. Haar with 1/2 scaling (orthonormal). Any number of levels works
(`len(widths)`); the input is padded to a multiple of 2^levels (8 for the paper). BN uses
PyTorch's defaults (momentum 0.1 there = 0.9 here, epsilon 1e-5); convs before BN have no
bias. Parameters at the defaults: 16,152,260 (grey) / 16,175,308 (colour).

`mwcnn_realnoise` — the real-noise comparison's 4-level Keras variant
(docs/reference.md#architectures), with f = `features` = 64:
    Conv_block(w) = 3 × (3×3 conv w + ReLU);  DWT unscaled, IWT divides by 4
    enc:  CB(f) -> DWT -> CB(2f) -> DWT -> CB(4f) -> DWT -> CB(8f) -> DWT
          -> CB(8f) -> BN -> CB(8f)
    dec:  conv(32f) -> IWT -> + CB(8f) output -> CB(8f) -> conv(16f) -> IWT -> + CB(4f) output
          -> CB(4f) -> conv(8f) -> IWT -> + CB(2f) output -> CB(2f) -> conv(4f) -> IWT
          -> + CB(f) output -> CB(f) -> conv(2f) -> 1×1 conv to C
i.e. blocks of 64/128/256/512/512/512 channels on the way down and conv 2048 -> IWT on the
way up. The plain convs (2048, 1024, 512, 256, 128 and the 1×1) have no activation; there is
no global residual (the network outputs the image). The comparison's Conv_block also defines a
fourth conv and four BN layers that its `call` never uses: they hold no parameters and are
left out. BN as Keras (momentum 0.99, epsilon 1e-3). Input padded to a multiple of 16.
Parameters at the defaults: 58,814,019 (colour) / 58,812,609 (grey).

Both: x: [B, H, W, C] float in [0, 1], any H, W, C in {1, 3}; returns [B, H, W, C] in x's
dtype. With BN, apply with `mutable=["batch_stats"]` when `train=True`.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.haar import dwt, iwt
from denoise_jax.models.layers import Conv, crop_to, pad_to_multiple
from denoise_jax.models.registry import register


class ConvBNReLU(nn.Module):
    """3×3 conv (+ BN) + ReLU. x: [B, H, W, Cin] -> [B, H, W, features]."""

    features: int
    use_bn: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        x = Conv(self.features, (3, 3), padding="SAME", use_bias=not self.use_bn,
                 dtype=self.dtype, param_dtype=jnp.float32, name="conv")(x)
        if self.use_bn:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             dtype=self.dtype, param_dtype=jnp.float32, name="bn")(x)
        return nn.relu(x)


@register("mwcnn", tiny=dict(widths=(4, 4), convs_per_level=2))
class MWCNN(nn.Module):
    """MWCNN as in the paper: Haar-DWT U-Net of conv+BN+ReLU layers with a global residual.

    `widths`: channels per level, shallow to deep (paper: 160, 256, 256); the number of
    levels (DWTs) is `len(widths)`. `convs_per_level`: conv layers per level on each side
    (paper: 4; the deepest level has twice that). Tiny: `widths=(8, 8, 8), convs_per_level=2`.
    """

    widths: Sequence[int] = (160, 256, 256)
    convs_per_level: int = 4
    use_bn: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        widths = tuple(self.widths)
        if not widths or min(widths) < 1 or self.convs_per_level < 1:
            raise UserError(
                "mwcnn: widths must be a non-empty list of positive ints and "
                f"convs_per_level >= 1, got {self.widths}, {self.convs_per_level}"
            )
        levels, channels, extra = len(widths), x.shape[-1], self.convs_per_level - 1
        block = lambda w, name: ConvBNReLU(w, self.use_bn, self.dtype, name=name)

        padded, hw = pad_to_multiple(x, 2**levels)
        h = padded.astype(self.dtype)
        skips = []
        for i, w in enumerate(widths):
            h = dwt(h, "orthonormal")
            for k in range(1 + extra):
                h = block(w, f"down{i}_{k}")(h, train)
            skips.append(h)
        skips.pop()  # the deepest level feeds the expanding path directly
        for k in range(extra):
            h = block(widths[-1], f"deep_{k}")(h, train)
        for i in reversed(range(1, levels)):
            # The last layer of level i widens to 4× the channels of level i-1 for the IWT.
            h = block(4 * widths[i - 1], f"up{i}_{extra}")(h, train)
            h = iwt(h, "orthonormal") + skips[i - 1]
            for k in range(extra):
                h = block(widths[i - 1], f"up{i - 1}_{k}")(h, train)
        h = Conv(4 * channels, (3, 3), padding="SAME", dtype=self.dtype,
                 param_dtype=jnp.float32, name="tail")(h)
        residual = crop_to(iwt(h, "orthonormal"), hw)
        return x + residual.astype(x.dtype)


class RealNoiseConvBlock(nn.Module):
    """The real-noise comparison's Conv_block: `convs` × (3×3 conv + ReLU).

    x: [B, H, W, Cin] -> [..., features]."""

    features: int
    convs: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for k in range(self.convs):
            x = nn.relu(Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype,
                             param_dtype=jnp.float32, name=f"conv{k}")(x))
        return x


@register("mwcnn_realnoise", tiny=dict(features=4))
class MWCNNRealNoise(nn.Module):
    """Real-noise comparison's MWCNN: 4 unscaled-Haar levels, blocks f/2f/4f/8f/8f/8f, no residual.

    `features` is the first block's width (comparison: 64), doubling per level up to 8×;
    `convs_per_block`: convs per Conv_block (comparison: 3). Tiny: `features=4, convs_per_block=1`.
    """

    features: int = 64
    convs_per_block: int = 3
    dtype: Any = jnp.float32

    dwt_levels = 4  # fixed by the comparison (a class constant, not a field)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        if self.features < 1 or self.convs_per_block < 1:
            raise UserError(
                "mwcnn_realnoise: features and convs_per_block must be >= 1, got "
                f"{self.features}, {self.convs_per_block}"
            )
        f, channels = self.features, x.shape[-1]
        widths = (f, 2 * f, 4 * f, 8 * f)
        conv = lambda w, k, name: Conv(w, (k, k), padding="SAME", dtype=self.dtype,
                                       param_dtype=jnp.float32, name=name)
        block = lambda w, name: RealNoiseConvBlock(w, self.convs_per_block, self.dtype, name=name)

        padded, hw = pad_to_multiple(x, 2**self.dwt_levels)
        h = padded.astype(self.dtype)
        skips = []
        for i, w in enumerate(widths):
            h = block(w, f"enc{i}")(h)
            skips.append(h)
            h = dwt(h, "unscaled")
        h = block(8 * f, "bottom0")(h)
        # Keras BatchNormalization defaults.
        h = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3,
                         dtype=self.dtype, param_dtype=jnp.float32, name="bottom_bn")(h)
        h = block(8 * f, "bottom1")(h)
        for i in reversed(range(self.dwt_levels)):
            h = conv(4 * widths[i], 3, f"widen{i}")(h)
            h = iwt(h, "unscaled") + skips[i]
            h = block(widths[i], f"dec{i}")(h)
        h = conv(2 * f, 3, "last")(h)
        out = conv(channels, 1, "out")(h)
        return crop_to(out, hw).astype(x.dtype)
