"""PSNR and SSIM: the one place image quality is computed (docs/reference.md#metrics).

Pinned definitions (tables and JSON state them through `DEFINITIONS`):

- PSNR = 10·log10(data_range² / MSE) over one whole image (all pixels and channels),
  with an explicit `data_range` (1.0 for float images in [0, 1], 255 for uint8).
  Identical images give +inf.
- SSIM = Wang et al. 2004 with a Gaussian window: 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03,
  explicit `data_range`, population (not sample) covariance, computed per channel and
  averaged, over the 'valid' region (no border padding). This equals
  `skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=..., channel_axis=-1)` and `dm_pix.ssim`.

`ssim_realnoise` reproduces the real-noise comparison's numbers (skimage defaults, data_range
from the prediction); it is not the project's metric.

Images are `[..., H, W, C]`: the last three axes are one image, any leading axes are a
batch, and results have the leading shape (a scalar for one image). Grey is H×W×1.
"""

from __future__ import annotations

import dm_pix as pix
import jax.numpy as jnp
import numpy as np

from denoise_jax.errors import UserError

# scikit-image (and with it scipy) is imported inside `ssim`, the one function that needs it.

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

DEFINITIONS: dict[str, str] = {
    "psnr": "PSNR, 10*log10(data_range^2/MSE) per image, data_range explicit "
    "(1 for [0,1] floats, 255 for uint8); identical images give inf",
    "ssim": "SSIM (Wang et al. 2004): Gaussian 11x11 window sigma 1.5, K1 0.01, K2 0.03, "
    "explicit data_range, per channel averaged, valid region; equals skimage "
    "structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)",
    "ssim_realnoise": "real-noise comparison protocol, not the project's metric: skimage "
    "structural_similarity defaults (7x7 uniform window, sample covariance), "
    "data_range = pred.max() - pred.min(), per channel averaged",
}


def _check_pair(x: jnp.ndarray, y: jnp.ndarray, name: str) -> None:
    if x.shape != y.shape:
        raise UserError(f"{name}: images differ in shape, {x.shape} vs {y.shape}")
    if x.ndim < 3:
        raise UserError(f"{name}: images must be [..., H, W, C] (grey as H×W×1), got {x.shape}")


def _as_unit(x: jnp.ndarray, data_range: float | jnp.ndarray) -> jnp.ndarray:
    # Work on the [0, 1] scale in float32: the same value for any data_range, and
    # E[x²] − E[x]² stays well conditioned for uint8 inputs on the 0–255 scale.
    return jnp.asarray(x, jnp.float32) / jnp.asarray(data_range, jnp.float32)


def psnr(
    x: jnp.ndarray, y: jnp.ndarray, data_range: float | jnp.ndarray = 1.0
) -> jnp.ndarray:
    """PSNR in dB of each image: 10·log10(data_range² / MSE).

    Args:
      x, y: [..., H, W, C] images of the same shape (float or uint8; cast to float32).
      data_range: the value range (1.0 for [0, 1] floats, 255.0 for uint8); may be traced.

    Returns:
      float32 of shape `x.shape[:-3]` (a scalar for one image); +inf where x == y.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_pair(x, y, "psnr")
    mse = jnp.mean((_as_unit(x, data_range) - _as_unit(y, data_range)) ** 2, axis=(-3, -2, -1))
    # mse == 0 gives log10(inf) = inf, the documented value for identical images.
    return -10.0 * jnp.log10(mse)


def ssim(
    x: jnp.ndarray, y: jnp.ndarray, data_range: float | jnp.ndarray = 1.0
) -> jnp.ndarray:
    """Pinned SSIM of each image (module docstring): Gaussian 11×11, σ 1.5, per channel mean.

    Args:
      x, y: [..., H, W, C] images of the same shape, H and W at least 11 (float or uint8;
        cast to float32).
      data_range: the value range (1.0 for [0, 1] floats, 255.0 for uint8); may be traced.

    Returns:
      float32 of shape `x.shape[:-3]` (a scalar for one image); 1.0 where x == y.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_pair(x, y, "ssim")
    h, w, c = x.shape[-3:]
    if min(h, w) < SSIM_WINDOW:
        raise UserError(
            f"ssim: images must be at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got {h}×{w}"
        )
    lead = x.shape[:-3]
    a = _as_unit(x, data_range).reshape((-1, h, w, c))
    b = _as_unit(y, data_range).reshape((-1, h, w, c))
    values = pix.ssim(
        a, b, max_val=1.0, filter_size=SSIM_WINDOW, filter_sigma=SSIM_SIGMA, k1=SSIM_K1,
        k2=SSIM_K2,
    )
    return values.reshape(lead)


def ssim_realnoise(pred: np.ndarray, target: np.ndarray) -> np.ndarray | float:
    """The real-noise comparison's SSIM, to reproduce its table: NOT the project's metric.

    scikit-image `structural_similarity` with its defaults (7×7 uniform window, sample
    covariance), `data_range = pred.max() - pred.min()` per image, channels averaged.
    numpy, not jittable.

    Args:
      pred: [..., H, W, C] predictions (any dtype; computed in float64).
      target: [..., H, W, C] references, same shape.

    Returns:
      a float for one image, else a float64 array of shape `pred.shape[:-3]`.
    """
    from skimage.metrics import structural_similarity

    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    _check_pair(pred, target, "ssim_realnoise")
    lead = pred.shape[:-3]
    flat_p = pred.reshape((-1,) + pred.shape[-3:])
    flat_t = target.reshape(flat_p.shape)
    values = np.array(
        [
            structural_similarity(p, t, data_range=float(p.max() - p.min()), channel_axis=-1)
            for p, t in zip(flat_p, flat_t, strict=True)
        ]
    )
    return float(values[0]) if not lead else values.reshape(lead)
