"""Classical denoisers behind the call shape the learned models share.

Every method is `denoise(noisy, sigma) -> denoised` with
  noisy: [H, W, C] float32, C in {1, 3}, values about [0, 1] (Gaussian noise may stray
    outside; each method clips where it needs to),
  sigma: the noise standard deviation on the [0, 1] scale, or None to estimate it from
    the image (`estimate_sigma`),
  denoised: [H, W, C] float32 in [0, 1].
A resolved sigma of (almost) zero returns the clipped input: there is nothing to remove.

Parameters as functions of sigma (sigma255 = 255·sigma). The constants were tuned on
96×96 crops of four scikit-image photos (astronaut, coffee, camera, brick) at sigma255 =
15, 25, 50, picking the best mean PSNR with one rule for all levels:
  nlm        scikit-image `denoise_nl_means`, fast_mode, patch 5, distance 6, sigma passed,
             h = 0.6·sigma (the gallery's value for fast mode with sigma given).
  nlm_cv     OpenCV `fastNlMeansDenoising[Colored]` on uint8, template 7, search 21,
             h = hColor = k·sigma255 with k = clip(1.1 − 0.006·sigma255, 0.7, 1) (1 at 15,
             0.8 at 50).
  bm3d       the `bm3d` package, profile "np"; `bm3d_rgb` (opponent colour space) for colour.
  gaussian   Gaussian blur of width 0.5 + 0.018·sigma255 pixels (0.77 at 15, 1.4 at 50).
  median     3×3 below sigma255 = 30, 5×5 from there.
  bilateral  OpenCV `bilateralFilter` on float32, sigmaColor = 3·sigma, sigmaSpace = 2
             (9×9 window). scikit-image 0.26's `denoise_bilateral` is not used: its impulse
             response here is skewed and off-centre, and it loses to the noisy input.
  wavelet    scikit-image `denoise_wavelet`, BayesShrink, soft, rescale_sigma=True, sigma
             passed; colour in YCbCr (about 0.5 dB better than RGB).
  tv         scikit-image `denoise_tv_chambolle`, weight = 0.8·sigma, channels separately.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from denoise_jax.errors import UserError

# scikit-image, OpenCV, bm3d and scipy are imported inside the methods that use them: the CLI
# imports this module, and each method needs only its own.

Denoiser = Callable[[np.ndarray, "float | None"], np.ndarray]

# Below this there is no noise worth removing; several methods divide by sigma.
_MIN_SIGMA = 1e-4


def estimate_sigma(noisy: np.ndarray) -> float:
    """Noise std of `noisy` ([H, W, C] float, [0, 1] scale), averaged over channels.

    scikit-image's wavelet-domain median absolute deviation estimate (Donoho & Johnstone).
    Within 5% on unclipped Gaussian noise; clipping (e.g. an 8-bit file) hides the tails,
    so it reads low at high noise: 20.6/255 for a true 25/255, 37/255 for 50/255 (astronaut).
    """
    from skimage.restoration import estimate_sigma as skimage_estimate

    x = _check(noisy)
    values = [skimage_estimate(x[..., c].astype(np.float64)) for c in range(x.shape[2])]
    return float(np.mean(values))


def resolve_sigma(noisy: np.ndarray, sigma: float | None) -> tuple[float, str]:
    """-> (sigma, "given") if `sigma` is known, else (estimate, "estimated")."""
    if sigma is None:
        return estimate_sigma(noisy), "estimated"
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise UserError(f"noise sigma must be a finite number >= 0, got {sigma}")
    return sigma, "given"


def _check(noisy: np.ndarray) -> np.ndarray:
    x = np.asarray(noisy, np.float32)
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"expected a [H, W, C] image with C in {{1, 3}}, got shape {x.shape}")
    return x


def _finish(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.clip(np.asarray(out, np.float32).reshape(shape), 0.0, 1.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


# Each `_name(x, sigma)` takes x: [H, W, C] float32 (unclipped) and sigma > _MIN_SIGMA and
# returns an array of x's size.


def _nlm(x: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    image = x[..., 0] if x.shape[2] == 1 else x
    return denoise_nl_means(
        image.astype(np.float64), h=0.6 * sigma, sigma=sigma, fast_mode=True,
        patch_size=5, patch_distance=6, channel_axis=None if x.shape[2] == 1 else -1,
    )


def _nlm_cv(x: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    # Best h per level (tuning above): 1.0·sigma255 at 15, 0.95 at 25, 0.8 at 50.
    h = float(255 * sigma * np.clip(1.1 - 0.006 * 255 * sigma, 0.7, 1.0))
    u8 = _to_uint8(x)
    if x.shape[2] == 1:
        out = cv2.fastNlMeansDenoising(u8[..., 0], None, h, 7, 21)
    else:
        # OpenCV's colour variant works in Lab from BGR; the channel order matters.
        out = cv2.fastNlMeansDenoisingColored(u8[..., ::-1].copy(), None, h, h, 7, 21)[..., ::-1]
    return out.astype(np.float32) / 255


def _bm3d(x: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    z = x.astype(np.float64)
    if x.shape[2] == 1:
        return bm3d.bm3d(z[..., 0], sigma_psd=sigma, profile="np")
    return bm3d.bm3d_rgb(z, sigma_psd=sigma, profile="np")


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    width = 0.5 + 0.018 * 255 * sigma
    return gaussian_filter(x, sigma=(width, width, 0), mode="reflect")


def _median(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import median_filter

    size = 3 if 255 * sigma < 30 else 5
    return median_filter(np.clip(x, 0.0, 1.0), size=(size, size, 1), mode="reflect")


def _bilateral(x: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    image = np.ascontiguousarray(x[..., 0] if x.shape[2] == 1 else x, dtype=np.float32)
    return cv2.bilateralFilter(image, 9, 3.0 * sigma, 2.0, borderType=cv2.BORDER_REFLECT)


def _wavelet(x: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    colour = x.shape[2] == 3
    return denoise_wavelet(
        (x if colour else x[..., 0]).astype(np.float64), sigma=sigma, method="BayesShrink",
        mode="soft", rescale_sigma=True, channel_axis=-1 if colour else None,
        convert2ycbcr=colour,
    )


def _tv(x: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    colour = x.shape[2] == 3
    return denoise_tv_chambolle(
        (x if colour else x[..., 0]).astype(np.float64), weight=0.8 * sigma,
        channel_axis=-1 if colour else None,
    )


_METHODS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "nlm": _nlm,
    "nlm_cv": _nlm_cv,
    "bm3d": _bm3d,
    "gaussian": _gaussian,
    "median": _median,
    "bilateral": _bilateral,
    "wavelet": _wavelet,
    "tv": _tv,
}


def noisy(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Identity (clipped to [0, 1]): the "no denoising" row of a table."""
    x = _check(noisy)
    return _finish(x, x.shape)


def _make(name: str, method: Callable[[np.ndarray, float], np.ndarray]) -> Denoiser:
    def denoise(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        x = _check(noisy)
        value, _ = resolve_sigma(x, sigma)
        if value < _MIN_SIGMA:
            return _finish(x, x.shape)
        return _finish(method(x, value), x.shape)

    denoise.__name__ = name
    denoise.__qualname__ = name
    denoise.__doc__ = (
        f"{name} denoiser: noisy [H, W, C] float32 and sigma ([0, 1] scale, None = "
        "estimate) -> [H, W, C] float32 in [0, 1]."
    )
    return denoise


_REGISTRY: dict[str, Denoiser] = {"noisy": noisy}
_REGISTRY.update({name: _make(name, method) for name, method in _METHODS.items()})


def names() -> list[str]:
    """Names of the classical methods, in table order."""
    return list(_REGISTRY)


def get_baseline(name: str) -> Denoiser:
    """The denoiser called `name`; an unknown name is a `UserError` listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown classical method {name!r}: choose one of {', '.join(names())}"
        ) from None
