import numpy as np
import pytest
from PIL import Image as PILImage

from denoise_jax import data
from denoise_jax.data import embedded
from denoise_jax.errors import UserError


def _png(path, shape, value=100):
    """Writes a flat uint8 PNG of `shape` ([H, W] grey or [H, W, 3] colour)."""
    PILImage.fromarray(np.full(shape, value, np.uint8)).save(path)


# --- scikit-image photos -----------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, count, channels",
    [
        ("skimage:train", 16, {1: 9, 3: 7}),
        ("skimage:test", 4, {1: 2, 3: 2}),
        ("skimage:train:rgb", 7, {3: 7}),
        ("skimage:test:rgb", 2, {3: 2}),
        ("skimage:train:gray", 16, {1: 16}),
        ("skimage:test:gray", 4, {1: 4}),
    ],
)
def test_skimage_counts_and_channels(spec, count, channels):
    ds = data.load(spec)
    assert len(ds) == count
    found = {}
    for example in ds:
        assert example.clean.dtype == np.float32 and example.clean.ndim == 3
        assert 0.0 <= example.clean.min() and example.clean.max() <= 1.0
        assert example.noisy is None
        found[example.clean.shape[-1]] = found.get(example.clean.shape[-1], 0) + 1
    assert found == channels
    assert ds.spec == spec and ds.labels is None


def test_skimage_split_is_the_documented_one():
    assert data.load("skimage:test").names == ("astronaut", "chelsea", "camera", "coins")
    train = data.load("skimage:train").names
    assert "motorcycle_left" in train and "motorcycle_right" in train
    assert "cat" not in train


def test_skimage_train_and_test_are_disjoint_by_name_and_pixels():
    train, test = data.load("skimage:train:gray"), data.load("skimage:test:gray")
    assert not set(train.names) & set(test.names)
    for a in test:
        for b in train:
            assert a.clean.shape != b.clean.shape or not np.allclose(a.clean, b.clean, atol=0.02)


def test_gray_mode_is_bt601_luma_of_the_colour_photo():
    rgb = data.load("skimage:test:rgb")[0].clean
    gray = data.load("skimage:test:gray")[0].clean
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert gray.shape == rgb.shape[:2] + (1,)
    np.testing.assert_allclose(gray[..., 0], expected, atol=1e-5)


def test_embedded_arrays_are_cached_and_read_only():
    a, b = data.load("skimage:test")[0].clean, data.load("skimage:test")[0].clean
    assert a is b
    with pytest.raises(ValueError):
        a[0, 0, 0] = 0.5


# --- MNIST -------------------------------------------------------------------------------


def test_mnist_split_sizes_range_and_labels():
    train, test = data.load("mnist_5k:train"), data.load("mnist_5k:test")
    assert (len(train), len(test)) == (4000, 1000)
    x = data.as_array(test)
    assert x.shape == (1000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.array_equal(np.bincount(test.labels, minlength=10), [100] * 10)
    assert np.array_equal(np.bincount(train.labels, minlength=10), [400] * 10)
    assert test[5].clean.shape == (28, 28, 1) and test[5].name.startswith("mnist_")
    np.testing.assert_array_equal(test[5].clean, x[5])


def test_mnist_split_is_deterministic_and_disjoint():
    first = embedded.mnist_split_indices.__wrapped__("test")
    again = embedded.mnist_split_indices.__wrapped__("test")
    np.testing.assert_array_equal(first, again)
    train, test = data.load("mnist_5k:train"), data.load("mnist_5k:test")
    assert not set(train.names) & set(test.names)
    train_bytes = {row.tobytes() for row in data.as_array(train)}
    assert not any(row.tobytes() in train_bytes for row in data.as_array(test))


def test_mnist_labels_match_the_digit_shapes():
    # A "1" has far less ink than a "0": a mislabelled column would break this.
    test = data.load("mnist_5k:test")
    x = data.as_array(test)
    ink = [x[test.labels == d].mean() for d in range(10)]
    assert np.argmin(ink) == 1 and ink[0] > 1.5 * ink[1]


# --- folders -----------------------------------------------------------------------------


def test_folder_lists_every_image_with_stem_names(tmp_path):
    _png(tmp_path / "b.png", (8, 10, 3))
    _png(tmp_path / "a.png", (6, 6))
    _png(tmp_path / "a.jpg", (6, 6))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = data.load(f"folder:{tmp_path}")
    assert ds.names == ("a_jpg", "a_png", "b")
    assert ds[2].clean.shape == (8, 10, 3) and ds[1].clean.shape == (6, 6, 1)
    assert ds[-1].name == "b" and ds[2].noisy is None
    np.testing.assert_allclose(ds[2].clean, 100 / 255, atol=1e-6)
    with pytest.raises(UserError, match="different sizes"):
        data.as_array(ds)


def test_missing_and_empty_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no folder at"):
        data.load(f"folder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        data.load(f"folder:{tmp_path / 'empty'}")


# --- pairs -------------------------------------------------------------------------------


def test_pairs_in_sub_folders(tmp_path):
    (tmp_path / "noisy").mkdir()
    (tmp_path / "GT").mkdir()
    for stem in ("x", "y"):
        _png(tmp_path / "noisy" / f"{stem}.png", (5, 7, 3), value=90)
        _png(tmp_path / "GT" / f"{stem}.bmp", (5, 7, 3), value=100)
    ds = data.load(f"pairs:{tmp_path}")
    assert ds.names == ("x", "y")
    assert ds[0].clean.shape == ds[0].noisy.shape == (5, 7, 3)
    np.testing.assert_allclose(ds[0].noisy, 90 / 255, atol=1e-6)
    np.testing.assert_allclose(ds[0].clean, 100 / 255, atol=1e-6)


def test_pairs_by_suffix(tmp_path):
    _png(tmp_path / "a_noisy.png", (4, 4), value=10)
    _png(tmp_path / "a_clean.png", (4, 4), value=20)
    _png(tmp_path / "b_NOISY.png", (4, 4), value=30)
    _png(tmp_path / "b_gt.png", (4, 4), value=40)
    ds = data.load(f"pairs:{tmp_path}")
    assert ds.names == ("a", "b")
    np.testing.assert_allclose(ds[1].noisy, 30 / 255, atol=1e-6)
    np.testing.assert_allclose(ds[1].clean, 40 / 255, atol=1e-6)


def test_unmatched_pairs_are_listed(tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    for stem in ("p", "q", "only_noisy"):
        _png(tmp_path / "input" / f"{stem}.png", (4, 4))
    for stem in ("p", "q", "only_clean"):
        _png(tmp_path / "target" / f"{stem}.png", (4, 4))
    with pytest.raises(UserError, match="only_noisy.png") as info:
        data.load(f"pairs:{tmp_path}")
    assert "only_clean.png" in str(info.value) and "\n" not in str(info.value)


def test_many_unmatched_files_are_counted(tmp_path):
    for i in range(8):
        _png(tmp_path / f"img{i}_noisy.png", (4, 4))
    with pytest.raises(UserError, match="8 noisy files.*and 3 more"):
        data.load(f"pairs:{tmp_path}")


def test_pair_with_different_shapes_names_both_files(tmp_path):
    _png(tmp_path / "a_noisy.png", (4, 4, 3))
    _png(tmp_path / "a_clean.png", (4, 5, 3))
    ds = data.load(f"pairs:{tmp_path}")
    with pytest.raises(UserError, match="a_noisy.png") as info:
        ds[0]
    assert "a_clean.png" in str(info.value)
    assert "4×4×3" in str(info.value) and "4×5×3" in str(info.value)


def test_stray_files_beside_suffixed_pairs_are_user_errors(tmp_path):
    _png(tmp_path / "a_noisy.png", (4, 4))
    _png(tmp_path / "a_clean.png", (4, 4))
    _png(tmp_path / "readme.png", (4, 4))
    with pytest.raises(UserError, match="readme.png"):
        data.load(f"pairs:{tmp_path}")


# --- specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["skimage", "skimage:val", "skimage:test:blue", "skimage:test:rgb:x", "mnist_5k:val",
     "nope:x", "folder:", "pairs:  "],
)
def test_malformed_specs_are_user_errors_listing_valid_forms(spec):
    with pytest.raises(UserError, match="valid forms: skimage:train"):
        data.load(spec)


def test_available_describes_every_form():
    lines = data.available()
    for form in ("skimage:", "mnist_5k:", "folder:", "pairs:"):
        assert any(line.startswith(form) for line in lines)


def test_slicing_gives_a_smaller_dataset():
    test = data.load("mnist_5k:test")
    head = test[:3]
    assert isinstance(head, data.Dataset) and len(head) == 3
    assert head.names == test.names[:3]
    assert np.array_equal(head.labels, test.labels[:3])
    assert data.as_array(head).shape == (3, 28, 28, 1)
    with pytest.raises(IndexError):
        test[1000]
