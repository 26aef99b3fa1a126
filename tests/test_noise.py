"""noise: spec grammar, the statistics of each model, the camera pipeline, keys and jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from scipy.stats import norm

from denoise_jax import metrics, noise
from denoise_jax.errors import UserError

SPECS = [
    "gaussian:25", "gaussian:0-55", "keras:0.5", "poisson:30", "poisson-gaussian:0.01,0.0002",
    "saltpepper:0.05", "speckle:0.1", "camera",
]


def _key(i: int = 0) -> jax.Array:
    return jax.random.PRNGKey(i)


def _flat(value: float, size: int = 256, channels: int = 1) -> jnp.ndarray:
    return jnp.full((size, size, channels), value, jnp.float32)


@functools.cache
def _photo(size: int = 128) -> jnp.ndarray:
    """A centre crop of skimage's astronaut, [size, size, 3] float32 in [0, 1]."""
    image = skimage.data.astronaut()
    top = (image.shape[0] - size) // 2
    return jnp.asarray(image[top : top + size, top : top + size] / 255.0, jnp.float32)


def _batch() -> jnp.ndarray:
    """[2, 64, 64, 3]: the photo and its upside-down copy (one shape for all camera tests)."""
    return jnp.stack([_photo(64), _photo(64)[::-1]])


# --- grammar ---------------------------------------------------------------------------------


def test_parse_attributes():
    g = noise.parse("gaussian:25")
    assert g.sigma == pytest.approx(25 / 255) and not g.blind
    assert noise.parse("keras:0.5").sigma == 0.5
    blind = noise.parse("gaussian:0-55")
    assert blind.blind and blind.sigma is None
    assert noise.parse("camera").blind
    for spec in SPECS:
        model = noise.parse(spec)
        assert model.spec == spec and model.description
        hash(model)  # usable as a static jit argument
    assert noise.parse(" Gaussian:25 ").sigma == pytest.approx(25 / 255)


@pytest.mark.parametrize(
    "spec",
    ["gaussian", "gaussian:", "gaussian:abc", "gaussian:55-0", "gaussian:-5", "gaussian:nan",
     "foo:1", "poisson:-3", "poisson:0", "", "   ", "keras", "saltpepper:1.5",
     "poisson-gaussian:0.01", "poisson-gaussian:a,b", "speckle:-0.1", "camera:3"],
)
def test_malformed_specs_raise_one_line_user_error(spec):
    with pytest.raises(UserError) as info:
        noise.parse(spec)
    message = str(info.value)
    assert "\n" not in message
    assert repr(spec.strip() or spec) in message
    assert "gaussian:0-55" in message and "camera" in message  # lists the valid forms


# --- determinism, batching, jit --------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_deterministic_per_key_and_jittable(spec):
    model = noise.parse(spec)
    clean = _batch()
    a, b = model(_key(1), clean), model(_key(1), clean)
    c = model(_key(2), clean)
    assert a.shape == clean.shape and a.dtype == jnp.float32
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1][::-1]))  # images differ
    jitted = jax.jit(lambda key, x: model(key, x) + 0.0)(_key(1), clean)  # closed over
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(a), atol=1e-5)


def test_any_number_of_leading_dims():
    clean = jnp.full((2, 3, 16, 16, 1), 0.5, jnp.float32)
    noisy = np.asarray(noise.add_noise(_key(), clean, "gaussian:0-55"))
    assert noisy.shape == clean.shape
    stds = (noisy - 0.5).reshape(6, -1).std(axis=1)
    assert len(set(stds.round(6))) == 6  # one level per image across both batch axes
    single = noise.add_noise(_key(), clean[0, 0], "gaussian:25")
    assert single.shape == (16, 16, 1)


# --- simple models ---------------------------------------------------------------------------


def test_gaussian_std_and_no_clipping():
    clean = jnp.zeros((512, 512, 1), jnp.float32)
    residual = np.asarray(noise.add_noise(_key(), clean, "gaussian:25") - clean)
    assert residual.std() == pytest.approx(25 / 255, rel=0.02)
    assert abs(residual.mean()) < 1e-3
    assert residual.min() < -0.2  # negative values survive: not clipped


def test_gaussian_range_is_per_image_and_within_range():
    clean = jnp.full((8, 64, 64, 3), 0.5, jnp.float32)
    noisy = noise.add_noise(_key(), clean, "gaussian:10-55")
    stds = np.asarray(noisy - clean).reshape(8, -1).std(axis=1) * 255
    assert np.all(stds > 10 * 0.95) and np.all(stds < 55 * 1.05)
    assert stds.max() - stds.min() > 5  # different levels per image


def test_keras_clips_with_the_right_pre_clip_std():
    noisy = np.asarray(noise.add_noise(_key(), _flat(0.5), "keras:0.5"))
    assert noisy.min() == 0.0 and noisy.max() == 1.0
    # With std 0.5 around 0.5, P(clipped to 0) = P(clipped to 1) = Φ(-1) ≈ 0.159.
    expected = norm.cdf(-1.0)
    assert (noisy == 0).mean() == pytest.approx(expected, abs=0.01)
    assert (noisy == 1).mean() == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("level", [0.1, 0.5, 0.9])
def test_poisson_mean_and_variance(level):
    noisy = np.asarray(noise.add_noise(_key(), _flat(level), "poisson:30"))
    assert noisy.mean() == pytest.approx(level, rel=0.02)
    assert noisy.var() == pytest.approx(level / 30, rel=0.05)
    np.testing.assert_allclose(noisy * 30, np.round(noisy * 30), atol=1e-4)  # counts / peak


@pytest.mark.parametrize("level", [0.1, 0.5, 0.9])
def test_poisson_gaussian_variance(level):
    noisy = np.asarray(noise.add_noise(_key(), _flat(level), "poisson-gaussian:0.01,0.0002"))
    assert noisy.mean() == pytest.approx(level, abs=2e-3)
    assert noisy.var() == pytest.approx(0.01 * level + 0.0002, rel=0.05)


def test_saltpepper_fraction_and_values():
    clean = _flat(0.5, channels=3)
    noisy = np.asarray(noise.add_noise(_key(), clean, "saltpepper:0.05"))
    hit = noisy[..., 0] != 0.5
    assert hit.mean() == pytest.approx(0.05, abs=0.005)
    assert set(np.unique(noisy)) == {0.0, 0.5, 1.0}
    assert np.all(noisy[..., 0] == noisy[..., 2])  # a pixel flips in all its channels
    assert (noisy[..., 0][hit] == 1).mean() == pytest.approx(0.5, abs=0.05)


def test_speckle_std_proportional_to_signal():
    for level in (0.2, 0.8):
        residual = np.asarray(noise.add_noise(_key(), _flat(level), "speckle:0.1")) - level
        assert residual.std() == pytest.approx(0.1 * level, rel=0.03)


# --- camera ----------------------------------------------------------------------------------


def test_colour_pipeline_round_trip_on_a_photo():
    photo = _photo()
    for seed in range(3):
        camera_rgb, meta = noise.unprocess(_key(seed), photo, bayer=False)
        back = noise.process(camera_rgb, meta)
        assert float(jnp.abs(back - photo).max()) < 1e-3
        assert set(meta) >= {"cam2rgb", "rgb_gain", "red_gain", "blue_gain"}
        assert 1.9 <= float(meta["red_gain"]) <= 2.4 and 1.5 <= float(meta["blue_gain"]) <= 1.9
        # The camera image really is different from sRGB (linear, tinted, darkened).
        assert float(jnp.abs(camera_rgb - photo).mean()) > 0.05


def test_bayer_round_trip():
    flat = jnp.broadcast_to(jnp.asarray([0.3, 0.6, 0.8], jnp.float32), (64, 64, 3))
    bayer, meta = noise.unprocess(_key(), flat)
    assert bayer.shape == (32, 32, 4)
    assert float(jnp.abs(noise.process(bayer, meta) - flat).max()) < 1e-3  # exact on flat
    photo = _photo(64)
    bayer, meta = noise.unprocess(_key(), photo)
    assert float(metrics.psnr(noise.process(bayer, meta), photo)) > 20  # bilinear demosaic loss


def test_saturated_white_stays_saturated_in_raw():
    white = jnp.ones((4, 4, 3), jnp.float32)
    for seed in range(3):
        bayer, _ = noise.unprocess(_key(seed), white)
        np.testing.assert_allclose(np.asarray(bayer), 1.0, atol=1e-4)


def test_camera_noise_zero_levels_returns_input_any_size():
    photo = _photo()[:65, :63]  # odd H and W
    out = noise.camera_noise(_key(), photo, 0.0, 0.0)
    assert out.shape == photo.shape
    assert float(jnp.abs(out - photo).max()) < 1e-3


def test_camera_noise_plausible_and_heteroscedastic():
    model, clean = noise.parse("camera"), _batch()
    noisy = jnp.concatenate([model(_key(i), clean) for i in range(4)])  # 8 random levels
    psnrs = np.asarray(metrics.psnr(noisy, jnp.concatenate([clean] * 4)))
    assert np.all((psnrs > 12) & (psnrs < 50)), psnrs
    assert 20 < np.median(psnrs) < 45, psnrs
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1
    # Fixed mid-range levels on a grey ramp: the residual's std depends on the intensity.
    ramp = jnp.broadcast_to(jnp.linspace(0.05, 0.95, 63)[None, :, None], (65, 63, 3))
    residual = np.asarray(noise.camera_noise(_key(3), ramp, 2e-3, 1e-5) - ramp)
    stds = [residual[:, i : i + 9].std() for i in range(0, 63, 9)]
    assert max(stds) > 1.5 * min(stds), stds


def test_camera_noise_needs_rgb():
    with pytest.raises(UserError, match="RGB"):
        noise.add_noise(_key(), jnp.zeros((1, 16, 16, 1)), "camera")


def test_8bit_share_quantizes_that_share_of_the_images():
    import jax

    base = noise.parse("gaussian:30")
    clean = jnp.full((64, 8, 8, 3), 0.5, jnp.float32)
    key = jax.random.PRNGKey(0)
    none = noise.with_8bit_share(base, 0.0)(key, clean)
    every = noise.with_8bit_share(base, 1.0)(key, clean)
    np.testing.assert_array_equal(every, noise.to_8bit(none))  # same noise, then quantized
    assert float(jnp.abs(none - noise.to_8bit(none)).max()) > 0
    half = noise.with_8bit_share(base, 0.5)(key, clean)
    quantized = np.array([bool(jnp.all(x == noise.to_8bit(x))) for x in half])
    assert 16 < quantized.sum() < 48
    with pytest.raises(UserError, match="share"):
        noise.with_8bit_share(base, 1.5)
