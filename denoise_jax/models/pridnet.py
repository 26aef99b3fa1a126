"""PRIDNet, the Pyramid Real Image Denoising Network (Zhao, Jiang, Men, Ju, VCIP 2019).

Three stages: feature extraction (a conv stack with channel attention), a multi-scale
"pyramid" (average-pool the features by 1, 2, 4, 8, 16; a U-Net per scale; bilinear
up-sampling back; concatenation), and kernel-selecting fusion (parallel 3×3/5×5/7×7 convs
weighted per channel by a softmax over the three), then an output conv.

`pridnet` — the paper, read from the official TF1 code (491506870/PRIDNet, `network.py`),
with f = `features` = 32 and C the image channels (the paper: raw, C = 1; here 1 or 3):
    4 × conv(f) + LeakyReLU(0.2) -> channel attention (GAP -> Dense(f/16) ReLU -> Dense(f)
    sigmoid, multiply) -> conv(C) + LeakyReLU -> concat with the input (2C channels)
    -> 5 branches, branch k: avg-pool by 2^k -> U-Net -> bilinear resize to full size (C)
    -> concat [input features, branch 1, 2, 4, 8, 16] (7C)
    -> kernel selection: conv 3/5/7 (7C each, LeakyReLU), GAP of their sum -> Dense(4C)
       ReLU -> 3 × Dense(7C) -> softmax over the three -> weighted sum
    -> conv 3×3 to C (the output image; no residual, as the official code).
  U-Net: 4 × conv(f), max-pool 2, 4 × conv(2f), …, 4 × conv(16f); up: 2×2 stride-2
  transposed conv (no bias) to the skip's width, concat the skip, 3 × conv; 1×1 conv to C.
  All 3×3 convs have biases and LeakyReLU 0.2. Each branch has its own weights.
  Parameters at the defaults: 74,185,129 (grey) / 74,226,403 (colour), almost all in
  the five U-Nets (14.8M each).

`pridnet_realnoise` — the real-noise comparison's Keras variant (docs/reference.md#architectures),
f = `features` = 64:
    4 × conv(f) + ReLU -> channel attention (GAP -> Dense(2) ReLU -> Dense(f) sigmoid)
    -> conv 3×3 to C (linear) -> concat [input, that] (2C = 6 for colour)
    -> 5 branches, avg-pool by 1, 2, 4, 8, 16 -> U-Net f..16f (64..1024) -> 1×1 conv to C
       -> bilinear up-sampling -> concat [2C features, up16, up8, up4, up2, up1] (7C = 21)
    -> kernel selection with 7C (21) filters, linear convs, Dense(2) ReLU, 3 × Dense(7C),
       softmax -> conv 3×3 to C (linear).
  Its U-Net: 4 × (conv + ReLU) per level down (max-pool 2 between), 3 × per level up; the
  up-sampling is a 3×3 stride-2 transposed conv (with bias) to HALF the skip's width
  (the comparison's 256/128/64/32 for skips of 512/256/128/64), then concat the skip.
  Parameters at the defaults: 290,622,993 (colour; 290,575,279 grey), the comparison's "~291M",
  58,094,179 of them in each U-Net. The comparison also puts an L2 weight decay of 1e-3 on the
  U-Net and kernel-selection conv kernels: a training-loss term, not part of this module.

Sizes. Average pooling by 16 followed by a U-Net with 4 max-pools needs multiples of
16·2^4 = 256 end to end. Instead of padding every input to 256, the model pads (reflect) to a
multiple of 16 so every pooling is exact, and each branch's U-Net pads its own pooled map to
a multiple of 16 and crops back; a 256-multiple input is never padded, and any H, W works.

Both: x: [B, H, W, C] float in [0, 1]; returns [B, H, W, C] in x's dtype. No batch norm.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import Conv, ConvTranspose, crop_to, pad_to_multiple
from denoise_jax.models.registry import register

POOLS = (1, 2, 4, 8, 16)


def _activate(x: jnp.ndarray, activation: str) -> jnp.ndarray:
    if activation == "lrelu":
        return nn.leaky_relu(x, negative_slope=0.2)
    if activation == "relu":
        return nn.relu(x)
    if activation == "linear":
        return x
    raise UserError(f"pridnet: unknown activation {activation!r}; use lrelu, relu or linear")


def _conv(features: int, kernel: int, dtype: Any, name: str) -> nn.Module:
    return Conv(features, (kernel, kernel), padding="SAME", dtype=dtype,
                param_dtype=jnp.float32, name=name)


class ChannelAttention(nn.Module):
    """Squeeze-excitation: x * sigmoid(Dense(C)(relu(Dense(hidden)(GAP(x))))). Same shape."""

    hidden: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        dense = lambda n, name: nn.Dense(n, dtype=self.dtype, param_dtype=jnp.float32, name=name)
        v = jnp.mean(x, axis=(1, 2))
        v = nn.relu(dense(self.hidden, "squeeze")(v))
        v = nn.sigmoid(dense(x.shape[-1], "excite")(v))
        return x * v[:, None, None, :]


class KernelSelect(nn.Module):
    """Selective-kernel fusion. x: [B, H, W, Cin] -> [B, H, W, features].

    Convs 3×3, 5×5, 7×7 to `features`; GAP of their sum -> Dense(hidden) ReLU -> one
    Dense(features) per conv; softmax across the three per channel; weighted sum.
    """

    features: int
    hidden: int
    activation: str = "lrelu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        dense = lambda n, name: nn.Dense(n, dtype=self.dtype, param_dtype=jnp.float32, name=name)
        maps = [
            _activate(_conv(self.features, k, self.dtype, f"conv{k}x{k}")(x), self.activation)
            for k in (3, 5, 7)
        ]
        z = jnp.mean(sum(maps), axis=(1, 2))
        z = nn.relu(dense(self.hidden, "squeeze")(z))
        logits = jnp.stack([dense(self.features, f"select{k}")(z) for k in (3, 5, 7)], axis=1)
        weights = jax.nn.softmax(logits, axis=1)  # [B, 3, features]
        return sum(m * weights[:, i, None, None, :] for i, m in enumerate(maps))


class UNet(nn.Module):
    """The per-branch U-Net. x: [B, h, w, Cin] (any h, w) -> [B, h, w, out_features].

    `widths[i]`: conv width at level i (shallow to deep), `len(widths) - 1` max-pools;
    `up_widths[i]`: width of the transposed conv that up-samples into level i.
    """

    widths: Sequence[int]
    up_widths: Sequence[int]
    out_features: int
    down_convs: int = 4
    up_convs: int = 3
    up_kernel: int = 2
    up_bias: bool = False
    activation: str = "lrelu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        depth = len(self.widths) - 1
        h, hw = pad_to_multiple(x, 2**depth)
        conv = lambda w, name: _conv(w, 3, self.dtype, name)
        skips = []
        for i, w in enumerate(self.widths):
            if i:
                h = nn.max_pool(h, (2, 2), strides=(2, 2))
            for k in range(self.down_convs):
                h = _activate(conv(w, f"down{i}_{k}")(h), self.activation)
            skips.append(h)
        for i in reversed(range(depth)):
            h = ConvTranspose(self.up_widths[i], (self.up_kernel, self.up_kernel),
                              strides=(2, 2), padding="SAME", use_bias=self.up_bias,
                              dtype=self.dtype, param_dtype=jnp.float32, name=f"upsample{i}")(h)
            h = jnp.concatenate([h, skips[i]], axis=-1)
            for k in range(self.up_convs):
                h = _activate(conv(self.widths[i], f"up{i}_{k}")(h), self.activation)
        h = _conv(self.out_features, 1, self.dtype, "out")(h)
        return crop_to(h, hw)


def _pool_and_upsample(unet: nn.Module, x: jnp.ndarray, pool: int) -> jnp.ndarray:
    """Average-pools x: [B, H, W, C] by `pool` (H, W multiples of it), runs `unet`, resizes back."""
    pooled = nn.avg_pool(x, (pool, pool), strides=(pool, pool)) if pool > 1 else x
    y = unet(pooled)
    if pool == 1:
        return y
    return jax.image.resize(y, (*x.shape[:3], y.shape[-1]), method="bilinear")


def _check(name: str, features: int, levels: int) -> None:
    if features < 1 or levels < 1:
        raise UserError(f"{name}: features and unet_levels must be >= 1, got {features}, {levels}")


# Tiny: five U-Net branches compile slowly; one level keeps the paper variant cheap.
@register("pridnet", tiny=dict(features=4, unet_levels=1))
class PRIDNet(nn.Module):
    """PRIDNet as in the paper / official code; LeakyReLU 0.2.

    Tiny: `features=4, unet_levels=2`.

    `features`: base width f (paper 32): feature extraction f, U-Net f..f·2^(levels-1).
    `unet_levels`: levels per branch U-Net (paper 5).
    """

    features: int = 32
    unet_levels: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        del train  # no batch norm, no dropout
        _check("pridnet", self.features, self.unet_levels)
        f, c = self.features, x.shape[-1]
        padded, hw = pad_to_multiple(x, max(POOLS))
        inp = padded.astype(self.dtype)

        h = inp
        for k in range(4):
            h = _activate(_conv(f, 3, self.dtype, f"fe_conv{k}")(h), "lrelu")
        h = ChannelAttention(max(1, f // 16), self.dtype, name="attention")(h)
        h = _activate(_conv(c, 3, self.dtype, "fe_out")(h), "lrelu")
        feats = jnp.concatenate([inp, h], axis=-1)  # 2C

        widths = tuple(f * 2**i for i in range(self.unet_levels))
        branches = [
            _pool_and_upsample(
                UNet(widths, widths[:-1], c, up_kernel=2, up_bias=False, activation="lrelu",
                     dtype=self.dtype, name=f"branch_pool{p}"),
                feats, p)
            for p in POOLS
        ]
        fused = jnp.concatenate([feats, *branches], axis=-1)  # 7C
        h = KernelSelect(7 * c, 4 * c, "lrelu", self.dtype, name="kernel_select")(fused)
        out = _conv(c, 3, self.dtype, "out")(h)
        return crop_to(out, hw).astype(x.dtype)


# Tiny: two levels cover the comparison's 3×3 stride-2 up-sampling (the odd-size risk).
@register("pridnet_realnoise", tiny=dict(features=4, unet_levels=2))
class PRIDNetRealNoise(nn.Module):
    """The real-noise comparison's PRIDNet (~291M parameters at the defaults); ReLU.

    Tiny: `features=4, unet_levels=2`.

    `features`: base width f (comparison: 64): feature extraction f, U-Net f..16f.
    `attention_hidden`: the channel attention's bottleneck (comparison: 2).
    """

    features: int = 64
    attention_hidden: int = 2
    unet_levels: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        del train  # no batch norm, no dropout
        _check("pridnet_realnoise", self.features, self.unet_levels)
        f, c = self.features, x.shape[-1]
        padded, hw = pad_to_multiple(x, max(POOLS))
        inp = padded.astype(self.dtype)

        h = inp
        for k in range(4):
            h = nn.relu(_conv(f, 3, self.dtype, f"fe_conv{k}")(h))
        h = ChannelAttention(self.attention_hidden, self.dtype, name="attention")(h)
        h = _conv(c, 3, self.dtype, "fe_out")(h)
        feats = jnp.concatenate([inp, h], axis=-1)  # 2C

        widths = tuple(f * 2**i for i in range(self.unet_levels))
        # The comparison's transposed convs have half the skip's width (its 256/128/64/32).
        up_widths = tuple(max(1, w // 2) for w in widths[:-1])
        branches = [
            _pool_and_upsample(
                UNet(widths, up_widths, c, up_kernel=3, up_bias=True, activation="relu",
                     dtype=self.dtype, name=f"branch_pool{p}"),
                feats, p)
            for p in sorted(POOLS, reverse=True)  # the comparison concatenates 16, 8, 4, 2, 1
        ]
        fused = jnp.concatenate([feats, *branches], axis=-1)  # 7C: 21 for colour
        h = KernelSelect(7 * c, 2, "linear", self.dtype, name="kernel_select")(fused)
        out = _conv(c, 3, self.dtype, "out")(h)
        return crop_to(out, hw).astype(x.dtype)
