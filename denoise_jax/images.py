"""Reading and writing image files.

Pixels inside the library are float32 in [0, 1], [H, W, C] with C = 1 (grey) or 3 (colour).
An alpha channel is not denoised: it is kept aside in the file's own integer dtype and
re-attached on writing.

Reading (`read_image`) accepts PNG, JPEG, TIFF, BMP and single-frame GIF, 8 or 16 bits per
sample, grey, grey+alpha, RGB, RGBA and palette images (palettes become RGB). The EXIF
orientation tag is honoured on every path (JPEG, PNG eXIf, TIFF; 8 and 16 bit). Pillow
decodes 8-bit images and validates every file by a full load (truncation is an error, never
silently padded); 16-bit colour PNGs are decoded by OpenCV (Pillow reduces them to 8 bits)
and 16-bit or grey+alpha TIFFs by tifffile (OpenCV as the fallback for compressions tifffile
cannot decode without imagecodecs). Any failure is a one-line `UserError` naming the file.

Writing (`write_image`) picks the format from the extension (.png, .jpg/.jpeg, .tif/.tiff,
.bmp). 16 bits are available for PNG and TIFF only, and so is alpha (JPEG has none; BMP
alpha is not read back by common readers): those requests are `UserError`s rather than
silent changes. Every write is
atomic: the bytes go to a temporary file beside the target, which `os.replace` moves into
place, so a failure (full disk, encoder error) never leaves a half-written or clobbered file.

Storing (`encode_file`) gives the bytes a data set keeps for an image file: the file itself
when it is an 8-bit RGB PNG or JPEG, else an 8-bit RGB PNG of it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import logging
import os
import secrets
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from denoise_jax.errors import UserError

# Pillow, OpenCV and tifffile are imported inside the functions that use them: the CLI imports
# this module, and `import denoise_jax.cli` loads none of them.

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
WRITE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
}
# Pillow format names accepted on reading. MPO is how Pillow names many phone JPEGs
# (a JPEG followed by preview frames); its first frame is the photo.
_READ_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "BMP", "DIB", "GIF"}
_SUPPORTED = "PNG, JPEG, TIFF, BMP or GIF"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ORIENTATION = 0x0112


@dataclass
class Image:
    """A decoded image file.

    Attributes:
      pixels: [H, W, C] float32 in [0, 1]; C = 1 for grey, 3 for colour.
      alpha: [H, W] in the file's integer dtype (uint8 or uint16), untouched; None if absent.
      bit_depth: 8 or 16, the file's bits per sample (write back with the same depth).
      path: the file it came from.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    path: str


# ---------------------------------------------------------------------------------------
# Integer <-> float conversion


def to_uint(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float pixels in [0, 1] (any shape) -> uint8 or uint16, clipped and rounded."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    top = 255 if bit_depth == 8 else 65535
    pixels = np.asarray(pixels)
    out = np.empty(pixels.shape, np.uint8 if bit_depth == 8 else np.uint16)
    src, dst = pixels.reshape(-1), out.reshape(-1)
    # float64 for exact rounding, a few MB at a time: a whole 24 MP photo in float64 (plus
    # the clip and scale temporaries) would take ~1.7 GB.
    chunk = 1 << 20
    for start in range(0, src.size, chunk):
        part = np.clip(src[start:start + chunk].astype(np.float64), 0.0, 1.0)
        dst[start:start + chunk] = np.rint(part * top)
    return out


def from_uint(array: np.ndarray) -> np.ndarray:
    """uint8 or uint16 array (any shape) -> float32 in [0, 1]."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    raise ValueError(f"expected uint8 or uint16 samples, got {array.dtype}")


# ---------------------------------------------------------------------------------------
# Reading


def read_image(path: str) -> Image:
    """Decodes an image file; any problem is a one-line `UserError` naming `path`."""
    return decode_image(_read_bytes(path), path)


def decode_image(data: bytes, path: str) -> Image:
    """Decodes an encoded image held in memory (uploads, stored datasets).

    `path` names the source in errors and in `Image.path`.
    """
    if data[:4] in _TIFF_MAGICS:
        samples, orientation, bit_depth = _read_tiff_samples(path, data)
    else:
        samples, orientation, bit_depth = _read_with_pillow(path, data)
    samples = _apply_orientation(samples, orientation)
    return _split_channels(path, samples, bit_depth)


def _fail(path: str, reason: str) -> UserError:
    return UserError(f"cannot read {path!r}: {reason}")


def _read_bytes(path: str) -> bytes:
    if os.path.isdir(path):
        raise _fail(path, "it is a folder, not an image file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except OSError as e:
        raise _fail(path, (e.strerror or "read error").lower()) from None
    if not data:
        raise _fail(path, "the file is empty")
    return data


def _read_with_pillow(path: str, data: bytes) -> tuple[np.ndarray, int | None, int]:
    """PNG, JPEG, BMP, GIF and 8-bit TIFF -> ([H, W] or [H, W, S] uint samples, orientation, depth).

    Samples are L, LA, RGB or RGBA (uint8) or 16-bit grey (uint16); 16-bit colour PNG goes
    through OpenCV. The full load is what detects truncation.
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        # Pillow warns before it raises on some truncated files; the error suffices.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(io.BytesIO(data)) as im:
                if im.format not in _READ_FORMATS:
                    raise _fail(path, f"unsupported format {im.format} (use {_SUPPORTED})")
                frames = getattr(im, "n_frames", 1)
                if frames > 1 and im.format != "MPO":
                    raise _fail(path, f"it has {frames} frames; only single images are supported")
                png = _png_header(data)
                if png is not None:
                    _check_png_chunks(path, data)
                im.load()
                orientation = im.getexif().get(_ORIENTATION)
                if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
                    return _decode_png16_colour(path, data, im.size, png[1]), orientation, 16
                depth = 16 if im.mode.startswith("I;16") else 8
                return _pillow_samples(path, im), orientation, depth
    except UserError:
        raise
    except UnidentifiedImageError:
        raise _fail(path, f"not a recognised image file (use {_SUPPORTED})") from None
    except PILImage.DecompressionBombError:
        raise _fail(path, "the image is too large to decode safely") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, zlib.error):
        # Pillow reports truncation and corruption through all of these, depending on where
        # the bytes stop.
        raise _fail(path, "the file is truncated or corrupt") from None


def _pillow_samples(path: str, im) -> np.ndarray:
    mode = im.mode
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode in ("I", "F"):
        raise _fail(path, "32-bit or floating-point samples are not supported (use 8 or 16 bit)")
    if mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    return np.asarray(im)


def _check_png_chunks(path: str, data: bytes) -> None:
    """Walks a PNG's chunks to IEND checking each CRC.

    Pillow stops reading after the image data, so a file cut after its last IDAT (or with
    a damaged ancillary chunk) would otherwise load without complaint.
    """
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        if end > len(data):
            break
        kind_and_body = data[pos + 4 : end - 4]
        if zlib.crc32(kind_and_body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise _fail(path, "the file is truncated or corrupt (bad PNG checksum)")
        if kind_and_body[:4] == b"IEND":
            return
        pos = end
    raise _fail(path, "the file is truncated or corrupt")


def _png_header(data: bytes) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR, or None if `data` is not a PNG."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    return data[24], data[25]


def _decode_png16_colour(path: str, data: bytes, size: tuple[int, int], colour_type: int):
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    width, height = size
    if array is None or array.dtype != np.uint16 or array.shape[:2] != (height, width):
        raise _fail(path, "the 16-bit PNG could not be decoded")
    if colour_type == 4:
        # Grey+alpha: OpenCV expands it to BGRA with B = G = R.
        return np.stack([array[..., 0], array[..., -1]], axis=-1) if array.ndim == 3 else array
    return _bgr_to_rgb(array)


def _bgr_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 3:
        return array[..., ::-1]
    if array.ndim == 3 and array.shape[2] == 4:
        return array[..., [2, 1, 0, 3]]
    return array


def _read_tiff_samples(path: str, data: bytes) -> tuple[np.ndarray, int | None, int]:
    """TIFF -> (samples, orientation, depth). 8-bit non-grey+alpha TIFFs go through Pillow.

    Pillow applies a TIFF's orientation itself (and drops the tag); tifffile does not, so its
    path returns the tag for `_apply_orientation`.
    """
    import tifffile

    try:
        with _quiet_logger("tifffile"), tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            pages = len(tif.pages)
            bits = page.bitspersample
            samples_per_pixel = page.samplesperpixel
            sample_format = int(page.sampleformat)
            photometric = int(page.photometric)
            tag = page.tags.get(_ORIENTATION)
            orientation = int(tag.value) if tag is not None else None
            if pages > 1:
                raise _fail(path, f"it has {pages} pages; only single images are supported")
            if sample_format not in (1,) or bits not in (1, 2, 4, 8, 16):
                raise _fail(path, f"{bits}-bit TIFF samples are not supported (use 8 or 16 bit)")
            if bits < 8 or (bits == 8 and samples_per_pixel != 2):
                return _read_with_pillow(path, data)
            # Only these colour models are plain samples (others need Pillow's conversions,
            # which are 8-bit only): grey (+alpha) and RGB (+alpha).
            if (photometric, samples_per_pixel) not in ((1, 1), (1, 2), (2, 3), (2, 4)):
                raise _fail(path, f"unsupported {bits}-bit TIFF colour model (use grey or RGB)")
            try:
                array = page.asarray()
            except ValueError as e:
                if "imagecodecs" not in str(e):
                    raise
                shape = (page.imagelength, page.imagewidth)
                if samples_per_pixel > 1:
                    shape += (samples_per_pixel,)
                return _decode_tiff_with_opencv(path, data, bits, shape), orientation, bits
            if page.axes.startswith("S"):
                array = np.moveaxis(array, 0, -1)
            return array, orientation, 16 if bits == 16 else 8
    except UserError:
        raise
    except Exception:
        # tifffile raises TiffFileError, ValueError, zlib.error, struct.error, ... on damage.
        raise _fail(path, "the file is truncated or corrupt") from None


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silences a library's logger (tifffile logs each damaged tag before raising)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _decode_tiff_with_opencv(path: str, data: bytes, bits: int, shape: tuple) -> np.ndarray:
    """Fallback for compressions tifffile needs imagecodecs for (LZW, JPEG, ...).

    `shape` is the page's [H, W] or [H, W, S]; OpenCV's result must match it exactly
    (it silently reduces some layouts, e.g. 16-bit grey+alpha, to 8-bit grey).
    """
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    wanted = np.uint16 if bits == 16 else np.uint8
    if array is None or array.dtype != wanted or array.shape != tuple(shape):
        raise _fail(path, "this TIFF compression is not supported (save it uncompressed or as PNG)")
    return _bgr_to_rgb(array)


def _apply_orientation(array: np.ndarray, orientation: int | None) -> np.ndarray:
    """Applies an EXIF orientation (1-8) to [H, W, ...], as Pillow's `exif_transpose` does."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = np.swapaxes(array, 0, 1)
    elif orientation == 6:
        array = np.rot90(array, -1)
    elif orientation == 7:
        array = np.swapaxes(array[::-1, ::-1], 0, 1)
    elif orientation == 8:
        array = np.rot90(array, 1)
    return np.ascontiguousarray(array)


def _split_channels(path: str, samples: np.ndarray, bit_depth: int) -> Image:
    if samples.ndim == 2:
        samples = samples[..., None]
    channels = samples.shape[2] if samples.ndim == 3 else -1
    if channels not in (1, 2, 3, 4) or samples.dtype not in (np.uint8, np.uint16):
        raise _fail(
            path, f"unsupported layout {samples.shape} {samples.dtype} (use grey, RGB or RGBA)"
        )
    alpha = None
    if channels in (2, 4):
        alpha = np.ascontiguousarray(samples[..., -1])
        samples = samples[..., :-1]
    return Image(pixels=from_uint(samples), alpha=alpha, bit_depth=bit_depth, path=path)


# ---------------------------------------------------------------------------------------
# Writing


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`; on success it replaces `path` atomically.

    On any failure the temporary file is removed and `path` is left as it was. A full
    disk or an unwritable folder becomes a `UserError` saying nothing was written.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(
            f"cannot write {path!r}: part of its folder path is a file; nothing was written"
        ) from None
    except OSError as e:
        raise write_error(path, e) from None
    if os.path.isdir(path):
        raise UserError(f"cannot write {path!r}: it is a folder; nothing was written")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        # Created by hand (not mkstemp) so the final file gets the umask's permissions.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise write_error(path, e) from None
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        raise write_error(path, e) from None
    except BaseException:
        _remove_quietly(tmp)
        raise


# Write failures that are the place's fault, not the data's: (reason, what to do).
_PLACE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free some space or write to another disk"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or write to another disk"),
    errno.EACCES: ("permission denied", "write to a folder you can write to"),
    errno.EPERM: ("permission denied", "write to a folder you can write to"),
    errno.EROFS: ("the file system is read-only", "write to a folder you can write to"),
}


def place_error(code: int | None) -> tuple[str, str] | None:
    """(reason, what to do) for a write that failed with errno `code` because of where it
    went (full disk, quota, permissions, read-only file system); None for other errors."""
    return _PLACE_ERRORS.get(code)


def write_error(path: str, e: OSError) -> UserError:
    """The one-line `UserError` for a failed write of `path`: why, and what to do."""
    known = place_error(e.errno)
    if known:
        return UserError(f"cannot write {path!r}: {known[0]}; nothing was written; {known[1]}")
    if e.errno == errno.ENOTDIR:
        return UserError(f"cannot write {path!r}: a parent of it is not a folder; nothing was "
                         "written")
    reason = (e.strerror or str(e) or "write error").lower()
    return UserError(f"cannot write {path!r}: {reason}; nothing was written")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path) as tmp:
        _write_bytes(tmp, data)


def write_text(path: str, text: str) -> None:
    """Writes UTF-8 `text` to `path` atomically (see `atomic_output`)."""
    write_bytes(path, text.encode("utf-8"))


def write_image(
    path: str, pixels: np.ndarray, *, bit_depth: int = 8, alpha: np.ndarray | None = None
) -> None:
    """Encodes and writes an image atomically; the format comes from the extension.

    Args:
      path: target file (.png, .jpg/.jpeg, .tif/.tiff or .bmp); its folder is created.
      pixels: [H, W, C] (C = 1 or 3) or [H, W] float in [0, 1]; clipped and rounded.
      bit_depth: 8, or 16 for PNG and TIFF.
      alpha: optional [H, W] uint8 or uint16 alpha, re-attached (rescaled only if its dtype
        differs from `bit_depth`). PNG and TIFF only.
    """
    ext = os.path.splitext(path)[1].lower()
    fmt = WRITE_FORMATS.get(ext)
    if fmt is None:
        raise UserError(
            f"cannot write {path!r}: unknown image extension {ext or '(none)'!r} "
            f"(use {', '.join(sorted(WRITE_FORMATS))})"
        )
    if bit_depth not in (8, 16):
        raise UserError(f"cannot write {path!r}: bit depth must be 8 or 16, not {bit_depth}")
    if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
        raise UserError(f"cannot write {path!r}: {fmt} stores 8 bits; use .png or .tif for 16 bit")
    samples = _interleave(path, pixels, bit_depth, alpha)
    if alpha is not None and fmt == "JPEG":
        raise UserError(f"cannot write {path!r}: JPEG has no alpha channel; use .png or .tif")
    if alpha is not None and fmt == "BMP":
        # Pillow writes 32-bit BMPs whose fourth byte readers (Pillow included) ignore.
        raise UserError(f"cannot write {path!r}: BMP does not keep alpha; use .png or .tif")
    data = _encode(samples, fmt)
    write_bytes(path, data)


def _interleave(
    path: str, pixels: np.ndarray, bit_depth: int, alpha: np.ndarray | None
) -> np.ndarray:
    """-> [H, W, S] uint samples (S = 1, 2, 3 or 4) with alpha last."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or min(pixels.shape[:2]) < 1:
        raise ValueError(f"pixels must be [H, W], [H, W, 1] or [H, W, 3], got {pixels.shape}")
    if not np.all(np.isfinite(pixels)):
        raise UserError(f"cannot write {path!r}: the image contains NaN or infinite values")
    samples = to_uint(pixels, bit_depth)
    if alpha is None:
        return samples
    alpha = np.asarray(alpha)
    if alpha.shape != pixels.shape[:2]:
        raise ValueError(f"alpha must be [H, W] = {pixels.shape[:2]}, got {alpha.shape}")
    alpha = _convert_alpha(alpha, samples.dtype)
    return np.concatenate([samples, alpha[..., None]], axis=-1)


def _convert_alpha(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if alpha.dtype == dtype:
        return alpha
    if alpha.dtype == np.uint16 and dtype == np.uint8:
        return np.rint(alpha / 257.0).astype(np.uint8)
    if alpha.dtype == np.uint8 and dtype == np.uint16:
        return alpha.astype(np.uint16) * 257
    raise ValueError(f"alpha must be uint8 or uint16, got {alpha.dtype}")


def _encode(samples: np.ndarray, fmt: str) -> bytes:
    """[H, W, S] uint8/uint16 samples -> file bytes in `fmt`."""
    if samples.dtype == np.uint16 and fmt == "PNG":
        return _encode_png16(samples)
    if fmt == "TIFF":
        return _encode_tiff(samples)
    from PIL import Image as PILImage

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[samples.shape[2]]
    array = samples[..., 0] if mode == "L" else samples
    im = PILImage.fromarray(np.ascontiguousarray(array), mode=mode)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        # 4:4:4 chroma: a denoiser's colour detail should not be thrown away by the container.
        im.save(buffer, format="JPEG", quality=95, subsampling=0)
    else:
        im.save(buffer, format=fmt)
    return buffer.getvalue()


def _encode_tiff(samples: np.ndarray) -> bytes:
    import tifffile

    channels = samples.shape[2]
    kwargs = {"photometric": "minisblack" if channels <= 2 else "rgb", "compression": "zlib"}
    if channels in (2, 4):
        kwargs["extrasamples"] = ["unassalpha"]
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, samples[..., 0] if channels == 1 else samples, **kwargs)
    return buffer.getvalue()


def _encode_png16(samples: np.ndarray) -> bytes:
    """16-bit PNG encoder (Pillow cannot write 16-bit colour; OpenCV cannot write grey+alpha)."""
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = samples.astype(">u2").reshape(height, width * channels).view(np.uint8)
    # Filter type 0 (none) on every row.
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------
# Bytes for a stored data set


def rgb8(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 1|3] float in [0, 1] -> [H, W, 3] uint8."""
    samples = to_uint(pixels, 8)
    return np.repeat(samples, 3, axis=-1) if samples.shape[-1] == 1 else samples


def png_bytes(samples: np.ndarray) -> bytes:
    """[H, W, 3] uint8 -> PNG file bytes."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    # Level 1: the sources re-encoded here are large BMPs; speed over a few % of size.
    PILImage.fromarray(np.ascontiguousarray(samples), mode="RGB").save(
        buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _stored_as_is(data: bytes) -> bool:
    """True for 8-bit RGB PNG or JPEG files without an EXIF rotation (stored verbatim)."""
    from PIL import Image as PILImage

    if data[:8] == _PNG_SIGNATURE and _png_header(data) != (8, 2):
        return False
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return (im.format in ("PNG", "JPEG") and im.mode == "RGB"
                    and im.getexif().get(_ORIENTATION) in (None, 1))
    except Exception:
        return False  # read_image has already reported real damage


def encode_file(path: str) -> tuple[bytes, tuple[int, int]]:
    """An image file -> (bytes to store, (H, W)); decoding problems are `UserError`s.

    8-bit RGB PNGs and JPEGs without an EXIF rotation are kept byte for byte; anything
    else is decoded with `read_image` and re-encoded as an 8-bit RGB PNG (16 bits rounded
    to 8, grey repeated to 3 channels, alpha dropped).
    """
    pixels = read_image(path).pixels
    with open(path, "rb") as f:
        data = f.read()
    if not _stored_as_is(data):
        data = png_bytes(rgb8(pixels))
    return data, pixels.shape[:2]


# ---------------------------------------------------------------------------------------
# Paths


def ensure_not_input(out_path: str, input_paths: list[str]) -> None:
    """Raises `UserError` if `out_path` is (by path, symlink or hard link) one of the inputs."""
    out_real = os.path.realpath(out_path)
    for source in input_paths:
        same = os.path.realpath(source) == out_real
        if not same and os.path.exists(out_path) and os.path.exists(source):
            same = os.path.samefile(out_path, source)
        if same:
            raise UserError(
                f"refusing to write {out_path!r}: it is the input file {source!r}; "
                "choose another output path (inputs are never overwritten)"
            )


def is_image_path(path: str) -> bool:
    """True if `path` has an image extension (case-insensitive)."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(paths: list[str]) -> list[str]:
    """Expands files, folders (their image files, sorted, not recursive) and glob patterns.

    Explicit files are kept whatever their extension (reading them reports problems);
    folders and patterns keep image extensions only. Duplicates are dropped, order kept.
    A path that matches no image is a `UserError` naming it.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            matches = [
                os.path.join(path, n) for n in names
                if is_image_path(n) and os.path.isfile(os.path.join(path, n))
            ]
            if not matches:
                raise UserError(
                    f"folder {path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
                )
        elif os.path.isfile(path):
            matches = [path]
        elif glob.has_magic(path):
            matches = sorted(p for p in glob.glob(path) if os.path.isfile(p) and is_image_path(p))
            if not matches:
                raise UserError(f"pattern {path!r} matches no image files")
        else:
            raise UserError(f"no such file or folder: {path!r}")
        found.extend(matches)
    seen: set[str] = set()
    unique = []
    for path in found:
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique
