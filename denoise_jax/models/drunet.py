"""DRUNet (Zhang, Li, Zuo, Zhang, Van Gool, Timofte, TPAMI 2021): a bias-free residual U-Net.

Follows KAIR's `models/network_unet.py:UNetRes` with widths f0..fL = `features` and
n = `blocks` (KAIR's DRUNet: features (64, 128, 256, 512), n = 4, 32.6M parameters):
    head:   3×3 conv C → f0                                        -> s0
    down l: n × ResBlock(fl), then 2× down-sampling fl → f(l+1)    -> s(l+1)
    body:   n × ResBlock(fL)
    up l:   (+ s(l+1)) 2× up-sampling f(l+1) → fl, n × ResBlock(fl)
    tail:   (+ s0) 3×3 conv f0 → C
ResBlock = x + conv3×3(ReLU(conv3×3(x))); no batch norm and no bias anywhere.

Differences from KAIR: a global residual, `x - tail`, where DRUNet predicts the clean image
directly; both the tail and the second conv of every ResBlock start at zero, so the untrained
net is the identity (KAIR initialises orthogonally with gain 0.2, which starts every residual
branch near zero too). Down-sampling `down="conv"` (2×2 stride-2 conv, KAIR's default) or
`"unshuffle"` (pixel-unshuffle then 1×1 conv); up-sampling `up="shuffle"` (1×1 conv to 4×
channels then pixel-shuffle) or `"transpose"` (2×2 stride-2 transposed conv, KAIR's default).
Each pair has the same parameters and MACs. Defaults are the fastest measured in XLA on 2 CPU
cores (fwd + bwd, 16×64×64×32): strided conv 5-14 ms vs unshuffle 10-17 ms; pixel-shuffle
8-9 ms vs transposed conv 290-640 ms (XLA's transposed conv does not reach oneDNN); whole
train step (blocks=1, batch 16 of 64², a busy machine): 0.82 s vs 2.16 s with `up="transpose"`.
Inputs are reflect-padded to a multiple of 2**(len(features) - 1) and cropped back.
Defaults (a CPU pilot): features (32, 64, 128, 256), 2 blocks: 4,253,376 parameters, 17.8
GMACs at 256×256 (half DnCNN-17's 36.5); `blocks=1`: 2,299,584, 9.4 GMACs.

`noise_map=True`: the last input channel is a noise-level map (σ per pixel, as DRUNet's
non-blind model); x: [B, H, W, C+1] → [B, H, W, C]. The shipped models are blind (False).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from denoise_jax.errors import UserError
from denoise_jax.models.layers import (
    Conv,
    ConvTranspose,
    crop_to,
    depth_to_space,
    pad_to_multiple,
    space_to_depth,
)
from denoise_jax.models.registry import register

DOWN = ("conv", "unshuffle")
UP = ("shuffle", "transpose")


class ResBlock(nn.Module):
    """x + conv(ReLU(conv(x))), bias-free 3×3 convs; x: [B, H, W, C] → same."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        c = x.shape[-1]
        layer = dict(padding="SAME", use_bias=False, dtype=self.dtype, param_dtype=jnp.float32)
        y = nn.relu(Conv(c, (3, 3), name="conv1", **layer)(x))
        # Zero: the block starts as the identity. Without BN, flax's default init would grow
        # the variance ~1.5× per block, compounding over the 7·blocks blocks in a row.
        return x + Conv(c, (3, 3), kernel_init=nn.initializers.zeros, name="conv2", **layer)(y)


@register("drunet", tiny=dict(features=(4, 8), blocks=1))
class DRUNet(nn.Module):
    """DRUNet: bias-free U-Net of conv-ReLU-conv residual blocks; returns x - noise.

    `features` = width per level (len(features) - 1 down-samplings), `blocks` ResBlocks per
    level on each side and in the body; `down` in ("conv", "unshuffle"), `up` in ("shuffle",
    "transpose"); `noise_map`: the last input channel is a σ map (see the module docstring).

    Call: `apply(variables, x, train=False)` with x: [B, H, W, C] in [0, 1]; returns the
    denoised [B, H, W, C] in x's dtype.
    """

    features: Sequence[int] = (32, 64, 128, 256)
    blocks: int = 2
    down: str = "conv"
    up: str = "shuffle"
    noise_map: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        feats = tuple(self.features)
        if not feats or min(feats) < 1 or self.blocks < 0:
            raise UserError(f"drunet: features must be >= 1 (at least one level) and blocks "
                            f">= 0, got {list(feats)}, {self.blocks}")
        if self.down not in DOWN or self.up not in UP:
            raise UserError(f"drunet: down must be one of {DOWN} and up one of {UP}, "
                            f"got {self.down!r}, {self.up!r}")
        image = x[..., :-1] if self.noise_map else x
        layer = dict(use_bias=False, dtype=self.dtype, param_dtype=jnp.float32)
        padded, hw = pad_to_multiple(x, 2 ** (len(feats) - 1))

        h = Conv(feats[0], (3, 3), padding="SAME", name="head", **layer)(padded.astype(self.dtype))
        skips = [h]
        for level, f in enumerate(feats[1:]):
            for k in range(self.blocks):
                h = ResBlock(self.dtype, name=f"down{level}_{k}")(h)
            if self.down == "conv":
                h = Conv(f, (2, 2), strides=(2, 2), padding="VALID", name=f"down{level}",
                         **layer)(h)
            else:
                h = Conv(f, (1, 1), name=f"down{level}", **layer)(space_to_depth(h))
            skips.append(h)
        for k in range(self.blocks):
            h = ResBlock(self.dtype, name=f"body_{k}")(h)
        for level in reversed(range(len(feats) - 1)):
            h = h + skips.pop()
            f = feats[level]
            if self.up == "shuffle":
                h = depth_to_space(Conv(4 * f, (1, 1), name=f"up{level}", **layer)(h))
            else:
                h = ConvTranspose(f, (2, 2), strides=(2, 2), padding="VALID", name=f"up{level}",
                                  **layer)(h)
            for k in range(self.blocks):
                h = ResBlock(self.dtype, name=f"up{level}_{k}")(h)
        h = h + skips.pop()
        noise = Conv(image.shape[-1], (3, 3), padding="SAME", kernel_init=nn.initializers.zeros,
                     name="tail", **layer)(h)
        # Subtract in x's dtype: a bfloat16 difference would round the image.
        return image - crop_to(noise, hw).astype(x.dtype)
