"""Streamlit page: denoise one photo in the browser (`denoise-jax app`).

The page: pick a bundled sample photo or upload one (PNG, JPEG, TIFF, BMP, GIF), optionally
add synthetic noise (the clean photo then becomes the reference and PSNR/SSIM are shown,
computed by `evaluate.score`), choose a method (a shipped pretrained model, a training
workdir, or a classical method) and see noisy and denoised side by side, a zoomed crop, a
wipe/blend comparison, the runtime, and a PNG download (alpha passed through, 16-bit kept).

Run it with `denoise-jax app` (see `app_cmd`), or `streamlit run denoise_jax/app.py`.
Every stage is cached (`st.cache_data` for images, `st.cache_resource` for models), so moving
a slider of the viewer does not denoise again. Problems the user can fix (a damaged or
unsupported file, too large an image, a bad workdir) are shown as one `st.error` line.

Images are float32 in [0, 1], [H, W, C] with C in {1, 3} throughout; display converts to uint8.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from PIL import Image as PILImage

from denoise_jax import baselines, checkpoints, evaluate, methods, noise, pretrained
from denoise_jax import data as datasets  # `data` is the name of the uploads' bytes here
from denoise_jax.ensemble import VIEWS
from denoise_jax.errors import UserError
from denoise_jax.images import decode_image, to_uint, write_image
from denoise_jax.inference import Denoiser

# streamlit, an optional dependency (`denoise-jax app` says how to install it), is imported
# inside the functions that draw the page, so that the pure helpers import and test without it.

MAX_PIXELS = 40_000_000  # decoding and denoising beyond this takes minutes on a CPU
UPLOAD_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif"]
# Bundled photos always; the photo corpus's held-out photos too once it is built.
SAMPLE_SPECS = ("skimage:test", "photos:val")
DEFAULT_METHOD = "nlm_cv"  # about 0.4 s for a 512² colour photo on one CPU core
ZOOM_SIZES = (32, 64, 128, 256)
ZOOM_DISPLAY = 256  # zoomed crops are enlarged (nearest neighbour) to about this width


@dataclass(frozen=True)
class Source:
    """A loaded photo. pixels: [H, W, C] float32 in [0, 1]; alpha: [H, W] uint or None."""

    name: str
    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int


# ---------------------------------------------------------------------------------------
# Pure helpers (no Streamlit): tested directly


def noise_kinds() -> list[str]:
    """The noise families the page offers (those with a `noise.Control`)."""
    return [f.name for f in noise.FAMILIES.values() if f.control is not None]


def noise_spec(kind: str, level: float) -> str:
    """The `noise.parse` spec for a kind and its slider value (ignored without a slider)."""
    if kind not in noise_kinds():
        raise ValueError(f"unknown noise kind {kind!r}")
    return f"{kind}:{level:g}" if noise.FAMILIES[kind].control.label else kind


def to_display(image: np.ndarray) -> np.ndarray:
    """[H, W, C] float in [0, 1] -> uint8 [H, W, 3] or [H, W] (grey) for `st.image`."""
    out = to_uint(image, 8)
    return out[..., 0] if out.shape[-1] == 1 else out


def crop_box(shape: tuple[int, ...], cx: float, cy: float, size: int) -> tuple[int, int, int]:
    """(top, left, side) of a square crop of at most `size` centred at fractions (cx, cy)."""
    h, w = shape[:2]
    side = max(1, min(size, h, w))
    top = int(round(cy * (h - 1))) - side // 2
    left = int(round(cx * (w - 1))) - side // 2
    return min(max(top, 0), h - side), min(max(left, 0), w - side), side


def zoom(image: np.ndarray, box: tuple[int, int, int], display: int = ZOOM_DISPLAY) -> np.ndarray:
    """The crop `box` of image [H, W, C], enlarged by an integer factor (nearest neighbour)."""
    top, left, side = box
    crop = image[top : top + side, left : left + side]
    factor = max(1, display // side)
    return np.repeat(np.repeat(crop, factor, axis=0), factor, axis=1)


def outline(image: np.ndarray, box: tuple[int, int, int], width: int = 2) -> np.ndarray:
    """A copy of image [H, W, C] with the square `box` drawn as a red (grey: white) frame."""
    out = np.array(image, np.float32)
    top, left, side = box
    colour = np.array([1.0, 0.1, 0.1] if out.shape[-1] == 3 else [1.0], np.float32)
    bottom, right = top + side, left + side
    out[top : top + width, left:right] = colour
    out[max(bottom - width, 0) : bottom, left:right] = colour
    out[top:bottom, left : left + width] = colour
    out[top:bottom, max(right - width, 0) : right] = colour
    return out


def compare(before: np.ndarray, after: np.ndarray, position: float, mode: str) -> np.ndarray:
    """A before/after view of two [H, W, C] images in [0, 1].

    mode "wipe": `after` left of the column at fraction `position`, `before` right of it,
    with a thin white divider. mode "blend": (1 - position)·before + position·after.
    """
    before = np.clip(np.asarray(before, np.float32), 0.0, 1.0)
    after = np.clip(np.asarray(after, np.float32), 0.0, 1.0)
    if mode == "blend":
        return (1.0 - position) * before + position * after
    if mode != "wipe":
        raise ValueError(f"unknown comparison mode {mode!r}")
    width = before.shape[1]
    cut = int(round(position * width))
    out = before.copy()
    out[:, :cut] = after[:, :cut]
    if 0 < cut < width:
        out[:, max(cut - 1, 0) : cut + 1] = 1.0
    return out


def centre_crop(source: Source, size: int) -> Source:
    """The source cropped to its central `size`×`size` (0 or a larger size: unchanged)."""
    h, w = source.pixels.shape[:2]
    if size <= 0 or (h <= size and w <= size):
        return source
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    rows, cols = slice(top, top + size), slice(left, left + size)
    alpha = None if source.alpha is None else source.alpha[rows, cols]
    return Source(source.name, source.pixels[rows, cols], alpha, source.bit_depth)


def image_pixels(data: bytes) -> int | None:
    """Width × height read from an encoded image's header, or None if Pillow cannot tell."""
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return int(im.size[0]) * int(im.size[1])
    except Exception:  # a damaged or unknown file: decode_image gives the friendly message
        return None


def check_upload(name: str, data: bytes, max_mb: float, max_pixels: int = MAX_PIXELS) -> None:
    """Raises `UserError` when an upload is over the size or pixel limit."""
    megabytes = len(data) / 1e6
    if len(data) > max_mb * 1e6:
        raise UserError(
            f"{name} is {megabytes:.1f} MB; the limit is {max_mb:g} MB. Upload a smaller file "
            "or crop/compress it first."
        )
    pixels = image_pixels(data)
    if pixels is not None and pixels > max_pixels:
        raise UserError(
            f"{name} has {pixels / 1e6:.1f} megapixels; the limit is {max_pixels / 1e6:g} MP. "
            "Downscale or crop it first."
        )


def decode_upload(name: str, data: bytes, max_mb: float) -> Source:
    """Checks the limits and decodes an uploaded file; any problem is a one-line UserError."""
    if not data:
        raise UserError(f"{name} is empty: upload an image file (PNG, JPEG, TIFF or BMP)")
    check_upload(name, data, max_mb)
    try:
        image = decode_image(data, name)
    except UserError:
        raise
    except Exception as e:  # a decoder bug or exotic file must not reach the page as a trace
        raise UserError(
            f"cannot read {name!r}: not a supported image (PNG, JPEG, TIFF, BMP or GIF) "
            f"or damaged ({type(e).__name__})"
        ) from e
    return Source(name, image.pixels, image.alpha, image.bit_depth)


def encode_png(pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int) -> bytes:
    """PNG bytes of pixels [H, W, C] in [0, 1] (8 or 16 bit), alpha re-attached if given."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out.png")
        write_image(path, pixels, bit_depth=bit_depth, alpha=alpha)
        with open(path, "rb") as f:
            return f.read()


def add_noise(clean: np.ndarray, spec: str, seed: int) -> np.ndarray:
    """clean [H, W, C] -> noisy [H, W, C] float32 (may stray outside [0, 1], as in eval)."""
    model = noise.parse(spec)
    return np.asarray(model(jax.random.PRNGKey(seed), clean), np.float32)


# ---------------------------------------------------------------------------------------
# Cached stages


def _sample_sets() -> list:
    sets = []
    for spec in SAMPLE_SPECS:
        try:
            sets.append(datasets.load(spec))
        except UserError:  # the photo corpus is not built here: bundled photos only
            pass
    return sets


def _sample_names() -> list[str]:
    return [name for dataset in _sample_sets() for name in dataset.names]


def _load_sample(name: str) -> Source:
    dataset = next(d for d in _sample_sets() if name in d.names)
    example = dataset[list(dataset.names).index(name)]
    return Source(name, np.asarray(example.clean, np.float32), None, 8)


def _denoise(method: str, noisy: np.ndarray, sigma: float | None, tile: int,
             ensemble: int) -> tuple[np.ndarray, float]:
    """(denoised [H, W, C], seconds). method: "classical:NAME" or "workdir:PATH"."""
    kind, _, target = method.partition(":")
    if kind == "classical":
        fn = baselines.get_baseline(target)
    else:
        import streamlit as st

        load = st.cache_resource(max_entries=2, show_spinner="Loading the model…")(_load_model)
        fn = load(target, tile, ensemble)
    start = time.perf_counter()
    out = np.asarray(fn(noisy, sigma), np.float32)
    return out, time.perf_counter() - start


def _load_model(workdir: str, tile: int, ensemble: int):
    """A `Denoiser` for "DIR", "DIR@best" or "DIR@latest"."""
    return Denoiser.from_spec(workdir, tile=tile, ensemble=ensemble)


def _setup_caches() -> dict[str, Any]:
    import streamlit as st

    return {
        "samples": st.cache_data(show_spinner=False)(_sample_names),
        "sample": st.cache_data(max_entries=4, show_spinner=False)(_load_sample),
        "upload": st.cache_data(max_entries=4, show_spinner=False)(decode_upload),
        "noise": st.cache_data(max_entries=8, show_spinner=False)(add_noise),
        "denoise": st.cache_data(max_entries=16, show_spinner=False)(_denoise),
    }


# ---------------------------------------------------------------------------------------
# The page


def _sidebar_source(st, caches, max_mb: float) -> tuple[Source | None, bool]:
    """The chosen photo (None before an upload) and whether it came from the samples."""
    st.sidebar.header("1. Photo")
    choice = st.sidebar.radio("Source", ["Sample photo", "Upload"], key="source",
                              horizontal=True)
    if choice == "Sample photo":
        name = st.sidebar.selectbox("Sample", caches["samples"](), key="sample")
        return caches["sample"](name), True
    upload = st.sidebar.file_uploader(
        f"Image (PNG, JPEG, TIFF, BMP; up to {max_mb:g} MB, {MAX_PIXELS / 1e6:g} MP)",
        type=UPLOAD_TYPES, key="upload",
    )
    if upload is None:
        return None, False
    return caches["upload"](upload.name, upload.getvalue(), max_mb), False


def _sidebar_noise(st, is_sample: bool) -> str | None:
    st.sidebar.header("2. Noise")
    add = st.sidebar.checkbox(
        "Add synthetic noise (the photo becomes the clean reference)",
        value=is_sample, key="add_noise_sample" if is_sample else "add_noise_upload",
    )
    if not add:
        return None
    kind = st.sidebar.selectbox("Noise model", noise_kinds(), key="noise_kind")
    control = noise.FAMILIES[kind].control
    level = 0.0
    if control.label:
        level = st.sidebar.slider(control.label, control.lo, control.hi, control.default,
                                  key=control.key)
    else:
        st.sidebar.caption(control.caption)
    return noise_spec(kind, level)


def _own_views(workdir: str) -> int:
    """The self-ensemble views a run's or shipped model's config asks for (1 if unreadable:
    loading the model then says what is wrong)."""
    try:
        return methods.ensemble_views(checkpoints.load_config(workdir))
    except (UserError, OSError):
        return 1


def _sidebar_method(st, channels: int) -> tuple[str, float | None, int, int]:
    """(method key, sigma or None, tile, self-ensemble views); opens on the best shipped
    model for photos with `channels` channels, at the views its config asks for."""
    st.sidebar.header("3. Method")
    shipped = pretrained.names()
    families = (["Pretrained model"] if shipped else []) + ["Classical", "Training workdir"]
    family = st.sidebar.radio("Method family", families, key="family")
    if not shipped:
        st.sidebar.caption("No pretrained models are shipped with this version yet.")
    tile, ensemble, sigma = 512, 1, None
    if family == "Classical":
        names = [n for n in baselines.names() if n != "noisy"]
        name = st.sidebar.selectbox("Classical method", names,
                                    index=names.index(DEFAULT_METHOD), key="classical")
        value = st.sidebar.slider("Noise σ for the method (0 = estimate from the image)",
                                  0, 100, 0, key="method_sigma")
        sigma = value / 255.0 if value else None
        return f"classical:{name}", sigma, tile, ensemble
    if family == "Pretrained model":
        best = pretrained.DEFAULT_FOR_CHANNELS.get(channels)
        # one widget per channel count, so a grey photo opens on the grey model
        name = st.sidebar.selectbox("Pretrained model", shipped,
                                    index=shipped.index(best) if best in shipped else 0,
                                    key=f"pretrained_{channels}")
        method = f"workdir:{pretrained.find(name)}"
    else:
        path = st.sidebar.text_input("Workdir (a training run folder; DIR@latest = newest)",
                                     key="workdir").strip()
        method = f"workdir:{os.path.expanduser(path)}" if path else ""
    tile = st.sidebar.select_slider("Tile size (large photos are tiled)",
                                    [128, 256, 512, 1024], 512, key="tile")
    target = method.partition(":")[2]
    own = _own_views(target.partition("@")[0]) if target else 1
    # keyed by model, so each opens at its own setting
    ensemble = st.sidebar.select_slider(
        "Self-ensemble: rotations/mirrors averaged (better, that many times slower)",
        list(VIEWS), own, key=f"ensemble_{target}")
    return method, None, tile, ensemble


def _show_scores(st, noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray,
                 seconds: float) -> None:
    psnr_n, ssim_n = evaluate.score(np.clip(noisy, 0.0, 1.0), clean)
    psnr_d, ssim_d = evaluate.score(denoised, clean)
    cols = st.columns(5)
    cols[0].metric("PSNR noisy", f"{psnr_n:.2f} dB")
    cols[1].metric("PSNR denoised", f"{psnr_d:.2f} dB", f"{psnr_d - psnr_n:+.2f} dB")
    cols[2].metric("SSIM noisy", f"{ssim_n:.4f}")
    cols[3].metric("SSIM denoised", f"{ssim_d:.4f}", f"{ssim_d - ssim_n:+.4f}")
    cols[4].metric("Runtime", f"{seconds:.2f} s")


def _show_viewer(st, source: Source, noisy: np.ndarray, denoised: np.ndarray,
                 clean: np.ndarray | None) -> None:
    st.subheader("Zoom")
    a, b, c = st.columns(3)
    cx = a.slider("Centre x (%)", 0, 100, 50, key="zoom_x") / 100
    cy = b.slider("Centre y (%)", 0, 100, 50, key="zoom_y") / 100
    size = c.select_slider("Crop size (px)", ZOOM_SIZES, 64, key="zoom_size")
    box = crop_box(noisy.shape, cx, cy, size)
    panels = [("Noisy", noisy), ("Denoised", denoised)] + ([("Clean", clean)] if
                                                          clean is not None else [])
    for col, (label, image) in zip(st.columns(len(panels)), panels, strict=True):
        col.image(to_display(zoom(np.clip(image, 0, 1), box)), caption=f"{label} (zoom)")

    st.subheader("Side by side")
    cols = st.columns(len(panels))
    for col, (label, image) in zip(cols, panels, strict=True):
        col.image(to_display(outline(np.clip(image, 0, 1), box)), caption=label,
                  width="stretch")

    st.subheader("Before / after")
    m, p = st.columns([1, 3])
    mode = m.radio("Comparison", ["wipe", "blend"], key="compare_mode", horizontal=True)
    position = p.slider("Denoised ← → noisy" if mode == "wipe" else "Noisy → denoised",
                        0, 100, 50, key="compare_pos") / 100
    st.image(to_display(compare(noisy, denoised, position, mode)),
             caption=f"{mode}: {position:.0%}", width="stretch")


def main() -> None:
    """Renders the page (Streamlit runs this file top to bottom on every interaction)."""
    import streamlit as st

    st.set_page_config(page_title="denoise-jax", layout="wide")
    st.title("denoise-jax: denoise a photo")
    caches = _setup_caches()
    max_mb = float(st.get_option("server.maxUploadSize"))
    try:
        source, is_sample = _sidebar_source(st, caches, max_mb)
        if source is not None:
            crop = st.sidebar.select_slider(
                "Work on (a centre crop is faster on a CPU)", [0, 256, 512, 1024], 0,
                format_func=lambda n: "full image" if n == 0 else f"centre {n}×{n}",
                key="work_crop")
            source = centre_crop(source, crop)
        spec = _sidebar_noise(st, is_sample)
        channels = source.pixels.shape[-1] if source is not None else 3
        method, sigma, tile, ensemble = _sidebar_method(st, channels)
        seed = int(st.sidebar.number_input("Noise seed", 0, 2**31 - 1, 0, key="seed"))
        if source is None:
            st.info("Upload a photo in the sidebar, or pick a sample photo.")
            return
        if not method:
            st.info("Type the path of a training workdir in the sidebar.")
            return
        clean = source.pixels if spec else None
        if spec:
            noisy = caches["noise"](source.pixels, spec, seed)
            if sigma is None and method.startswith("classical:"):
                sigma = noise.parse(spec).sigma  # known when the noise has a fixed level
        else:
            noisy = source.pixels
        h, w, ch = noisy.shape
        st.caption(f"{source.name}: {w}×{h}, {'colour' if ch == 3 else 'grey'}"
                   + (", with alpha" if source.alpha is not None else "")
                   + (f"; noise {spec}" if spec else "; no noise added")
                   + f"; method {method.partition(':')[2]}")
        with st.spinner("Denoising…"):
            denoised, seconds = caches["denoise"](method, noisy, sigma, tile, ensemble)
    except UserError as e:
        st.error(str(e))
        return

    if clean is not None:
        _show_scores(st, noisy, denoised, clean, seconds)
    else:
        st.metric("Runtime", f"{seconds:.2f} s")
        st.caption("No reference: add synthetic noise to a clean photo to see PSNR/SSIM.")
    stem = os.path.splitext(os.path.basename(source.name))[0]
    st.download_button(
        "Download denoised PNG",
        encode_png(denoised, source.alpha, source.bit_depth),
        file_name=f"{stem}_denoised.png", mime="image/png", key="download",
    )
    _show_viewer(st, source, noisy, denoised, clean)


if __name__ == "__main__":
    # Streamlit runs this file as `__main__`; render from the importable module instead so
    # that cached values (e.g. `Source`) pickle under a stable class path.
    from denoise_jax import app as _app

    _app.main()
