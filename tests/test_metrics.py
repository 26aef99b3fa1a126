"""metrics: the pinned PSNR/SSIM against scikit-image, batching, jit, edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from denoise_jax import metrics
from denoise_jax.errors import UserError

SIZE = 96


def _crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    return image[top : top + SIZE, left : left + SIZE]


def _pair(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) uint8 [SIZE, SIZE, C]: a real photo (colour or grey) or random pixels."""
    rng = np.random.default_rng(0)
    if kind == "astronaut":
        clean = _crop(skimage.data.astronaut())
    elif kind == "camera":
        clean = _crop(skimage.data.camera())[..., None]
    else:
        clean = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    return noisy, clean


def _skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=data_range, channel_axis=-1,
    )


CASES = [(kind, scale) for kind in ("astronaut", "camera", "random") for scale in ("unit", "uint8")]


def _scaled(kind: str, scale: str) -> tuple[np.ndarray, np.ndarray, float]:
    noisy, clean = _pair(kind)
    if scale == "uint8":
        return noisy, clean, 255.0
    return noisy.astype(np.float32) / 255, clean.astype(np.float32) / 255, 1.0


@pytest.mark.parametrize("kind,scale", CASES)
def test_psnr_matches_skimage(kind, scale):
    noisy, clean, data_range = _scaled(kind, scale)
    expected = peak_signal_noise_ratio(
        clean.astype(np.float64), noisy.astype(np.float64), data_range=data_range
    )
    got = metrics.psnr(noisy, clean, data_range=data_range)
    assert got.shape == ()
    assert abs(float(got) - expected) < 1e-4


@pytest.mark.parametrize("kind,scale", CASES)
def test_ssim_matches_pinned_skimage(kind, scale):
    noisy, clean, data_range = _scaled(kind, scale)
    expected = _skimage_ssim(noisy, clean, data_range)
    got = metrics.ssim(noisy, clean, data_range=data_range)
    assert got.shape == ()
    assert abs(float(got) - expected) < 1e-4
    # The pinned window matters: skimage's default 7×7 uniform window differs by more
    # than the tolerance.
    default = structural_similarity(
        noisy.astype(np.float64), clean.astype(np.float64), data_range=data_range, channel_axis=-1
    )
    assert abs(float(got) - default) > 1e-4


def test_uint8_and_unit_scale_agree():
    noisy, clean = _pair("astronaut")
    unit = (noisy / 255.0).astype(np.float32), (clean / 255.0).astype(np.float32)
    assert float(metrics.psnr(noisy, clean, 255.0)) == pytest.approx(
        float(metrics.psnr(*unit, 1.0)), abs=1e-4
    )
    assert float(metrics.ssim(noisy, clean, 255.0)) == pytest.approx(
        float(metrics.ssim(*unit, 1.0)), abs=1e-6
    )


def test_batched_equals_per_image():
    pairs = [_scaled(kind, "unit") for kind in ("astronaut", "random")]
    rng = np.random.default_rng(1)
    # [2, 3, H, W, 3]: two photos/random images, each with three noise draws.
    x = np.stack([[np.clip(c + rng.normal(0, s, c.shape), 0, 1) for s in (0.02, 0.05, 0.1)]
                  for _, c, _ in pairs]).astype(np.float32)
    y = np.stack([[c] * 3 for _, c, _ in pairs])
    psnr, ssim = metrics.psnr(x, y), metrics.ssim(x, y)
    assert psnr.shape == ssim.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one_psnr, one_ssim = metrics.psnr(x[i, j], y[i, j]), metrics.ssim(x[i, j], y[i, j])
            assert float(psnr[i, j]) == pytest.approx(float(one_psnr), abs=1e-5)
            assert float(ssim[i, j]) == pytest.approx(float(one_ssim), abs=1e-6)
    # More noise, lower scores: the batch axes are not mixed up.
    assert np.all(np.diff(np.asarray(psnr), axis=1) < 0)
    assert np.all(np.diff(np.asarray(ssim), axis=1) < 0)


def test_works_under_jit_with_static_and_traced_data_range():
    noisy, clean, _ = _scaled("astronaut", "uint8")
    eager = float(metrics.ssim(noisy, clean, 255.0)), float(metrics.psnr(noisy, clean, 255.0))
    static = jax.jit(lambda a, b: (metrics.ssim(a, b, 255.0), metrics.psnr(a, b, 255.0)))
    traced = jax.jit(lambda a, b, r: (metrics.ssim(a, b, r), metrics.psnr(a, b, r)))
    for ssim, psnr in (static(noisy, clean), traced(noisy, clean, jnp.float32(255.0))):
        assert float(ssim) == pytest.approx(eager[0], abs=1e-6)
        assert float(psnr) == pytest.approx(eager[1], abs=1e-4)


def test_identical_images_give_inf_psnr_and_unit_ssim():
    _, clean, _ = _scaled("camera", "unit")
    assert float(metrics.psnr(clean, clean)) == np.inf
    assert float(metrics.ssim(clean, clean)) == pytest.approx(1.0, abs=1e-6)
    batch = np.stack([clean, clean])
    assert np.all(np.isinf(np.asarray(metrics.psnr(batch, batch))))


def test_ssim_realnoise_is_skimage_default_with_prediction_range():
    noisy, clean, _ = _scaled("astronaut", "unit")
    expected = structural_similarity(
        noisy.astype(np.float64), clean.astype(np.float64),
        data_range=float(noisy.max() - noisy.min()), channel_axis=-1,
    )
    assert metrics.ssim_realnoise(noisy, clean) == pytest.approx(expected, abs=1e-9)
    batch = metrics.ssim_realnoise(np.stack([noisy, clean]), np.stack([clean, clean]))
    assert batch.shape == (2,)
    assert batch[0] == pytest.approx(expected, abs=1e-9)
    assert batch[1] == pytest.approx(1.0)
    assert "not the project's metric" in metrics.ssim_realnoise.__doc__.lower()


def test_bad_inputs_raise_user_error():
    a = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(UserError, match="shape"):
        metrics.psnr(a, a[:8])
    with pytest.raises(UserError, match="at least 11"):
        metrics.ssim(a[:8, :8], a[:8, :8])
    with pytest.raises(UserError, match="H, W, C"):
        metrics.ssim(a[..., 0], a[..., 0])


def test_definitions_state_the_pinned_protocol():
    assert set(metrics.DEFINITIONS) >= {"psnr", "ssim", "ssim_realnoise"}
    assert all(s in metrics.DEFINITIONS["ssim"] for s in ("11x11", "1.5", "0.01", "0.03"))
    assert "data_range" in metrics.DEFINITIONS["psnr"]
