"""Tiled and self-ensembled inference: exactness, seams, shapes, memory."""

import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from benchmarks import system
from denoise_jax import methods, models
from denoise_jax.ensemble import VIEWS, check_views, self_ensemble
from denoise_jax.errors import UserError
from denoise_jax.inference import Denoiser, edge_ramp, tile_side, tile_starts, tiled


@pytest.fixture(scope="module")
def dncnn():
    """A random-init colour DnCNN (5 convs: receptive-field radius 5 px) and its variables."""
    model = models.get_model("dncnn", depth=5, features=8)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    return model, randomised(variables)


def randomised(variables):
    """DnCNN starts as the identity (its last layer is zero); random weights everywhere give
    tiling, blending and ensembling something to get wrong."""
    leaves, treedef = jax.tree.flatten(variables["params"])
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    noise = [
        0.2 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)
    ]
    return {**variables, "params": jax.tree.unflatten(treedef, noise)}


def _whole(model, variables, image):
    return np.asarray(model.apply(variables, jnp.asarray(image)[None], train=False))[0]


def test_tiled_equals_whole_image_for_a_receptive_field_inside_the_overlap(dncnn):
    model, variables = dncnn
    image = np.random.default_rng(0).random((700, 900, 3), dtype=np.float32)
    shapes = set()
    apply = jax.jit(lambda x: model.apply(variables, x, train=False))

    def apply_fn(x):
        shapes.add(x.shape)
        return apply(x)

    out = tiled(apply_fn, image, tile=128, overlap=32, batch=3)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.abs(out - _whole(model, variables, image)).max() < 1e-3
    # Edge tiles are shifted inward and the last batch padded: one compiled shape.
    assert shapes == {(3, 128, 128, 3)}


@pytest.mark.parametrize(
    "shape, tile, overlap",
    [((300, 410, 3), 64, 16), ((129, 257, 1), 64, 0), ((65, 300, 3), 128, 3),
     ((97, 61, 1), 32, 31)],
)
def test_identity_through_tiles_has_no_seams(shape, tile, overlap):
    constant = np.full(shape, 0.37, np.float32)
    np.testing.assert_allclose(tiled(lambda x: x, constant, tile, overlap), constant, atol=1e-5)
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    np.testing.assert_allclose(tiled(lambda x: x, image, tile, overlap, batch=2), image, atol=1e-5)


def test_images_smaller_than_a_tile_run_whole_and_odd_sizes_keep_their_shape(dncnn):
    model, variables = dncnn
    seen = []

    def apply_fn(x):
        seen.append(x.shape)
        return np.asarray(model.apply(variables, x, train=False))

    image = np.random.default_rng(2).random((37, 53, 3), dtype=np.float32)
    out = tiled(apply_fn, image, tile=512)
    assert seen == [(1, 37, 53, 3)] and out.shape == image.shape
    np.testing.assert_allclose(out, _whole(model, variables, image), atol=1e-6)
    # Shorter than a tile on one side only: tiles take that side whole.
    seen.clear()
    wide = np.random.default_rng(3).random((41, 301, 3), dtype=np.float32)
    out = tiled(apply_fn, wide, tile=100, overlap=24)
    assert {s for s in seen} == {(1, 41, 96, 3)} and out.shape == wide.shape
    assert np.abs(out - _whole(model, variables, wide)).max() < 1e-3


def test_tile_layout_and_window():
    assert tile_starts(100, 128, 32) == [0]
    assert tile_starts(300, 128, 32) == [0, 96, 172]  # the last one shifted inward
    # Tiles shrink to share the image evenly: as few as tiles of `tile` need, and smaller.
    assert tile_side(300, 512, 32) == 300
    assert tile_side(640, 512, 32) == 336 and len(tile_starts(640, 336, 32)) == 2
    assert tile_side(6000, 512, 32) == 496 and len(tile_starts(6000, 496, 32)) == 13
    for length in range(129, 2000, 37):
        side = tile_side(length, 128, 32)
        fewest = len(tile_starts(length, 128, 32))
        assert side % 16 == 0 and side <= 128 and len(tile_starts(length, side, 32)) == fewest
        assert fewest * side < length + fewest * 32 + 16 * fewest
    ramp = edge_ramp(64, 32)
    assert np.all(ramp[:8] == 0) and np.all(ramp[24:] == 1)
    # Neighbours at the minimal overlap weigh every shared pixel 1 in total.
    np.testing.assert_allclose(ramp[:32] + ramp[:32][::-1], 1.0, atol=1e-6)


def test_bad_tiling_arguments_are_user_errors():
    image = np.zeros((300, 300, 1), np.float32)
    with pytest.raises(UserError, match="overlap"):
        tiled(lambda x: x, image, tile=64, overlap=64)
    with pytest.raises(UserError, match="tile"):
        tiled(lambda x: x, image, tile=0)


def test_progress_callback_reaches_the_tile_count():
    calls = []
    tiled(lambda x: x, np.zeros((200, 200, 1), np.float32), tile=64, overlap=8, batch=4,
          progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (16, 16) and [d for d, _ in calls] == [4, 8, 12, 16]


@pytest.mark.parametrize("views", [2, 4, 8])
def test_ensemble_of_an_equivariant_function_is_the_function(views):
    image = np.random.default_rng(4).random((23, 31, 3), dtype=np.float32)
    np.testing.assert_allclose(self_ensemble(lambda x: x, image, views), image, atol=1e-6)

    def blur(x):
        return uniform_filter(x, size=(3, 3, 1), mode="reflect")

    np.testing.assert_allclose(self_ensemble(blur, image, views), blur(image), atol=1e-6)
    # A direction-dependent filter is not equivariant: the ensemble changes it.
    def shift(x):
        return np.roll(x, 1, axis=1)

    assert np.abs(self_ensemble(shift, image, views) - shift(image)).max() > 0.1
    # The same on a batch of tiles, turned in the plane of axes 1 and 2.
    batch = np.stack([image, image[::-1]])
    np.testing.assert_allclose(self_ensemble(lambda x: x, batch, views, axes=(1, 2)), batch,
                               atol=1e-6)


def test_ensemble_views_are_the_turns_and_mirrors_named():
    """2 views: the photo and its half turn; 4: the quarter turns; 8: those and mirrors. Each
    view is a distinct orientation (a 2×3 image with distinct pixels tells them apart)."""
    image = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    for views in VIEWS:
        seen: list[np.ndarray] = []

        def record(x, seen=seen):
            seen.append(x.copy())
            return x

        self_ensemble(record, image, views)
        assert len(seen) == views
        assert len({(v.shape, v.tobytes()) for v in seen}) == views
        assert sum(v.shape == (3, 2, 1) for v in seen) == (views // 2 if views > 2 else 0)
    for bad in (0, 3, 16, True):
        with pytest.raises(UserError, match="1, 2, 4, 8 views"):
            check_views(bad)


@pytest.mark.parametrize("views", [4, 8])
def test_ensembled_model_differs_from_plain_but_stays_close(dncnn, views):
    import skimage.data

    model, variables = dncnn
    image = skimage.data.astronaut()[100:148, 100:164].astype(np.float32) / 255
    plain = Denoiser(model, variables)(image)
    both = Denoiser(model, variables, ensemble=views)(image)
    assert both.shape == image.shape and both.min() >= 0 and both.max() <= 1
    assert np.abs(both - plain).max() > 1e-3
    assert np.abs(both - plain).mean() < 0.25 * np.abs(plain - image).mean()


def test_a_models_config_sets_its_ensemble_and_a_caller_can_override_it():
    """Shipped Gaussian models average 2 (colour) or 1 (grey) views (config `ensemble`);
    camera noise, demosaicked with a direction, is denoised as it is; `ensemble=N` overrides
    any of them."""
    assert Denoiser.from_spec("pretrained:gauss_rgb").ensemble == 2
    assert Denoiser.from_spec("pretrained:gauss_gray").ensemble == 1
    assert Denoiser.from_spec("pretrained:camera").ensemble == 1
    assert Denoiser.from_spec("pretrained:camera", ensemble=2).ensemble == 2
    image = np.random.default_rng(7).random((40, 48, 3), dtype=np.float32)
    own, one = (methods.resolve(name, views)(image) for name, views in
                (("pretrained:gauss_rgb", None), ("pretrained:gauss_rgb", 1)))
    np.testing.assert_allclose(own, Denoiser.from_spec("pretrained:gauss_rgb")(image),
                               atol=1e-4)
    assert np.abs(own - one).max() > 1e-3


def test_tiled_ensemble_matches_the_whole_image_one(dncnn):
    """The Denoiser turns each batch of tiles; the evaluation method turns the whole image.
    With a receptive field inside the tiles' blend margin both give the same photo."""
    model, variables = dncnn
    image = np.random.default_rng(6).random((150, 170, 3), dtype=np.float32)
    whole = methods.make_method(model, variables, False, ensemble=4)(image)
    tiles = Denoiser(model, variables, tile=64, overlap=24, batch=3, ensemble=4)(image)
    np.testing.assert_allclose(tiles, np.clip(whole, 0, 1), atol=1e-4)
    with pytest.raises(UserError, match="views"):
        Denoiser(model, variables, ensemble=3)


def test_denoiser_tiles_and_matches_the_whole_model(dncnn):
    model, variables = dncnn
    image = np.random.default_rng(5).random((150, 170, 3), dtype=np.float32)
    out = Denoiser(model, variables, tile=64, overlap=24, batch=2)(image, 0.1)
    expected = np.clip(_whole(model, variables, image), 0, 1)
    assert np.abs(out - expected).max() < 1e-3
    assert Denoiser.blind


def test_grey_and_colour_adaptation_is_logged_once(dncnn, capsys):
    model, variables = dncnn
    colour = Denoiser(model, variables)
    assert colour.channels == 3
    grey = np.random.default_rng(6).random((20, 24, 1), dtype=np.float32)
    out = colour(grey)
    np.testing.assert_array_equal(colour(grey), out)  # the completing noise is seeded
    completed = methods.colour_from_grey(grey)
    expected = np.clip(_whole(model, variables, completed), 0, 1).mean(-1)
    assert out.shape == grey.shape
    np.testing.assert_allclose(out[..., 0], expected, atol=1e-5)
    assert capsys.readouterr().err.count("R = G = B") == 1

    grey_model = models.get_model("dncnn", depth=3, features=4)
    grey_vars = grey_model.init(jax.random.PRNGKey(1), jnp.zeros((1, 8, 8, 1)))
    denoiser = Denoiser(grey_model, grey_vars)
    assert denoiser.channels == 1
    rgb = np.random.default_rng(7).random((20, 24, 3), dtype=np.float32)
    out = denoiser(rgb)
    for c in range(3):
        expected = np.clip(_whole(grey_model, grey_vars, rgb[..., c : c + 1]), 0, 1)[..., 0]
        np.testing.assert_allclose(out[..., c], expected, atol=1e-5)
    assert "R, G and B separately" in capsys.readouterr().err


def test_whole_image_methods_adapt_grey_and_colour_as_the_denoiser_does(dncnn, capsys):
    """`eval` scores through `methods.make_method`: a colour model on grey photos works there
    too, with the same result as the tiled `Denoiser`; weights that fit neither say so."""
    model, variables = dncnn
    grey = np.random.default_rng(9).random((20, 24, 1), dtype=np.float32)
    whole = methods.make_method(model, variables, False, name="rgbnet")(grey)
    np.testing.assert_allclose(whole, Denoiser(model, variables)(grey), atol=1e-5)
    assert "rgbnet: a colour model on a grey image" in capsys.readouterr().err

    two = np.zeros((20, 24, 2), np.float32)
    with pytest.raises(UserError, match="rgbnet takes 3-channel images, not 2-channel ones"):
        methods.make_method(model, variables, False, name="rgbnet")(two)


def test_a_grey_image_is_completed_to_independent_colour_noise():
    """R = G = B plus zero-sum noise: each channel's noise is independent, √3 σ (see
    `methods.colour_from_grey`), and the channel mean is the grey image itself."""
    rng = np.random.default_rng(10)
    clean = np.full((256, 256, 1), 0.5, np.float32)
    grey = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    colour = methods.colour_from_grey(grey)
    np.testing.assert_allclose(colour.mean(-1, keepdims=True), grey, atol=1e-6)
    noise = (colour - clean).reshape(-1, 3)
    cov = np.cov(noise, rowvar=False)
    np.testing.assert_allclose(np.diag(cov), 3 * 0.1**2, rtol=0.05)
    assert np.abs(cov[~np.eye(3, dtype=bool)]).max() < 0.05 * 3 * 0.1**2


def test_compute_dtype_option(dncnn):
    model, variables = dncnn
    image = np.random.default_rng(8).random((32, 40, 3), dtype=np.float32)
    full = Denoiser(model, variables)(image)
    half = Denoiser(model, variables, dtype="bfloat16")
    assert half.model.dtype == jnp.bfloat16
    out = half(image)
    assert out.dtype == np.float32 and np.abs(out - full).max() < 0.05
    with pytest.raises(UserError, match="dtype"):
        Denoiser(model, variables, dtype="int8")


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp
    from denoise_jax import denoise_cmd, models
    from denoise_jax.inference import Denoiser

    model = models.get_model("dncnn", depth=5, features=8)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    denoiser = Denoiser(model, variables, tile=512, overlap=32)
    start = time.time()
    row = denoise_cmd.denoise_one(denoiser, False, None, sys.argv[1], sys.argv[2], None, set())
    print(f"seconds={time.time() - start:.1f} mp={row['megapixels']:.1f}")
    """
)


def peak_rss_of_denoising(src: str, dst: str) -> tuple[float, str]:
    """Runs read → tiled denoise → write of `src` in a fresh process; -> (peak RSS MB, log).

    Measured as the benchmarks measure the CLI (`system.run_measured`: the child's own peak,
    not the pytest worker's)."""
    result = system.run_measured([sys.executable, "-c", _MEMORY_SCRIPT, src, dst], timeout=900)
    assert result["rc"] == 0, result["stderr"][-2000:]
    peak = result["peak_rss_mb"]
    return peak, f"peak_rss_mb={peak:.0f} {result['stdout'].strip().splitlines()[-1]}"


@pytest.mark.slow
def test_a_24_megapixel_photo_denoises_in_under_3_gb(tmp_path):
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:4000, 0:6000]
    base = (np.stack([x / 6000, y / 4000, (x + y) / 10000], -1) * 200).astype(np.uint8)
    noise = rng.integers(0, 40, size=(4000, 6000, 3), dtype=np.uint8)
    src = tmp_path / "big.png"
    PILImage.fromarray(base + noise).save(src, compress_level=1)
    del y, x, base, noise
    peak_mb, log = peak_rss_of_denoising(str(src), str(tmp_path / "out.png"))
    print(log)
    assert (tmp_path / "out.png").exists()
    assert peak_mb < 3 * 1024, log
