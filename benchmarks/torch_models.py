"""PyTorch twins of the registered JAX models, for speed comparisons in the same run.

Each twin has the same layers, shapes and parameter count as the JAX model of the same name
(denoise_jax/models/*.py) with the same keyword arguments, so a step of one costs the same
arithmetic as a step of the other. Only speed is compared: weights are PyTorch's default
initialisation (the JAX models' zero-initialised last layers are zeroed here too), never
converted from JAX. Layout is PyTorch's native NCHW; `channels` is the image channel count
(the JAX modules read it from the input).

    build(name, channels=3, **kwargs) -> torch.nn.Module   # x: [B, C, H, W] -> same
    count_params(module) -> int                            # trainable parameters

Twins: dncnn, rednet, mwcnn (paper), nafnet, nafnet_tiny, nafnet_small, pridnet (paper),
drunet, ffdnet. Batch norm uses the JAX models' epsilons and momentum (flax 0.9 = PyTorch 0.1).
Pixel-(un)shuffles are PyTorch's (channel order c·4 + sub-pixel; the JAX models' new ones
use sub-pixel·C + c): a relabelling of the adjacent conv's channels, the same arithmetic.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pads x: [B, C, H, W] at the bottom/right to multiples of `multiple`."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflect needs pad < size; edge padding for tiny inputs, as the JAX models.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def _conv(cin: int, cout: int, k: int = 3, bias: bool = True, **kw) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias, **kw)


# ---------------------------------------------------------------------------------------
# DnCNN


class DnCNN(nn.Module):
    """Twin of `dncnn`: conv+ReLU, (depth-2) × conv+BN+ReLU, conv; returns x - noise."""

    def __init__(self, depth: int = 17, features: int = 64, use_bn: bool = True,
                 channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv(channels, features), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(_conv(features, features, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm2d(features, eps=1e-4, momentum=0.1))
            layers.append(nn.ReLU(inplace=True))
        last = _conv(features, channels)
        nn.init.zeros_(last.weight)
        layers.append(last)
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


# ---------------------------------------------------------------------------------------
# RED-Net


class REDNet(nn.Module):
    """Twin of `rednet`: `depth` convs, `depth` transposed convs, skips every `skip_every`."""

    def __init__(self, depth: int = 5, features: int = 64, skip_every: int = 2,
                 channels: int = 3) -> None:
        super().__init__()
        self.depth, self.skip_every = depth, skip_every
        self.convs = nn.ModuleList(
            _conv(channels if i == 0 else features, features) for i in range(depth)
        )
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(features, channels if j == depth else features, 3, padding=1)
            for j in range(1, depth + 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, encoded = x, []
        for conv in self.convs:
            h = F.relu(conv(h))
            encoded.append(h)
        for j in range(1, self.depth):
            h = self.deconvs[j - 1](h)
            if j % self.skip_every == 0:
                h = h + encoded[self.depth - j - 1]
            h = F.relu(h)
        return x + self.deconvs[-1](h)


# ---------------------------------------------------------------------------------------
# MWCNN (paper)


def dwt(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal Haar DWT: [B, C, H, W] -> [B, 4C, H/2, W/2] as [LL, LH, HL, HH] blocks."""
    x1, x2 = x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2]
    x3, x4 = x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]
    bands = [x1 + x2 + x3 + x4, (x2 + x4) - (x1 + x3), (x3 + x4) - (x1 + x2),
             (x1 + x4) - (x2 + x3)]
    return torch.cat(bands, dim=1) * 0.5


def iwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of `dwt`: [B, 4C, h, w] -> [B, C, 2h, 2w]."""
    b, c4, h, w = y.shape
    ll, lh, hl, hh = torch.chunk(y, 4, dim=1)
    x1 = (ll - lh - hl + hh) * 0.5
    x2 = (ll + lh - hl - hh) * 0.5
    x3 = (ll - lh + hl - hh) * 0.5
    x4 = (ll + lh + hl + hh) * 0.5
    even_rows = torch.stack([x1, x3], dim=-1)  # [B, C, h, w, 2 (column parity)]
    odd_rows = torch.stack([x2, x4], dim=-1)
    return torch.stack([even_rows, odd_rows], dim=3).reshape(b, c4 // 4, 2 * h, 2 * w)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, use_bn: bool = True) -> None:
        layers: list[nn.Module] = [_conv(cin, cout, bias=not use_bn)]
        if use_bn:
            layers.append(nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class MWCNN(nn.Module):
    """Twin of `mwcnn` (the paper): Haar-DWT U-Net of conv+BN+ReLU, global residual."""

    def __init__(self, widths: Sequence[int] = (160, 256, 256), convs_per_level: int = 4,
                 use_bn: bool = True, channels: int = 3) -> None:
        super().__init__()
        widths = tuple(widths)
        self.levels, extra = len(widths), convs_per_level - 1
        cin = 4 * channels
        self.down = nn.ModuleList()
        for w in widths:
            blocks = []
            for _ in range(1 + extra):
                blocks.append(ConvBNReLU(cin, w, use_bn))
                cin = w
            self.down.append(nn.Sequential(*blocks))
            cin = 4 * w
        cin = widths[-1]
        self.deep = nn.Sequential(*(ConvBNReLU(cin, cin, use_bn) for _ in range(extra)))
        self.widen = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(1, self.levels)):
            self.widen.append(ConvBNReLU(cin, 4 * widths[i - 1], use_bn))
            cin = widths[i - 1]
            self.up.append(nn.Sequential(
                *(ConvBNReLU(cin, cin, use_bn) for _ in range(extra))))
        self.tail = _conv(cin, 4 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, (height, width) = _pad_to_multiple(x, 2**self.levels)
        skips = []
        for block in self.down:
            h = block(dwt(h))
            skips.append(h)
        skips.pop()
        h = self.deep(h)
        for k, i in enumerate(reversed(range(1, self.levels))):
            h = iwt(self.widen[k](h)) + skips[i - 1]
            h = self.up[k](h)
        residual = iwt(self.tail(h))[:, :, :height, :width]
        return x + residual


# ---------------------------------------------------------------------------------------
# NAFNet


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of [B, C, H, W] (NAFNet's LayerNorm2d), eps 1e-6."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


def _simple_gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return a * b


def local_mean(y: torch.Tensor, cell: int, cells: int) -> torch.Tensor:
    """The JAX `nafnet.local_mean`: y: [B, C, H, W] → [B, C, H/cell, W/cell]."""
    g = F.avg_pool2d(y, cell) if cell > 1 else y
    if cells == 1:
        return g
    h, w = g.shape[-2:]
    box = F.avg_pool2d(g, cells, stride=1, padding=cells // 2, count_include_pad=False)
    return box[:, :, :h, :w]


class NAFBlock(nn.Module):
    def __init__(self, c: int, dw_expand: int = 2, ffn_expand: int = 2,
                 attention: str = "global", cell: int = 1, cells: int = 1) -> None:
        super().__init__()
        dw = c * dw_expand
        self.attention, self.cell, self.cells = attention, cell, cells
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        if attention != "none":
            self.sca = nn.Conv2d(dw // 2, dw // 2, 1)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, c * ffn_expand, 1)
        self.conv5 = nn.Conv2d(c * ffn_expand // 2, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _simple_gate(self.conv2(self.conv1(self.norm1(x))))
        if self.attention == "global":
            y = y * self.sca(y.mean(dim=(2, 3), keepdim=True))
        elif self.attention == "local":
            a = self.sca(local_mean(y, self.cell, self.cells))
            b, c, h, w = a.shape  # repeated per pixel by a broadcast (cheap backward: a sum)
            k = self.cell
            y = (y.reshape(b, c, h, k, w, k) * a[:, :, :, None, :, None]).reshape(y.shape)
        y = self.conv3(y)
        x = x + y * self.beta
        y = self.conv5(_simple_gate(self.conv4(self.norm2(x))))
        return x + y * self.gamma


class NAFNet(nn.Module):
    """Twin of `nafnet` / `nafnet_tiny`: U-Net of NAFBlocks, PixelShuffle up, global residual."""

    def __init__(self, width: int = 32, enc_blk_nums: Sequence[int] = (2, 2, 4, 8),
                 middle_blk_num: int = 12, dec_blk_nums: Sequence[int] = (2, 2, 2, 2),
                 attention: str = "global", window: int = 64, channels: int = 3) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError("nafnet: enc_blk_nums and dec_blk_nums need the same length")
        levels = len(enc_blk_nums)
        self.multiple = 2**levels
        cells = max(1, window // 2**levels)

        def blocks(num: int, chan: int, level: int) -> nn.Sequential:
            return nn.Sequential(*(NAFBlock(chan, attention=attention, cell=2 ** (levels - level),
                                            cells=cells) for _ in range(num)))

        self.intro = _conv(channels, width)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        chan = width
        for level, num in enumerate(enc_blk_nums):
            self.encoders.append(blocks(num, chan, level))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle = blocks(middle_blk_num, chan, levels)
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for up, num in enumerate(dec_blk_nums):
            self.ups.append(nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False),
                                          nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(blocks(num, chan, levels - 1 - up))
        self.ending = _conv(chan, channels)
        nn.init.zeros_(self.ending.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = _pad_to_multiple(x, self.multiple)
        h = self.intro(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for up, decoder, skip in zip(self.ups, self.decoders, skips[::-1], strict=True):
            h = decoder(up(h) + skip)
        return (padded + self.ending(h))[:, :, :height, :width]


def nafnet_tiny(width: int = 16, enc_blk_nums: Sequence[int] = (1, 1, 1),
                middle_blk_num: int = 1, dec_blk_nums: Sequence[int] = (1, 1, 1),
                attention: str = "global", window: int = 64, channels: int = 3) -> NAFNet:
    """Twin of `nafnet_tiny` (its defaults: width 16, one block per level, 3 levels)."""
    return NAFNet(width, enc_blk_nums, middle_blk_num, dec_blk_nums, attention, window, channels)


def nafnet_small(width: int = 32, enc_blk_nums: Sequence[int] = (1, 1, 2),
                 middle_blk_num: int = 4, dec_blk_nums: Sequence[int] = (1, 1, 1),
                 attention: str = "local", window: int = 64, channels: int = 3) -> NAFNet:
    """Twin of `nafnet_small` (its defaults: width 32, blocks 1/1/2, middle 4, local SCA)."""
    return NAFNet(width, enc_blk_nums, middle_blk_num, dec_blk_nums, attention, window, channels)


# ---------------------------------------------------------------------------------------
# DRUNet


class ResBlock(nn.Module):
    """x + conv(ReLU(conv(x))), bias-free; the second conv starts at zero."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(c, c, bias=False), _conv(c, c, bias=False)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class DRUNet(nn.Module):
    """Twin of `drunet`: bias-free U-Net of ResBlocks, skips added, returns x - noise."""

    def __init__(self, features: Sequence[int] = (32, 64, 128, 256), blocks: int = 2,
                 down: str = "conv", up: str = "shuffle", noise_map: bool = False,
                 channels: int = 3) -> None:
        super().__init__()
        feats = tuple(features)
        self.noise_map, self.multiple = noise_map, 2 ** (len(feats) - 1)
        res = lambda c: nn.Sequential(*(ResBlock(c) for _ in range(blocks)))  # noqa: E731
        self.head = _conv(channels + int(noise_map), feats[0], bias=False)
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for c, c2 in itertools.pairwise(feats):
            sample = (nn.Conv2d(c, c2, 2, stride=2, bias=False) if down == "conv" else
                      nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4 * c, c2, 1, bias=False)))
            self.downs.append(nn.Sequential(res(c), sample))
            sample = (nn.Sequential(nn.Conv2d(c2, 4 * c, 1, bias=False), nn.PixelShuffle(2))
                      if up == "shuffle" else nn.ConvTranspose2d(c2, c, 2, stride=2, bias=False))
            self.ups.append(nn.Sequential(sample, res(c)))
        self.body = res(feats[-1])
        self.tail = _conv(feats[0], channels, bias=False)
        nn.init.zeros_(self.tail.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, :-1] if self.noise_map else x
        padded, (height, width) = _pad_to_multiple(x, self.multiple)
        skips = [self.head(padded)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = self.body(skips[-1])
        for up in reversed(self.ups):
            h = up(h + skips.pop())
        return image - self.tail(h + skips.pop())[:, :, :height, :width]


# ---------------------------------------------------------------------------------------
# FFDNet


class FFDNet(nn.Module):
    """Twin of `ffdnet`: PixelUnshuffle(2), conv(+BN)+ReLU stack, PixelShuffle(2); x - noise."""

    def __init__(self, depth: int = 12, features: int = 96, use_bn: bool = False,
                 channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.PixelUnshuffle(2), _conv(4 * channels, features),
                                   nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(_conv(features, features, bias=not use_bn))
            if use_bn:
                layers.append(nn.BatchNorm2d(features, eps=1e-4, momentum=0.1))
            layers.append(nn.ReLU(inplace=True))
        last = _conv(features, 4 * channels)
        nn.init.zeros_(last.weight)
        layers += [last, nn.PixelShuffle(2)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = _pad_to_multiple(x, 2)
        return x - self.body(padded)[:, :, :height, :width]


# ---------------------------------------------------------------------------------------
# PRIDNet (paper)

POOLS = (1, 2, 4, 8, 16)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.sigmoid(self.excite(F.relu(self.squeeze(x.mean(dim=(2, 3))))))
        return x * v[:, :, None, None]


class KernelSelect(nn.Module):
    def __init__(self, cin: int, features: int, hidden: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(cin, features, k) for k in (3, 5, 7))
        self.squeeze = nn.Linear(features, hidden)
        self.select = nn.ModuleList(nn.Linear(hidden, features) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [_lrelu(conv(x)) for conv in self.convs]
        z = F.relu(self.squeeze(sum(maps).mean(dim=(2, 3))))
        weights = torch.softmax(torch.stack([s(z) for s in self.select], dim=1), dim=1)
        return sum(m * weights[:, i, :, None, None] for i, m in enumerate(maps))


class UNet(nn.Module):
    """PRIDNet's branch U-Net (paper): 4 convs down, 2×2 stride-2 transposed conv, 3 convs up."""

    def __init__(self, cin: int, widths: Sequence[int], out_features: int) -> None:
        super().__init__()
        self.depth = len(widths) - 1
        self.down = nn.ModuleList()
        for w in widths:
            self.down.append(nn.ModuleList(_conv(cin if k == 0 else w, w) for k in range(4)))
            cin = w
        self.upsample, self.up = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(self.depth)):
            self.upsample.append(nn.ConvTranspose2d(cin, widths[i], 2, stride=2, bias=False))
            self.up.append(nn.ModuleList(
                _conv(2 * widths[i] if k == 0 else widths[i], widths[i]) for k in range(3)))
            cin = widths[i]
        self.out = nn.Conv2d(cin, out_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, (height, width) = _pad_to_multiple(x, 2**self.depth)
        skips = []
        for i, convs in enumerate(self.down):
            if i:
                h = F.max_pool2d(h, 2)
            for conv in convs:
                h = _lrelu(conv(h))
            skips.append(h)
        for k, i in enumerate(reversed(range(self.depth))):
            h = torch.cat([self.upsample[k](h), skips[i]], dim=1)
            for conv in self.up[k]:
                h = _lrelu(conv(h))
        return self.out(h)[:, :, :height, :width]


class PRIDNet(nn.Module):
    """Twin of `pridnet` (paper / official code): LeakyReLU 0.2, five pooled U-Net branches."""

    def __init__(self, features: int = 32, unet_levels: int = 5, channels: int = 3) -> None:
        super().__init__()
        f, c = features, channels
        self.fe = nn.ModuleList(_conv(c if k == 0 else f, f) for k in range(4))
        self.attention = ChannelAttention(f, max(1, f // 16))
        self.fe_out = _conv(f, c)
        widths = tuple(f * 2**i for i in range(unet_levels))
        self.branches = nn.ModuleList(UNet(2 * c, widths, c) for _ in POOLS)
        self.kernel_select = KernelSelect(7 * c, 7 * c, 4 * c)
        self.out = _conv(7 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp, (height, width) = _pad_to_multiple(x, max(POOLS))
        h = inp
        for conv in self.fe:
            h = _lrelu(conv(h))
        h = _lrelu(self.fe_out(self.attention(h)))
        feats = torch.cat([inp, h], dim=1)
        size = feats.shape[-2:]
        branches = []
        for pool, unet in zip(POOLS, self.branches, strict=True):
            if pool == 1:
                branches.append(unet(feats))
                continue
            y = unet(F.avg_pool2d(feats, pool))
            branches.append(F.interpolate(y, size=size, mode="bilinear", align_corners=False))
        h = self.kernel_select(torch.cat([feats, *branches], dim=1))
        return self.out(h)[:, :, :height, :width]


# ---------------------------------------------------------------------------------------

TWINS: dict[str, Callable[..., nn.Module]] = {
    "dncnn": DnCNN,
    "rednet": REDNet,
    "mwcnn": MWCNN,
    "nafnet": NAFNet,
    "nafnet_tiny": nafnet_tiny,
    "nafnet_small": nafnet_small,
    "pridnet": PRIDNet,
    "drunet": DRUNet,
    "ffdnet": FFDNet,
}


def build(name: str, channels: int = 3, **kwargs) -> nn.Module:
    """The twin of JAX model `name` with the JAX model's keyword arguments.

    A `dtype` argument (the JAX compute dtype) is ignored: twins run in float32. Unknown
    names raise KeyError, unknown arguments TypeError.
    """
    if name not in TWINS:
        raise KeyError(f"no PyTorch twin of {name!r}; twins: {', '.join(sorted(TWINS))}")
    kwargs.pop("dtype", None)
    return TWINS[name](channels=channels, **kwargs)
