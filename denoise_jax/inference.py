"""Tiled and self-ensembled inference for any Flax denoiser.

- `tiled(apply_fn, image, tile, overlap, batch)`: runs a model over overlapping tiles of one
  shape per image (one compilation) and blends them with a smooth window, so large photos
  fit in memory and show no seams. The tiles are the fewest of at most `tile` pixels a side
  that cover the image, shrunk to share it evenly (`tile_side`): tiles of a fixed 512
  would compute a 640×960 photo's pixels twice over.
- `Denoiser`: a model + variables behind the evaluation call shape
  `denoise(noisy [H, W, C] float32, sigma) -> [H, W, C] float32 in [0, 1]`, with tiling,
  a self-ensemble over rotations/mirrors of each batch of tiles (`denoise_jax/ensemble.py`;
  as many views as the run's config says unless told otherwise), grey/colour adaptation
  and a compute dtype. `Denoiser.from_spec` loads a training run or a shipped pretrained
  model (through `methods`).

Blending window. Along each axis a tile's weight is 0 on the outer `overlap // 4` pixels of
an edge shared with a neighbour, rises as a raised cosine over the next `overlap // 2`
pixels and is 1 elsewhere; edges on the image border are not tapered. Neighbours at the
minimal overlap then weigh each pixel sin² + cos² = 1, and a model whose receptive-field
radius is at most `overlap // 4` (e.g. a 5-conv DnCNN, radius 5, with overlap 20 or more)
gives the whole-image result up to float rounding: the pixels a tile gets wrong (near its
cut edges) carry no weight. Larger receptive fields get a smooth blend instead. Weights of
a grid of tiles factor into a row part and a column part, so normalising needs two 1-D
arrays, not a full-image weight map.

Memory. Besides the input, `tiled` allocates one float32 accumulator of the image's size
and one batch of tiles; the model only ever sees tiles, and the self-ensemble turns tiles,
not the image, so it costs no image-sized memory.

Grey/colour adaptation (logged once per `Denoiser` on stderr): a colour model given a grey
image denoises it as colour, R = G = B completed with independent channel noise, and averages
the three outputs back to grey (`methods.colour_from_grey` says why); a grey model given a
colour image denoises R, G and B as three grey images (`methods.adapt_channels`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from denoise_jax import local_means, methods
from denoise_jax.ensemble import check_views, self_ensemble
from denoise_jax.errors import UserError

ApplyFn = Callable[[Any], Any]  # [B, h, w, C] float32 -> [B, h, w, C]
Progress = Callable[[int, int], None]  # (tiles done, tiles total)

DTYPES = ("float32", "bfloat16", "float16")


# ---------------------------------------------------------------------------------------
# Tiling


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side `tile` covering [0, length), `overlap` apart at least.

    The last tile is shifted inward to end at `length`, so every tile has the same size.
    """
    if tile >= length:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


# Tile sides are rounded up to this: a U-Net pads its input to a multiple of 2**levels
# anyway, and real pixels are better context than reflected ones.
TILE_MULTIPLE = 16


def tile_side(length: int, tile: int, overlap: int) -> int:
    """The tile side along an axis of `length` pixels: the whole length if it fits in `tile`,
    else the smallest side (a multiple of `TILE_MULTIPLE`, at most `tile`) with which the
    fewest tiles of side `tile` still cover it at `overlap` (640 with tile 512 and overlap
    32: two tiles of 336, not two of 512)."""
    if length <= tile:
        return length
    count = -(-(length - overlap) // (tile - overlap))
    side = -(-(length + (count - 1) * overlap) // count)
    return min(tile, -(-side // TILE_MULTIPLE) * TILE_MULTIPLE)


def edge_ramp(tile: int, overlap: int) -> np.ndarray:
    """[tile] float32 weight of a tile edge by distance from it: 0, raised cosine, then 1.

    Index d is the distance (in pixels) from the edge; read it reversed for a right edge.
    """
    margin = overlap // 4
    width = overlap - 2 * margin
    d = np.arange(tile, dtype=np.float64)
    if width <= 0:
        return (d >= margin).astype(np.float32)
    r = np.clip((d - margin + 0.5) / width, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * r)).astype(np.float32)


def axis_windows(length: int, tile: int, overlap: int) -> tuple[list[int], list[np.ndarray]]:
    """(starts, 1-D windows [tile]) along one axis; image-border edges are not tapered."""
    starts = tile_starts(length, tile, overlap)
    ramp = edge_ramp(tile, overlap)
    windows = []
    for start in starts:
        w = np.ones(tile, np.float32)
        if start > 0:
            w *= ramp
        if start + tile < length:
            w *= ramp[::-1]
        windows.append(w)
    return starts, windows


def tiled(
    apply_fn: ApplyFn,
    image: np.ndarray,
    tile: int = 512,
    overlap: int = 32,
    batch: int = 1,
    progress: bool | Progress | None = None,
) -> np.ndarray:
    """Applies `apply_fn` to overlapping tiles of `image` and blends the results.

    Args:
      apply_fn: [B, h, w, C] float32 -> [B, h, w, C] (e.g. a jitted model apply); it sees
        only tiles of one shape, B = `batch` (the last batch is padded with zeros).
      image: [H, W, C] float32. An image no larger than `tile` on both sides runs whole.
      tile: the largest tile side in pixels (a side shorter than `tile` is taken whole;
        see `tile_side`).
      overlap: pixels shared by neighbouring tiles (0 <= overlap < tile).
      batch: tiles per `apply_fn` call.
      progress: True for a tqdm bar over tiles, or a callback (done, total) after each batch.
    Returns:
      [H, W, C] float32 (a new array).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be [H, W, C], got shape {image.shape}")
    if tile < 1 or batch < 1:
        raise UserError(f"tile and batch must be >= 1, got tile={tile}, batch={batch}")
    if not 0 <= overlap < tile:
        raise UserError(f"overlap must be in [0, tile), got overlap={overlap} with tile={tile}")
    height, width, channels = image.shape
    if height <= tile and width <= tile:
        out = np.array(apply_fn(image[None].astype(np.float32, copy=False)), np.float32)[0]
        _check_shape(out, image.shape)
        return out

    th, tw = tile_side(height, tile, overlap), tile_side(width, tile, overlap)
    ys, wys = axis_windows(height, th, overlap)
    xs, wxs = axis_windows(width, tw, overlap)
    jobs = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    out = np.zeros(image.shape, np.float32)
    buffer = np.zeros((batch, th, tw, channels), np.float32)
    report = _progress(progress, len(jobs))
    try:
        for first in range(0, len(jobs), batch):
            chunk = jobs[first : first + batch]
            for k, (i, j) in enumerate(chunk):
                buffer[k] = image[ys[i] : ys[i] + th, xs[j] : xs[j] + tw]
            buffer[len(chunk) :] = 0.0
            result = np.asarray(apply_fn(buffer), np.float32)
            _check_shape(result, buffer.shape)
            for k, (i, j) in enumerate(chunk):
                window = (wys[i][:, None] * wxs[j][None, :])[..., None]
                out[ys[i] : ys[i] + th, xs[j] : xs[j] + tw] += result[k] * window
            report(first + len(chunk))
    finally:
        report(None)
    norm_y = np.zeros(height, np.float32)
    for y, w in zip(ys, wys, strict=True):
        norm_y[y : y + th] += w
    norm_x = np.zeros(width, np.float32)
    for x, w in zip(xs, wxs, strict=True):
        norm_x[x : x + tw] += w
    # Row by row: a full [H, W] weight map would be another image-sized allocation.
    for y in range(height):
        out[y] /= (norm_y[y] * norm_x)[:, None]
    return out


def _check_shape(out: np.ndarray, shape: tuple[int, ...]) -> None:
    if out.shape != tuple(shape):
        raise ValueError(f"apply_fn returned shape {out.shape} for input shape {tuple(shape)}")


def _progress(progress: bool | Progress | None, total: int) -> Callable[[int | None], None]:
    """-> report(done) (None closes); a tqdm bar for True, the callback, or nothing."""
    if callable(progress):
        return lambda done: None if done is None else progress(done, total)
    if not progress:
        return lambda done: None
    from tqdm.auto import tqdm  # ~0.1 s, and only a progress bar needs it

    bar = tqdm(total=total, desc="tiles", unit="tile", leave=False, disable=None)

    def report(done: int | None) -> None:
        if done is None:
            bar.close()
        else:
            bar.update(done - bar.n)

    return report


# ---------------------------------------------------------------------------------------
# Denoiser: a model behind the evaluation call shape


def _with_dtype(model: Any, dtype: str) -> Any:
    if dtype not in DTYPES:
        raise UserError(f"compute dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype == "float32":
        return model
    fields = {f.name for f in dataclasses.fields(model)}
    if "dtype" not in fields:
        raise UserError(f"{type(model).__name__} has no compute dtype option; use float32")
    return model.clone(dtype=getattr(jnp, dtype))


class Denoiser:
    """A Flax model + variables as `denoise(noisy [H, W, C] float32, sigma) -> [H, W, C]`.

    The model is blind (`sigma` is ignored). Large images go through `tiled`; each batch of
    tiles is averaged over `ensemble` views (rotations/mirrors, that many times slower).
    Compiled once per tile/image shape (jax.jit's cache; the variables are an argument, not
    baked-in constants).

    Args:
      model: a Flax Linen module applied as `apply(variables, x, train=False)`.
      variables: its variables ({"params": ..., maybe "batch_stats": ...}).
      from_logits: the model returns logits (apply a sigmoid).
      tile, overlap, batch: see `tiled`.
      ensemble: views of the self-ensemble, 1 (none), 2, 4 or 8; `from_workdir` takes the
        run's config `ensemble` unless given.
      dtype: compute dtype, "float32", "bfloat16" or "float16" (parameters stay float32).
      channels: channels the weights expect (1 or 3); None = find out
        (`methods.model_channels`).
      name: shown in messages.
      progress: tqdm bar over the tiles of a large image.
      keep_means: end with `local_means.keep_local_means` on the whole (tiled) output;
        `from_workdir` takes it from the run's config.
    """

    blind = True

    def __init__(
        self,
        model: Any,
        variables: Any,
        *,
        from_logits: bool = False,
        tile: int = 512,
        overlap: int = 32,
        batch: int = 1,
        ensemble: int = 1,
        dtype: str = "float32",
        channels: int | None = None,
        name: str = "model",
        progress: bool = False,
        keep_means: bool = False,
    ) -> None:

        if tile < 1 or batch < 1 or not 0 <= overlap < tile:
            raise UserError(
                f"need tile >= 1, batch >= 1 and 0 <= overlap < tile; got tile={tile}, "
                f"overlap={overlap}, batch={batch}"
            )
        self.model = _with_dtype(model, dtype)
        self.variables = variables
        self.from_logits = from_logits
        self.tile, self.overlap, self.batch = tile, overlap, batch
        self.ensemble = check_views(ensemble)
        self.dtype = dtype
        self.name = name
        self.progress = progress
        self.keep_means = keep_means
        self.channels = (channels if channels is not None
                         else methods.model_channels(model, variables))
        self._jit = functools.partial(methods.predict, self.model, from_logits)
        self._note = methods.notes_once(name)
        self.step: int | None = None

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> Denoiser:
        """The run or shipped model `spec` ("DIR", "DIR@best|latest", "pretrained:NAME"; see
        `methods.parse_spec`); kwargs as the constructor."""
        return cls.from_workdir(*methods.parse_spec(spec), **kwargs)

    @classmethod
    def from_workdir(cls, workdir: str, which: str = "best", **kwargs: Any) -> Denoiser:
        """The run in `workdir` (or a shipped pretrained folder); kwargs as the constructor."""
        run = methods.load_run(workdir, which)
        kwargs.setdefault("name", os.path.basename(os.path.normpath(workdir)))
        kwargs.setdefault("keep_means", methods.keeps_means(run.config))
        kwargs["ensemble"] = methods.ensemble_views(run.config, kwargs.get("ensemble"))
        denoiser = cls(run.model, run.variables, from_logits=run.from_logits, **kwargs)
        denoiser.step = run.step
        return denoiser

    def as_method(self) -> methods.Method:
        """This denoiser as a `methods.Method` (blind, with its step) for `evaluate`."""
        return methods.Method(self.name, self, blind=True, step=self.step)

    def apply(self, x: Any) -> np.ndarray:
        """x: [B, h, w, C] float32 -> [B, h, w, C] float32 in [0, 1]: the model averaged over
        the self-ensemble's views, adapting C (see module)."""
        return self_ensemble(self._apply_view, np.asarray(x, np.float32), self.ensemble,
                             axes=(1, 2))

    def _apply_view(self, x: np.ndarray) -> np.ndarray:
        return methods.adapt_channels(lambda v: np.asarray(self._jit(self.variables, v)), x,
                                      self.channels, self.name, self._note)

    def denoise_array(self, image: np.ndarray) -> np.ndarray:
        """image: [H, W, C] float32 -> [H, W, C] float32 in [0, 1] (tiled, self-ensembled)."""
        return tiled(self.apply, image, self.tile, self.overlap, self.batch, self.progress)

    def __call__(self, noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """noisy: [H, W, C] float32 (C = 1 or 3); sigma is ignored (blind model)."""
        noisy = np.asarray(noisy, np.float32)
        if noisy.ndim != 3 or noisy.shape[2] not in (1, 3):
            raise ValueError(f"expected a [H, W, C] image with C in {{1, 3}}, got {noisy.shape}")
        grey_on_colour = noisy.shape[2] == 1 and self.channels == 3
        if grey_on_colour:
            self._note("grey", methods.GREY_ON_COLOUR_NOTE)
        out = self.denoise_array(methods.colour_from_grey(noisy) if grey_on_colour else noisy)
        np.clip(out, 0.0, 1.0, out=out)
        if grey_on_colour:
            out = out.mean(axis=-1, keepdims=True)
        return local_means.keep_local_means(noisy, out) if self.keep_means else out

