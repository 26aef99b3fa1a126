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
`nafnet_tiny` 288,691 (1.0 GMACs at 256²); `nafnet_small` (width 32, encoder blocks 1/1/2,
middle 4, decoder 1/1/1, local attention) 2,649,827 (5.8 GMACs at 256²).

`attention` picks what the simplified channel attention (SCA) pools: "global" (the official
NAFNet: the mean over the whole input, so a tile and the whole photo see different
statistics), "none" (no SCA, no `sca` conv), or "local": the mean over about `window`×`window`
input pixels around each pixel (64 by default, the training patch of
experiments/skimage_gauss.py), as TLC (Chu et al., ECCV 2022) does at test time. "local" works
on the grid of the coarsest level: each level's features are averaged over cells of
g = 2**len(enc_blk_nums) input pixels, then over the window // g cells around each cell (only
cells inside the image count), and repeated back to every pixel of the cell. That costs
almost nothing, where a per-pixel 64×64 box filter (XLA, 2 cores, batch 16 of 64², width 32:
40-200 ms forward + backward) would cost as much as the block itself; and the net stays what
the U-Net already is: local, and equivariant to shifts by multiples of g, so a tile gives the
whole photo's result away from its borders. "local" has the same parameters as "global".
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from jax import lax

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


ATTENTION = ("global", "local", "none")


def window_means(n: int, k: int) -> np.ndarray:
    """[n, n]: row i averages the positions [i - k//2, i + (k-1)//2] that lie in [0, n)."""
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    inside = (j >= i - k // 2) & (j <= i + (k - 1) // 2)
    return (inside / inside.sum(axis=1, keepdims=True)).astype(np.float32)


# Up to this many cells a side, the window mean is two small matrix products (a training
# crop or an inference tile: 12 to 70 cells); XLA's reduce_window and its gradient cost 10×
# more on CPU there. Beyond it (a whole photo untiled), the matrices grow as the square of
# the side, so one reduce_window per axis keeps the cost linear.
MATRIX_CELLS = 128


def local_mean(y: jnp.ndarray, cell: int, cells: int) -> jnp.ndarray:
    """Mean of y: [B, H, W, C] (H, W multiples of `cell`) over cell×cell blocks, then over
    the `cells`×`cells` blocks around each block (those inside the image); [B, H/cell, W/cell, C].

    The window spans [i - cells//2, i + (cells-1)//2] blocks, as PyTorch's avg_pool2d with
    padding cells//2 and count_include_pad=False (cropped to size), for the twin. It is a
    product of one window per axis, so each axis is averaged on its own.
    """
    b, h, w, c = y.shape
    grid = y.reshape(b, h // cell, cell, w // cell, cell, c).mean(axis=(2, 4))
    if max(h, w) // cell <= MATRIX_CELLS:
        rows, cols = (jnp.asarray(window_means(n // cell, cells)) for n in (h, w))
        return jnp.einsum("ij,bjkc,lk->bilc", rows, grid.astype(jnp.float32),
                          cols).astype(grid.dtype)
    for axis in (1, 2):
        n = grid.shape[axis]
        window, pad = [1, 1, 1, 1], [(0, 0)] * 4
        window[axis], pad[axis] = cells, (cells // 2, (cells - 1) // 2)
        # A concrete zero (not a traced one) makes this the differentiable reduce_window_sum.
        total = lax.reduce_window(grid, np.array(0, grid.dtype), lax.add, window, (1,) * 4, pad)
        count = window_means(n, cells).astype(bool).sum(axis=1).reshape(
            [n if a == axis else 1 for a in range(4)])
        grid = total / jnp.asarray(count, grid.dtype)
    return grid


class NAFBlock(nn.Module):
    """One NAFBlock on x: [B, H, W, C]; returns the same shape.

    `attention` "local" pools over `cells`×`cells` blocks of `cell`×`cell` pixels (see
    `local_mean`; H and W must be multiples of `cell`).
    """

    dw_expand: int = 2
    ffn_expand: int = 2
    attention: str = "global"
    cell: int = 1
    cells: int = 1
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
        if self.attention == "global":
            y = y * Conv(dw // 2, (1, 1), name="sca", **layer)(
                jnp.mean(y, axis=(1, 2), keepdims=True))
        elif self.attention == "local":
            # The 1×1 conv is linear: applied on the coarse grid, then repeated per pixel.
            a = Conv(dw // 2, (1, 1), name="sca", **layer)(local_mean(y, self.cell, self.cells))
            b, h, w, k = a.shape  # repeated per pixel inside the product (never materialised)
            y = (y.reshape(b, h, self.cell, w, self.cell, k)
                 * a[:, :, None, :, None, :]).reshape(y.shape)
        y = Conv(c, (1, 1), name="conv3", **layer)(y)
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
    2**len(enc_blk_nums), cropped back). `attention`: "global" (official), "local" (mean over
    about `window`×`window` input pixels) or "none"; see the module docstring.

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    width: int = 32
    enc_blk_nums: Sequence[int] = (2, 2, 4, 8)
    middle_blk_num: int = 12
    dec_blk_nums: Sequence[int] = (2, 2, 2, 2)
    attention: str = "global"
    window: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        channels = x.shape[-1]
        layer = dict(dtype=self.dtype, param_dtype=jnp.float32)
        levels = len(self.enc_blk_nums)
        padded, hw = pad_to_multiple(x, 2**levels)
        # "local": one grid of 2**levels input pixels for every level (see the docstring).
        cells = max(1, self.window // 2**levels)

        def block(level: int, name: str) -> NAFBlock:
            return NAFBlock(attention=self.attention, cell=2 ** (levels - level), cells=cells,
                            dtype=self.dtype, name=name)

        h = Conv(self.width, (3, 3), padding="SAME", name="intro", **layer)(
            padded.astype(self.dtype)
        )
        skips = []
        chan = self.width
        for level, num in enumerate(self.enc_blk_nums):
            for k in range(num):
                h = block(level, f"enc{level}_{k}")(h)
            skips.append(h)
            chan *= 2
            h = Conv(chan, (2, 2), strides=(2, 2), padding="VALID", name=f"down{level}",
                     **layer)(h)
        for k in range(self.middle_blk_num):
            h = block(levels, f"middle_{k}")(h)
        for up, (num, skip) in enumerate(zip(self.dec_blk_nums, skips[::-1], strict=True)):
            h = Conv(chan * 2, (1, 1), use_bias=False, name=f"up{up}", **layer)(h)
            h = pixel_shuffle(h, 2)
            chan //= 2
            h = h + skip
            for k in range(num):
                h = block(levels - 1 - up, f"dec{up}_{k}")(h)
        # A zero ending makes the untrained net the identity (every block already is): flax's
        # default init would start it with a residual of MSE ~0.4 that training must undo.
        residual = Conv(channels, (3, 3), padding="SAME", kernel_init=nn.initializers.zeros,
                        name="ending", **layer)(h)
        # The global residual is added in x's dtype: a bfloat16 sum would round the image.
        return crop_to(padded + residual.astype(x.dtype), hw)


def _build(width: int, enc_blk_nums: Sequence[int], middle_blk_num: int,
           dec_blk_nums: Sequence[int], dtype: Any, attention: str = "global",
           window: int = 64) -> NAFNet:
    if len(enc_blk_nums) != len(dec_blk_nums):
        raise UserError(
            f"nafnet: enc_blk_nums and dec_blk_nums need the same length (one decoder level "
            f"per encoder level), got {list(enc_blk_nums)} and {list(dec_blk_nums)}"
        )
    if width < 1 or middle_blk_num < 0 or min([*enc_blk_nums, *dec_blk_nums], default=0) < 0:
        raise UserError("nafnet: width must be >= 1 and block counts >= 0")
    if attention not in ATTENTION or window < 1:
        raise UserError(f"nafnet: attention must be one of {ATTENTION} and window >= 1, "
                        f"got {attention!r}, {window}")
    return NAFNet(width=width, enc_blk_nums=tuple(enc_blk_nums), middle_blk_num=middle_blk_num,
                  dec_blk_nums=tuple(dec_blk_nums), attention=attention, window=window,
                  dtype=dtype)


# Tiny: NAFNet compiles slowly (per block); three and two blocks, over one and two levels.
@register("nafnet", tiny=dict(width=4, enc_blk_nums=(1,), middle_blk_num=1, dec_blk_nums=(1,)))
def nafnet(width: int = 32, enc_blk_nums: Sequence[int] = (2, 2, 4, 8), middle_blk_num: int = 12,
           dec_blk_nums: Sequence[int] = (2, 2, 2, 2), attention: str = "global",
           window: int = 64, dtype: Any = jnp.float32) -> NAFNet:
    """NAFNet, SIDD width-32 configuration by default (29.2M parameters, 16 GMACs at 256²)."""
    return _build(width, enc_blk_nums, middle_blk_num, dec_blk_nums, dtype, attention, window)


@register("nafnet_tiny", tiny=dict(width=4, enc_blk_nums=(0, 1), middle_blk_num=0,
                                dec_blk_nums=(1, 0)))
def nafnet_tiny(width: int = 16, enc_blk_nums: Sequence[int] = (1, 1, 1), middle_blk_num: int = 1,
                dec_blk_nums: Sequence[int] = (1, 1, 1), attention: str = "global",
                window: int = 64, dtype: Any = jnp.float32) -> NAFNet:
    """NAFNet, tiny (width 16, 1 block per level, 3 levels): trainable on a few CPU cores."""
    return _build(width, enc_blk_nums, middle_blk_num, dec_blk_nums, dtype, attention, window)


# Tiny: local attention over a 2×2-cell window (cells of 2 pixels): the box filter runs.
@register("nafnet_small", tiny=dict(width=4, enc_blk_nums=(1,), middle_blk_num=1,
                                 dec_blk_nums=(1,), window=4))
def nafnet_small(width: int = 32, enc_blk_nums: Sequence[int] = (1, 1, 2),
                 middle_blk_num: int = 4, dec_blk_nums: Sequence[int] = (1, 1, 1),
                 attention: str = "local", window: int = 64,
                 dtype: Any = jnp.float32) -> NAFNet:
    """NAFNet, small (width 32, blocks 1/1/2, middle 4): tile-consistent local attention."""
    return _build(width, enc_blk_nums, middle_blk_num, dec_blk_nums, dtype, attention, window)
