"""Keeping the noisy photo's local means: a data-consistency step after a learned denoiser.

Zero-mean noise leaves an image's local means where they were: the mean of the noisy photo
over a 16×16 block is the clean photo's, up to σ/16. A network has no such guarantee; the
shipped Gaussian models drifted by 0.2 to 0.8 levels of 255 per channel on floating-point
inputs, a faint colour cast that BM3D (which keeps each patch's mean) does not have.
`keep_local_means` puts the low frequencies back: it adds to the denoised image the smooth
field of local mean differences between the noisy input and what the denoised image predicts
the noisy input should be.

What the noisy input should be depends on how it was stored. Noise added in floating point
leaves values outside [0, 1], and there the prediction is the denoised image itself. A photo
file holds the noisy image clipped to [0, 1] (and rounded, which is zero-mean), and clipping
raises dark means and lowers bright ones; there the prediction is E[clip(x + n)] for
n ~ N(0, σ²), x the denoised pixel and σ estimated from the residual, so near-black and
near-white regions are not pulled back to the clipped input's biased means.

The field: per channel, the block means of (noisy - prediction) over 16×16 blocks, a
Gaussian blur of one block, bilinear back to full size. Its own noise is about σ/16/√2 per
pixel, a fraction of a level at σ 25. Valid for zero-mean noise (Gaussian, Poisson-
Gaussian); a model's config turns it on (`keep_means`), never the data.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.special import ndtr

BLOCK = 16  # pixels per side of the blocks whose means are kept
BLUR = 1.0  # Gaussian blur of the block grid, in blocks
BAND = 256  # rows per band: temporaries stay a band's size, not the image's
TABLE = 4097  # points of E[clip(x + n)] on [0, 1], linearly interpolated (error < 1e-6)
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


def expected_clipped(x: np.ndarray, sigma: float) -> np.ndarray:
    """E[clip(x + n, 0, 1)] for n ~ N(0, sigma²), elementwise (x in [0, 1])."""
    a, b = -x / sigma, (1.0 - x) / sigma
    pdf = lambda z: np.exp(-0.5 * z * z) / _SQRT_2PI  # noqa: E731
    cdf_a, cdf_b = ndtr(a), ndtr(b)
    return (x * (cdf_b - cdf_a) + sigma * (pdf(a) - pdf(b)) + 1.0 - cdf_b).astype(x.dtype)


def _lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Linear interpolation of `table` (values at TABLE even steps over [0, 1]) at x."""
    position = x * np.float32(TABLE - 1)
    index = np.minimum(position.astype(np.int32), TABLE - 2)
    low = np.take(table, index)
    return low + (position - index.astype(np.float32)) * (np.take(table, index + 1) - low)


def residual_sigma(noisy: np.ndarray, denoised: np.ndarray) -> float:
    """σ of the noise in (noisy - denoised), from the quartile that clipping leaves intact.

    Clipping at 0 only cuts a dark pixel's residual below zero, clipping at 1 a bright one's
    above it, so (residual for pixels up to mid-grey, minus the residual above) has an
    uncut upper quartile at 0.6745 σ over its median, also in a photo that is all shadow.
    Every other row and column is enough."""
    d = denoised[::2, ::2]
    residual = noisy[::2, ::2] - d
    folded = np.where(d <= 0.5, residual, -residual)
    median, upper = np.percentile(folded, [50, 75])
    return max(float(upper - median) / 0.6745, 1e-3)


def keep_local_means(noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
    """`denoised` [H, W, C] float32 in [0, 1] with the noisy input's local means put back
    (see the module docstring), clipped to [0, 1]; `noisy` is the same shape."""
    noisy = np.asarray(noisy, np.float32)
    out = np.array(denoised, np.float32)
    h, w, c = out.shape
    clipped = float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    sigma = residual_sigma(noisy, out) if clipped else None
    if sigma is not None:  # a smooth function of x alone: tabulated, 10× faster than ndtr
        table = expected_clipped(np.linspace(0.0, 1.0, TABLE, dtype=np.float32), sigma)
    diff = np.empty_like(out)
    for top in range(0, h, BAND):
        rows = slice(top, top + BAND)
        predicted = out[rows] if sigma is None else _lookup(out[rows], table)
        np.subtract(noisy[rows], predicted, out=diff[rows])
    planes = diff if c > 1 else diff[..., 0]  # OpenCV drops a single channel's axis
    grid = cv2.resize(planes, (max(1, w // BLOCK), max(1, h // BLOCK)),
                      interpolation=cv2.INTER_AREA)
    grid = cv2.GaussianBlur(grid, (0, 0), BLUR, borderType=cv2.BORDER_REFLECT)
    cv2.resize(grid, (w, h), dst=planes, interpolation=cv2.INTER_LINEAR)
    out += diff
    return np.clip(out, 0.0, 1.0, out=out)
