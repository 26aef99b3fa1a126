import errno
import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from denoise_jax import images
from denoise_jax.errors import UserError


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 24×32 colour crop of a real photo, float32 in [0, 1]."""
    import skimage.data

    return skimage.data.astronaut()[100:124, 200:232].astype(np.float32) / 255


def _pixels_and_alpha(photo, layout, depth, seed=0):
    rng = np.random.default_rng(seed)
    pixels = photo[..., :1] if layout in ("grey", "grey+alpha") else photo
    if depth == 16:
        # Sub-8-bit detail, so a silent reduction to 8 bits would fail the comparison.
        pixels = np.clip(pixels + rng.uniform(0, 1 / 255, pixels.shape), 0, 1)
    alpha = None
    if layout.endswith("alpha") or layout == "rgba":
        dtype = np.uint8 if depth == 8 else np.uint16
        alpha = rng.integers(0, np.iinfo(dtype).max + 1, pixels.shape[:2]).astype(dtype)
    return pixels, alpha


LOSSLESS = [
    (ext, layout, depth)
    for ext in (".png", ".tif", ".bmp")
    for layout in ("grey", "grey+alpha", "rgb", "rgba")
    for depth in (8, 16)
    if ext != ".bmp" or (depth == 8 and layout in ("grey", "rgb"))
]


@pytest.mark.parametrize("ext,layout,depth", LOSSLESS)
def test_lossless_round_trip_is_exact(tmp_path, photo, ext, layout, depth):
    pixels, alpha = _pixels_and_alpha(photo, layout, depth)
    path = str(tmp_path / f"x{ext}")
    images.write_image(path, pixels, bit_depth=depth, alpha=alpha)
    image = images.read_image(path)
    assert image.pixels.dtype == np.float32
    assert image.pixels.shape == pixels.shape
    assert image.bit_depth == depth
    assert image.path == path
    np.testing.assert_array_equal(
        images.to_uint(image.pixels, depth), images.to_uint(pixels, depth)
    )
    if alpha is None:
        assert image.alpha is None
    else:
        assert image.alpha.dtype == alpha.dtype
        np.testing.assert_array_equal(image.alpha, alpha)


@pytest.mark.parametrize("layout", ["grey", "rgb"])
@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_round_trip_is_close(tmp_path, photo, layout, ext):
    pixels, _ = _pixels_and_alpha(photo, layout, 8)
    path = str(tmp_path / f"x{ext}")
    images.write_image(path, pixels)
    image = images.read_image(path)
    assert image.pixels.shape == pixels.shape and image.bit_depth == 8
    assert np.abs(image.pixels - pixels).mean() < 3 / 255  # quality 95 on a textured crop


def test_grey_may_be_given_as_2d(tmp_path, photo):
    path = str(tmp_path / "g.png")
    images.write_image(path, photo[..., 0])
    assert images.read_image(path).pixels.shape == (*photo.shape[:2], 1)


def test_pixels_are_clipped_and_rounded(tmp_path):
    path = str(tmp_path / "c.png")
    images.write_image(path, np.array([[[-0.5], [0.5 / 255 + 1e-4], [1.7]]], np.float32))
    read = images.to_uint(images.read_image(path).pixels, 8)
    np.testing.assert_array_equal(read, [[[0], [1], [255]]])


@pytest.mark.parametrize(
    "name,depth,alpha,match",
    [
        ("x.jpg", 16, False, "8 bits"),
        ("x.bmp", 16, False, "8 bits"),
        ("x.jpg", 8, True, "alpha"),
        ("x.bmp", 8, True, "alpha"),
        ("x.webp", 8, False, "unknown image extension"),
        ("x", 8, False, "unknown image extension"),
        ("x.png", 12, False, "bit depth"),
    ],
)
def test_unstorable_requests_are_user_errors(tmp_path, photo, name, depth, alpha, match):
    a = np.zeros(photo.shape[:2], np.uint8) if alpha else None
    with pytest.raises(UserError, match=match):
        images.write_image(str(tmp_path / name), photo, bit_depth=depth, alpha=a)
    assert os.listdir(tmp_path) == []


def test_alpha_is_rescaled_only_when_depths_differ(tmp_path, photo):
    alpha16 = np.full(photo.shape[:2], 65535, np.uint16)
    alpha16[0, 0] = 257 * 7
    path = str(tmp_path / "a.png")
    images.write_image(path, photo, bit_depth=8, alpha=alpha16)
    read = images.read_image(path).alpha
    assert read.dtype == np.uint8 and read[0, 0] == 7 and read[1, 1] == 255


def test_nan_pixels_are_refused(tmp_path, photo):
    bad = photo.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(UserError, match="NaN"):
        images.write_image(str(tmp_path / "n.png"), bad)


# --- files written by other programs -----------------------------------------------------


def test_opencv_16bit_colour_png_and_tiff_keep_16_bits_in_rgb_order(tmp_path):
    import cv2

    rgb = np.zeros((5, 6, 3), np.uint16)
    rgb[..., 0] = 60000  # red
    rgb[..., 1] = np.arange(6) * 1001 + 3  # values an 8-bit reduction cannot hold
    rgb[..., 2] = 1234
    for ext in (".png", ".tif"):  # OpenCV writes TIFF with LZW, which tifffile alone cannot read
        path = str(tmp_path / f"cv{ext}")
        assert cv2.imwrite(path, rgb[..., ::-1])
        image = images.read_image(path)
        assert image.bit_depth == 16
        np.testing.assert_array_equal(images.to_uint(image.pixels, 16), rgb)


def test_pillow_16bit_grey_png(tmp_path):
    grey = (np.arange(20, dtype=np.uint16) * 3001).reshape(4, 5)
    path = str(tmp_path / "g16.png")
    PILImage.fromarray(grey).save(path)  # Pillow picks mode I;16 for uint16
    image = images.read_image(path)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(images.to_uint(image.pixels, 16)[..., 0], grey)


def test_palette_and_bilevel_images_are_converted(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (255, 0, 0)
    rgb[2:] = (0, 0, 255)
    PILImage.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    p = images.read_image(str(tmp_path / "p.png"))
    assert p.pixels.shape == (4, 4, 3) and p.alpha is None
    np.testing.assert_array_equal(images.to_uint(p.pixels, 8), rgb)

    pal = PILImage.fromarray(rgb).convert("P")
    pal.save(tmp_path / "pt.png", transparency=0)
    assert images.read_image(str(tmp_path / "pt.png")).alpha.dtype == np.uint8

    PILImage.fromarray(rgb).convert("P").save(tmp_path / "p.gif")
    assert images.read_image(str(tmp_path / "p.gif")).pixels.shape == (4, 4, 3)

    PILImage.fromarray(rgb[..., 0] > 0).save(tmp_path / "b.png")
    b = images.read_image(str(tmp_path / "b.png"))
    assert b.pixels.shape == (4, 4, 1) and set(np.unique(b.pixels)) == {0.0, 1.0}


# --- EXIF orientation -----------------------------------------------------------------------


def test_jpeg_orientation_6_is_rotated_clockwise(tmp_path):
    # Large flat blocks so JPEG loss cannot be mistaken for a wrong rotation.
    raw = np.zeros((32, 48, 3), np.uint8)
    raw[:16, :16] = 255
    exif = PILImage.Exif()
    exif[0x0112] = 6
    path = str(tmp_path / "o6.jpg")
    PILImage.fromarray(raw).save(path, exif=exif, quality=95)
    image = images.read_image(path)
    assert image.pixels.shape == (48, 32, 3)
    expected = np.rot90(raw, -1).astype(np.float32) / 255
    assert np.abs(image.pixels - expected).mean() < 0.02


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    raw = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    path = str(tmp_path / "o.png")
    PILImage.fromarray(raw).save(path, exif=exif)
    with PILImage.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(images.to_uint(images.read_image(path).pixels, 8), expected)


def _with_exif_chunk(png: bytes, orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()[len(b"Exif\x00\x00"):]
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + body))
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def test_16bit_png_and_tiff_honour_orientation(tmp_path):
    import tifffile

    raw = np.random.default_rng(0).integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    expected = np.rot90(raw, 1)  # orientation 8: rotate 90° counter-clockwise
    png_path = tmp_path / "o.png"
    png_path.write_bytes(_with_exif_chunk(images._encode_png16(raw), 8))
    tif_path = tmp_path / "o.tif"
    tifffile.imwrite(tif_path, raw, photometric="rgb", extratags=[(274, "H", 1, 8, True)])
    for path in (png_path, tif_path):
        image = images.read_image(str(path))
        assert image.bit_depth == 16
        np.testing.assert_array_equal(images.to_uint(image.pixels, 16), expected)


def test_8bit_tiff_orientation_is_applied_once(tmp_path):
    # Pillow rotates TIFFs itself on open; a second rotation here would be wrong.
    import tifffile

    raw = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "o8.tif"
    tifffile.imwrite(path, raw, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    image = images.read_image(str(path))
    np.testing.assert_array_equal(images.to_uint(image.pixels, 8), np.rot90(raw, -1))


# --- damaged and unsupported files ---------------------------------------------------------


def _assert_one_line_error(path, match):
    with pytest.raises(UserError, match=match) as info:
        images.read_image(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert repr(str(path)) in message and message.startswith("cannot read")


def test_missing_directory_and_empty_files(tmp_path):
    _assert_one_line_error(tmp_path / "nope.png", "no such file")
    _assert_one_line_error(tmp_path, "folder")
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_one_line_error(tmp_path / "empty.png", "empty")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_files_are_detected(tmp_path, photo, ext, keep):
    whole = tmp_path / f"whole{ext}"
    images.write_image(str(whole), photo)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: int(len(data) * keep)])
    _assert_one_line_error(cut, "truncated or corrupt")


@pytest.mark.parametrize("depth", [8, 16])
def test_png_cut_after_its_image_data_is_detected(tmp_path, photo, depth):
    # Pillow alone decodes this without complaint: only the missing IEND chunk shows it.
    whole = tmp_path / "whole.png"
    images.write_image(str(whole), photo, bit_depth=depth)
    data = whole.read_bytes()
    assert data.endswith(b"IEND\xaeB`\x82")
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:-6])
    _assert_one_line_error(cut, "truncated or corrupt")


def test_corrupt_checksum_is_detected(tmp_path, photo):
    whole = tmp_path / "whole.png"
    images.write_image(str(whole), photo)
    data = bytearray(whole.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    _assert_one_line_error(bad, "truncated or corrupt")


def test_unsupported_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    _assert_one_line_error(tmp_path / "notes.txt", "not a recognised image")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    _assert_one_line_error(tmp_path / "fake.png", "truncated or corrupt|not a recognised")
    PILImage.new("RGB", (4, 4)).save(tmp_path / "x.webp")
    _assert_one_line_error(tmp_path / "x.webp", "unsupported format WEBP")
    frames = [PILImage.new("L", (4, 4), v) for v in (0, 128, 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    _assert_one_line_error(tmp_path / "anim.gif", "3 frames")
    PILImage.fromarray(np.zeros((3, 3), np.float32), mode="F").save(tmp_path / "f.tif")
    _assert_one_line_error(tmp_path / "f.tif", "not supported")


# --- atomic writing ----------------------------------------------------------------------------


def _existing_target(tmp_path, photo):
    target = tmp_path / "out.png"
    images.write_image(str(target), photo)
    return target, target.read_bytes()


def test_encoder_failure_leaves_target_and_no_temp_file(tmp_path, photo, monkeypatch):
    target, before = _existing_target(tmp_path, photo)

    def broken(*args, **kwargs):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(images, "_encode", broken)
    with pytest.raises(RuntimeError, match="exploded"):
        images.write_image(str(target), photo * 0.5)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_full_disk_is_a_user_error_and_writes_nothing(tmp_path, photo, monkeypatch):
    target, before = _existing_target(tmp_path, photo)

    def half_then_full(path, data):
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images, "_write_bytes", half_then_full)
    with pytest.raises(UserError, match="disk is full; nothing was written") as info:
        images.write_image(str(target), photo * 0.5)
    assert "out.png" in str(info.value)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_output_cleans_up_after_any_exception(tmp_path):
    target = tmp_path / "fig.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyError):
        with images.atomic_output(str(target)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise KeyError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["fig.png"]


def test_parent_folders_are_created_and_permissions_follow_umask(tmp_path, photo):
    old = os.umask(0o022)
    try:
        target = tmp_path / "a" / "b" / "out.png"
        images.write_image(str(target), photo)
        images.write_text(str(tmp_path / "c" / "t.md"), "hello\n")
    finally:
        os.umask(old)
    assert images.read_image(str(target)).pixels.shape == photo.shape
    assert (target.stat().st_mode & 0o777) == 0o644
    assert (tmp_path / "c" / "t.md").read_text() == "hello\n"


def test_folder_path_through_a_file_is_a_user_error(tmp_path, photo):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(UserError, match="nothing was written"):
        images.write_image(str(tmp_path / "plain" / "out.png"), photo)
    with pytest.raises(UserError, match="is a folder"):
        images.write_text(str(tmp_path), "x")


# --- paths ------------------------------------------------------------------------------------


def test_ensure_not_input_sees_through_relative_paths_and_links(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    source = tmp_path / "in" / "a.png"
    source.write_bytes(b"x")
    os.symlink(source, tmp_path / "link.png")
    os.link(source, tmp_path / "hard.png")
    monkeypatch.chdir(tmp_path / "in")
    for out in ("a.png", "./a.png", "../in/a.png", str(tmp_path / "link.png"), "../hard.png"):
        with pytest.raises(UserError, match="input file"):
            images.ensure_not_input(out, [str(source)])
    images.ensure_not_input("b.png", [str(source)])
    images.ensure_not_input(str(tmp_path / "new" / "a.png"), ["a.png"])


def test_list_images_expands_folders_and_globs(tmp_path):
    for name in ("b.png", "a.JPG", "c.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    found = images.list_images([str(tmp_path)])
    assert [os.path.basename(p) for p in found] == ["a.JPG", "b.png", "c.tif"]
    assert images.list_images([str(tmp_path / "*.png")]) == [str(tmp_path / "b.png")]
    both = images.list_images([str(tmp_path / "b.png"), str(tmp_path)])
    assert len(both) == 3 and both[0] == str(tmp_path / "b.png")
    assert images.list_images([str(tmp_path / "notes.txt")]) == [str(tmp_path / "notes.txt")]


@pytest.mark.parametrize("pattern,match", [("missing.png", "no such"), ("*.bmp", "matches no")])
def test_list_images_names_what_matched_nothing(tmp_path, pattern, match):
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(UserError, match=match) as info:
        images.list_images([str(tmp_path / "a.png"), str(tmp_path / pattern)])
    assert pattern in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        images.list_images([str(tmp_path / "empty")])


def test_to_uint_and_from_uint_invert_each_other():
    for dtype, depth in ((np.uint8, 8), (np.uint16, 16)):
        values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
        back = images.to_uint(images.from_uint(values), depth)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, values)
    with pytest.raises(ValueError):
        images.from_uint(np.zeros(3, np.int32))


def test_pillow_round_trip_of_encoded_png16_is_valid(photo):
    # Our hand-written 16-bit PNG encoder must produce files other readers accept.
    pixels, _ = _pixels_and_alpha(photo, "rgb", 16)
    data = images._encode_png16(images.to_uint(pixels, 16))
    with PILImage.open(io.BytesIO(data)) as im:
        im.verify()
