"""Keeping the noisy input's local means after a learned denoiser (denoise_jax/local_means)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from denoise_jax import checkpoints, evaluate, methods, models
from denoise_jax.inference import Denoiser
from denoise_jax.local_means import expected_clipped, keep_local_means, residual_sigma

SIGMA = 25 / 255


@pytest.fixture(scope="module")
def photo():
    return skimage.data.astronaut()[:256, :256].astype(np.float32) / 255


def _noisy(clean, seed=0, sigma=SIGMA):
    rng = np.random.default_rng(seed)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)


def _cast(clean, shift=(4, -3, 2)):
    """A 'denoiser' that gets the detail right and the colour wrong, by a few levels."""
    return np.clip(clean + np.asarray(shift, np.float32) / 255, 0, 1)


def test_a_colour_cast_is_taken_out_on_float_inputs(photo):
    noisy = _noisy(photo)
    cast = _cast(photo)
    kept = keep_local_means(noisy, cast)
    assert evaluate.colour_bias(cast, photo) > 3.5
    assert evaluate.colour_bias(kept, photo) < 0.5
    before, _ = evaluate.score(cast, photo)
    after, _ = evaluate.score(kept, photo)
    assert after > before + 3
    # Nothing to take out: the exact clean image loses under 0.2 dB to the field's own noise.
    assert evaluate.score(keep_local_means(noisy, photo), photo)[0] > 40


def test_clipped_8bit_inputs_are_not_pulled_to_their_biased_means():
    # A dark, textured photo: clipping at 0 raises the noisy file's mean by several levels.
    clean = (0.03 + 0.02 * skimage.data.camera()[:192, :192, None] / 255).astype(np.float32)
    clean = np.repeat(clean, 3, axis=-1)
    noisy = evaluate.as_8bit(_noisy(clean, 1))
    assert 255 * (noisy.mean() - clean.mean()) > 5
    kept = keep_local_means(noisy, clean)
    assert evaluate.colour_bias(kept, clean) < 0.6
    # Had the input not been clipped (values below 0 kept), the same means would be right.
    assert evaluate.colour_bias(keep_local_means(_noisy(clean, 1), clean), clean) < 0.6


def test_expected_clipped_matches_sampling_and_the_sigma_is_found():
    x = np.array([0.0, 0.02, 0.3, 0.5, 0.97, 1.0], np.float32)
    draws = np.clip(x + SIGMA * np.random.default_rng(2).standard_normal((200_000, x.size)), 0, 1)
    assert np.abs(expected_clipped(x, SIGMA) - draws.mean(0)).max() < 1e-3
    assert expected_clipped(x, 1e-4) == pytest.approx(x, abs=1e-4)  # 0.4 σ at 0
    clean = skimage.data.astronaut()[:256, :256].astype(np.float32) / 255
    assert residual_sigma(evaluate.as_8bit(_noisy(clean, 3)), clean) == pytest.approx(
        SIGMA, rel=0.05)


@pytest.mark.parametrize("shape", [(37, 23, 1), (9, 300, 3), (1, 1, 3)])
def test_any_size_and_grey_images_keep_their_shape(shape):
    rng = np.random.default_rng(4)
    clean = rng.random(shape, dtype=np.float32)
    out = keep_local_means(_noisy(clean), clean)
    assert out.shape == shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1


def test_the_input_and_the_denoised_array_are_left_alone(photo):
    noisy, cast = _noisy(photo), _cast(photo)
    before = noisy.copy(), cast.copy()
    keep_local_means(noisy, cast)
    assert np.array_equal(noisy, before[0]) and np.array_equal(cast, before[1])


def test_denoisers_from_a_workdir_follow_its_config(tmp_path, photo):
    """`keep_means` in a run's config reaches both the evaluation method and the CLI/app's
    Denoiser; configs without it (older runs) keep the network's output as it is."""
    model = models.get_model("dncnn", depth=3, features=4)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    noisy = _noisy(photo)
    plain = methods.make_method(model, variables, False)(noisy)
    kept = methods.make_method(model, variables, False, keep_means=True)(noisy)
    assert np.array_equal(kept, keep_local_means(noisy, plain))
    tiled = Denoiser(model, variables, tile=128, overlap=32, keep_means=True)(noisy)
    assert np.abs(tiled - kept).max() < 1e-4
    for value in (True, False, None):
        config = {"model": {"name": "dncnn"}} | ({} if value is None else {"keep_means": value})
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert methods.keeps_means(checkpoints.load_config(str(tmp_path))) is bool(value)
    # The Gaussian models keep means; camera noise, through a tone curve, is not zero-mean.
    assert Denoiser.from_spec("pretrained:gauss_rgb").keep_means
    assert not Denoiser.from_spec("pretrained:camera").keep_means
