"""NAFNet (Chen, Chu, Zhang, Sun, ECCV 2022): a U-Net of activation-free blocks.

Follows the official `NAFNet_arch.py` (megvii-research/NAFNet): NAFBlock = LayerNorm over
channels → 1×1 conv (×2 channels) → 3×3 depthwise conv → SimpleGate → simplified channel
attention → 1×1 conv, added with a learned per-channel scale `beta`; then LayerNorm → 1×1
conv (×2) → SimpleGate → 1×1 conv, added with scale `gamma`. `beta` and `gamma` start at
zero, so every block starts as the identity. Down-sampling: 2×2 stride-2 conv (channels ×2);
up-sampling: 1×1 conv without bias to 2× channels then PixelShuffle(2) (channels ÷2).

Differences from the official code: inputs are reflect-padded (the official code zero-pads)
to a multiple of 2**len(enc_blk_nums); no dropout (the official default rate is 0 anyway);
the ending conv's kernel starts at zero, so the untrained net is the identity.
Parameter counts (colour): `nafnet` (SIDD width-32 config) 29,159,715 (16.0 GMACs at 256²);
`nafnet_tiny` 288,691 (1.0 GMACs at 256²).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import Conv, crop_to, pad_to_multiple
from denoise_jax.models.registry import register


def simple_gate(x: jnp.ndarray) -> jnp.ndarray:
    """SimpleGate: splits the channels of x: [..., 2C] in two halves and multiplies them."""
    a, b = jnp.split(x, 2, axis=-1)
    return a * b


def pixel_shuffle(x: jnp.ndarray, r: int) -> jnp.ndarray:
    """PyTorch's PixelShuffle in NHWC: x: [B, H, W, C·r·r] → [B, H·r, W·r, C].

    Channel c·r·r + i·r + j goes to output channel c at sub-pixel (i, j), as in PyTorch, so
    converted official weights would line up.
    """
    b, h, w, crr = x.shape
    c = crr // (r * r)
    x = x.reshape(b, h, w, c, r, r)
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(b, h * r, w * r, c)


class NAFBlock(nn.Module):
    """One NAFBlock on x: [B, H, W, C]; returns the same shape."""

    dw_expand: int = 2
    ffn_expand: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        c = x.shape[-1]
        layer = dict(dtype=self.dtype, param_dtype=jnp.float32)
        dw = c * self.dw_expand

        y = nn.LayerNorm(epsilon=1e-6, name="norm1", **layer)(x)
        y = Conv(dw, (1, 1), name="conv1", **layer)(y)
        y = Conv(dw, (3, 3), padding="SAME", feature_group_count=dw, name="conv2", **layer)(y)
        y = simple_gate(y)
        attention = Conv(dw // 2, (1, 1), name="sca", **layer)(
            jnp.mean(y, axis=(1, 2), keepdims=True)
        )
        y = Conv(c, (1, 1), name="conv3", **layer)(y * attention)
        beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32)
        x = x + y * beta.astype(self.dtype)

        y = nn.LayerNorm(epsilon=1e-6, name="norm2", **layer)(x)
        y = Conv(c * self.ffn_expand, (1, 1), name="conv4", **layer)(y)
        y = Conv(c, (1, 1), name="conv5", **layer)(simple_gate(y))
        gamma = self.param("gamma", nn.initializers.zeros, (c,), jnp.float32)
        return x + y * gamma.astype(self.dtype)


class NAFNet(nn.Module):
    """NAFNet: U-Net of NAFBlocks (LayerNorm, SimpleGate, channel attention), global residual.

    `width` channels at full resolution, doubled at each of the len(enc_blk_nums) levels;
    `enc_blk_nums[i]` / `dec_blk_nums[i]` blocks per encoder / decoder level and
    `middle_blk_num` at the bottom. Any H, W (reflect-padded to a multiple of
    2**len(enc_blk_nums), cropped back).

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    width: int = 32
    enc_blk_nums: Sequence[int] = (2, 2, 4, 8)
    middle_blk_num: int = 12
    dec_blk_nums: Sequence[int] = (2, 2, 2, 2)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        channels = x.shape[-1]
        layer = dict(dtype=self.dtype, param_dtype=jnp.float32)
        padded, hw = pad_to_multiple(x, 2 ** len(self.enc_blk_nums))

        h = Conv(self.width, (3, 3), padding="SAME", name="intro", **layer)(
            padded.astype(self.dtype)
        )
        skips = []
        chan = self.width
        for level, num in enumerate(self.enc_blk_nums):
            for k in range(num):
                h = NAFBlock(dtype=self.dtype, name=f"enc{level}_{k}")(h)
            skips.append(h)
            chan *= 2
            h = Conv(chan, (2, 2), strides=(2, 2), padding="VALID", name=f"down{level}",
                     **layer)(h)
        for k in range(self.middle_blk_num):
            h = NAFBlock(dtype=self.dtype, name=f"middle_{k}")(h)
        for level, (num, skip) in enumerate(zip(self.dec_blk_nums, skips[::-1], strict=True)):
            h = Conv(chan * 2, (1, 1), use_bias=False, name=f"up{level}", **layer)(h)
            h = pixel_shuffle(h, 2)
            chan //= 2
            h = h + skip
            for k in range(num):
                h = NAFBlock(dtype=self.dtype, name=f"dec{level}_{k}")(h)
        # A zero ending makes the untrained net the identity (every block already is): flax's
        # default init would start it with a residual of MSE ~0.4 that training must undo.
        residual = Conv(channels, (3, 3), padding="SAME", kernel_init=nn.initializers.zeros,
                        name="ending", **layer)(h)
        # The global residual is added in x's dtype: a bfloat16 sum would round the image.
        return crop_to(padded + residual.astype(x.dtype), hw)


def _build(width: int, enc_blk_nums: Sequence[int], middle_blk_num: int,
           dec_blk_nums: Sequence[int], dtype: Any) -> NAFNet:
    if len(enc_blk_nums) != len(dec_blk_nums):
        raise UserError(
            f"nafnet: enc_blk_nums and dec_blk_nums need the same length (one decoder level "
            f"per encoder level), got {list(enc_blk_nums)} and {list(dec_blk_nums)}"
        )
    if width < 1 or middle_blk_num < 0 or min([*enc_blk_nums, *dec_blk_nums], default=0) < 0:
        raise UserError("nafnet: width must be >= 1 and block counts >= 0")
    return NAFNet(width=width, enc_blk_nums=tuple(enc_blk_nums), middle_blk_num=middle_blk_num,
                  dec_blk_nums=tuple(dec_blk_nums), dtype=dtype)


@register("nafnet")
def nafnet(width: int = 32, enc_blk_nums: Sequence[int] = (2, 2, 4, 8), middle_blk_num: int = 12,
           dec_blk_nums: Sequence[int] = (2, 2, 2, 2), dtype: Any = jnp.float32) -> NAFNet:
    """NAFNet, SIDD width-32 configuration by default (29.2M parameters, 16 GMACs at 256²)."""
    return _build(width, enc_blk_nums, middle_blk_num, dec_blk_nums, dtype)


@register("nafnet_tiny")
def nafnet_tiny(width: int = 16, enc_blk_nums: Sequence[int] = (1, 1, 1), middle_blk_num: int = 1,
                dec_blk_nums: Sequence[int] = (1, 1, 1), dtype: Any = jnp.float32) -> NAFNet:
    """NAFNet, tiny (width 16, 1 block per level, 3 levels): trainable on a few CPU cores."""
    return _build(width, enc_blk_nums, middle_blk_num, dec_blk_nums, dtype)
