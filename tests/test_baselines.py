import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio

from denoise_jax import baselines
from denoise_jax.errors import UserError
from tests.conftest import crop

SIGMA = 25 / 255
METHODS = [
    "noisy", "nlm", "nlm_cv", "bm3d", "gaussian", "median", "bilateral", "wavelet", "tv",
]


def _photo(kind: str, size: int) -> np.ndarray:
    if kind == "colour":
        return crop(skimage.data.astronaut(), size).astype(np.float32) / 255
    return crop(skimage.data.camera(), size)[..., None].astype(np.float32) / 255


def _noisy(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    # Not clipped: Gaussian-noisy inputs may stray outside [0, 1] and methods must cope.
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)


def _psnr(clean, image):
    return peak_signal_noise_ratio(clean, np.clip(image, 0, 1), data_range=1.0)


def test_names_and_registry():
    assert baselines.names() == METHODS
    for name in METHODS:
        assert callable(baselines.get_baseline(name))


def test_unknown_name_is_a_user_error_listing_names():
    with pytest.raises(UserError, match="unknown classical method 'bm4d'") as info:
        baselines.get_baseline("bm4d")
    assert "bm3d" in str(info.value) and "\n" not in str(info.value)


# Colour runs with sigma=None (estimated) and grey with sigma given, so every method is
# exercised on both channel counts and both sigma paths. BM3D on colour (~3 s) is left to
# the next test.
@pytest.mark.parametrize(
    "name,kind",
    [(n, k) for n in METHODS for k in ("colour", "grey") if (n, k) != ("bm3d", "colour")],
)
def test_method_keeps_shape_and_range_and_beats_noisy(name, kind):
    clean = _photo(kind, 64)
    noisy = _noisy(clean, SIGMA)
    before = noisy.copy()
    sigma = None if kind == "colour" else SIGMA
    out = baselines.get_baseline(name)(noisy, sigma)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(noisy, before)  # the input is not modified
    gain = _psnr(clean, out) - _psnr(clean, noisy)
    if name == "noisy":
        np.testing.assert_array_equal(out, np.clip(noisy, 0, 1))
    else:
        assert gain > 2.0, f"{name} on {kind}: {gain:.2f} dB"


def test_bm3d_gains_at_least_5db_on_a_colour_photo_with_estimated_sigma():
    clean = _photo("colour", 96)
    noisy = _noisy(clean, SIGMA, seed=1)
    out = baselines.get_baseline("bm3d")(noisy, None)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert _psnr(clean, out) - _psnr(clean, noisy) >= 5.0


@pytest.mark.parametrize("kind", ["colour", "grey"])
@pytest.mark.parametrize("level", [10, 25, 50])
def test_resolve_sigma_estimates_within_20_percent(kind, level):
    noisy = _noisy(_photo(kind, 128), level / 255, seed=level)
    value, source = baselines.resolve_sigma(noisy, None)
    assert source == "estimated"
    assert abs(value * 255 - level) < 0.2 * level


def test_resolve_sigma_passes_a_given_value_through():
    noisy = _noisy(_photo("grey", 32), SIGMA)
    assert baselines.resolve_sigma(noisy, 0.05) == (0.05, "given")
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(UserError, match="sigma"):
            baselines.resolve_sigma(noisy, bad)


def test_estimate_sigma_averages_channels():
    clean = _photo("colour", 128)
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 1, clean.shape) * (np.array([10, 20, 30]) / 255)
    assert abs(baselines.estimate_sigma(noisy.astype(np.float32)) * 255 - 20) < 2


@pytest.mark.parametrize("name", METHODS)
def test_zero_sigma_returns_the_clipped_input(name):
    x = _noisy(_photo("colour", 16), 0.1)
    np.testing.assert_array_equal(baselines.get_baseline(name)(x, 0.0), np.clip(x, 0, 1))


@pytest.mark.parametrize("name", ["gaussian", "bilateral", "median"])
def test_local_filters_commute_with_flips(name):
    # Catches skewed or off-centre kernels (scikit-image 0.26's denoise_bilateral has one).
    x = _noisy(_photo("colour", 32), SIGMA)
    method = baselines.get_baseline(name)
    out = method(x, SIGMA)
    np.testing.assert_allclose(method(x[::-1, ::-1], SIGMA), out[::-1, ::-1], atol=1e-5)
    np.testing.assert_allclose(
        method(np.swapaxes(x, 0, 1), SIGMA), np.swapaxes(out, 0, 1), atol=1e-5
    )


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 2), (8, 8, 4), (2, 8, 8, 3)])
def test_wrong_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        baselines.get_baseline("gaussian")(np.zeros(shape, np.float32), SIGMA)
