"""One-level 2-D Haar wavelet transform (DWT) and its inverse (IWT), as pure functions.

These replace pooling and up-sampling in MWCNN (Liu et al., CVPRW 2018).

Pixel naming (as in the MWCNN code and the real-noise comparison), for each 2×2 block of x:
    x1 = x[2i, 2j]      x3 = x[2i, 2j+1]
    x2 = x[2i+1, 2j]    x4 = x[2i+1, 2j+1]

Sub-bands (unscaled):
    LL = x1 + x2 + x3 + x4             (local sum)
    LH = (x2 + x4) - (x1 + x3)         (odd rows minus even rows: horizontal edges)
    HL = (x3 + x4) - (x1 + x2)         (odd columns minus even columns: vertical edges)
    HH = (x1 + x4) - (x2 + x3)         (diagonal)

Channel layout of `dwt`'s output: four blocks of C channels, [LL, LH, HL, HH], i.e. channel
`k * C + c` is sub-band k of input channel c (the real-noise comparison's order; the
official MWCNN code uses [LL, HL, LH, HH], which only permutes what a learned conv sees).

Scalings:
- "orthonormal" (MWCNN paper): every sub-band times 1/2 (LL = (x1+x2+x3+x4)/2), IWT also
  times 1/2. The transform is orthonormal, so it preserves energy (Parseval).
- "unscaled" (the real-noise comparison): DWT unscaled (LL = x1+x2+x3+x4), IWT divides by 4.

Relation to PyWavelets `cA, (cH, cV, cD) = pywt.dwt2(x, "haar")` on one channel (PyWavelets'
detail filter is "even minus odd", the opposite sign of ours for single differences):
    cA = LL, cH = -LH, cV = -HL, cD = HH       (orthonormal scaling)
and the "unscaled" sub-bands are twice the orthonormal ones.
"""

from typing import Literal

import jax.numpy as jnp

from denoise_jax.errors import UserError

Scale = Literal["orthonormal", "unscaled"]

# (DWT gain, IWT gain) per scaling; their product times 4 is 1, so IWT ∘ DWT = identity.
_GAINS = {"orthonormal": (0.5, 0.5), "unscaled": (1.0, 0.25)}


def _gains(scale: str) -> tuple[float, float]:
    if scale not in _GAINS:
        raise UserError(f"haar scale must be one of {sorted(_GAINS)}, got {scale!r}")
    return _GAINS[scale]


def dwt(x: jnp.ndarray, scale: Scale = "orthonormal") -> jnp.ndarray:
    """Haar DWT. x: [B, H, W, C] with even H, W -> [B, H/2, W/2, 4C] as [LL, LH, HL, HH] blocks.

    Keeps x's dtype. The models pad to even sizes before calling this.
    """
    if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2:
        raise UserError(f"dwt needs [B, H, W, C] with even H and W, got shape {x.shape}")
    gain, _ = _gains(scale)
    x1 = x[:, 0::2, 0::2, :]
    x2 = x[:, 1::2, 0::2, :]
    x3 = x[:, 0::2, 1::2, :]
    x4 = x[:, 1::2, 1::2, :]
    ll = x1 + x2 + x3 + x4
    lh = (x2 + x4) - (x1 + x3)
    hl = (x3 + x4) - (x1 + x2)
    hh = (x1 + x4) - (x2 + x3)
    y = jnp.concatenate([ll, lh, hl, hh], axis=-1)
    return y if gain == 1.0 else y * gain


def iwt(y: jnp.ndarray, scale: Scale = "orthonormal") -> jnp.ndarray:
    """Inverse Haar DWT. y: [B, h, w, 4C] as [LL, LH, HL, HH] blocks -> [B, 2h, 2w, C].

    Exact inverse of `dwt` with the same `scale`. Keeps y's dtype.
    """
    if y.ndim != 4 or y.shape[-1] % 4:
        raise UserError(f"iwt needs [B, h, w, 4C] (channels a multiple of 4), got {y.shape}")
    _, gain = _gains(scale)
    b, h, w, c4 = y.shape
    ll, lh, hl, hh = jnp.split(y, 4, axis=-1)
    x1 = (ll - lh - hl + hh) * gain
    x2 = (ll + lh - hl - hh) * gain
    x3 = (ll - lh + hl - hh) * gain
    x4 = (ll + lh + hl + hh) * gain
    even_rows = jnp.stack([x1, x3], axis=3)  # [B, h, w, 2 (column parity), C]
    odd_rows = jnp.stack([x2, x4], axis=3)
    out = jnp.stack([even_rows, odd_rows], axis=2)  # [B, h, 2 (row parity), w, 2, C]
    return out.reshape(b, 2 * h, 2 * w, c4 // 4)
