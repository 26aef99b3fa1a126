"""The training input pipeline: grain over a `data.load` data set.

    source = training_source("skimage:train:rgb")
    it = batches(source, batch=16, patch=64, augment=True, seed=0)
    batch = next(it)          # {"clean": [16, 64, 64, 3] float32 in [0, 1]} (+ "noisy" for pairs)
    state = it.get_state()    # JSON-able; `it.set_state(state)` continues exactly there

Per epoch the images are reshuffled; each draw takes one random `patch`×`patch` crop
(reflect-padded when the image is smaller; `patch=None` keeps whole, equally sized images,
as for MNIST) and, with `augment`, one of the 8 flips/rotations. Everything is a function
of `seed` and the position in the stream, so a restored iterator yields the same batches
as an uninterrupted one. With several JAX processes each reads its own slice of the
images (`grain.sharding.ShardByJaxProcess`) and yields its share of the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from denoise_jax import data
from denoise_jax.errors import UserError

TFDS_PREFIX = "tfds:"


def training_source(spec: str, download: bool = False) -> Sequence[data.Example]:
    """The data set named by `spec`: any `data.load` spec or `tfds:NAME[:SPLIT]`.

    `tfds:` reads an already prepared TFDS data set (array_record format) and only touches
    the network when `download` is true.
    """
    if spec.startswith(TFDS_PREFIX):
        return tfds_source(spec, download)
    return data.load(spec)


def tfds_source(spec: str, download: bool = False) -> data.Dataset:
    """`tfds:NAME[:SPLIT]` (e.g. tfds:mnist:train) as a `data.Dataset` of clean images."""
    parts = spec[len(TFDS_PREFIX):].split(":")
    name, split = parts[0], parts[1] if len(parts) > 1 else "train"
    try:
        import tensorflow_datasets as tfds

        source = tfds.data_source(name, split=split, download=download, try_gcs=False)
    except Exception as e:  # tfds raises many types; the user needs one line either way
        hint = ("it is not prepared in ~/tensorflow_datasets: pass --config.data.download=True "
                "(needs the network, and TFDS may need TensorFlow to prepare it) or use the "
                "embedded mnist_5k:train") if not download else "see the TFDS message"
        raise UserError(f"cannot read {spec}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
                        f"; {hint}") from e

    def get(i: int) -> data.Example:
        image = np.asarray(source[i]["image"])
        image = image[..., None] if image.ndim == 2 else image
        return data.Example(f"{name}_{split}_{i:06d}", image.astype(np.float32) / 255.0)

    return data.Dataset(spec, f"TFDS {name} ({split})", [f"{name}_{split}_{i:06d}"
                        for i in range(len(source))], get)


def _crop_or_pad(rng: np.random.Generator, images: list[np.ndarray], patch: int) -> list:
    """The same random patch×patch window of each [H, W, C] image (reflect-padded if small)."""
    h, w = images[0].shape[:2]
    if h < patch or w < patch:
        pad = ((0, max(0, patch - h)), (0, max(0, patch - w)), (0, 0))
        images = [np.pad(x, pad, mode="reflect" if min(h, w) > 1 else "edge") for x in images]
        h, w = images[0].shape[:2]
    top = int(rng.integers(0, h - patch + 1))
    left = int(rng.integers(0, w - patch + 1))
    return [x[top:top + patch, left:left + patch] for x in images]


def _flip_rotate(rng: np.random.Generator, images: list[np.ndarray]) -> list:
    """One of the 8 dihedral transforms, the same for each image (rotations if square)."""
    k = int(rng.integers(0, 8))
    if images[0].shape[0] != images[0].shape[1]:
        k &= 1  # rot90 would change a non-square shape; keep the flip only
    out = [np.flip(x, axis=1) if k & 1 else x for x in images]
    return [np.rot90(x, k >> 1, axes=(0, 1)) for x in out]


class _Sample:
    """Example -> {"clean", optional "noisy"}: random crop + flips (a grain random map)."""

    def __init__(self, patch: int | None, augment: bool):
        self.patch, self.augment = patch, augment

    def __call__(self, example: data.Example, rng: np.random.Generator) -> dict[str, np.ndarray]:
        images = [np.asarray(example.clean, np.float32)]
        if example.noisy is not None:
            images.append(np.asarray(example.noisy, np.float32))
        if self.patch:
            images = _crop_or_pad(rng, images, self.patch)
        if self.augment:
            images = _flip_rotate(rng, images)
        out = {"clean": np.ascontiguousarray(images[0])}
        if len(images) > 1:
            out["noisy"] = np.ascontiguousarray(images[1])
        return out


def batches(
    dataset: Sequence[data.Example],
    *,
    batch: int,
    patch: int | None,
    augment: bool,
    seed: int,
    shard: tuple[int, int] | None = None,
    num_threads: int = 2,
    prefetch: int = 8,
) -> Any:
    """An endless, checkpointable iterator of training batches (see the module docstring).

    Args:
      dataset: random-access examples (`clean` [H, W, C] float32 in [0, 1]).
      batch: images per batch from this process (the global batch / process count).
      patch: crop side, or None for whole images (they must then all have one shape).
      shard: (index, count) of this process; default from `ShardByJaxProcess`.
    Returns:
      a grain iterator: `next(it)` -> {"clean": [batch, P, P, C] float32} (+ "noisy" when
      the examples are real pairs); `get_state()` / `set_state(state)`.
    """
    if len(dataset) == 0:
        raise UserError("the training data set is empty")
    if shard is None:
        options = grain.sharding.ShardByJaxProcess(drop_remainder=False)
        shard = (options.shard_index, options.shard_count)
    index, count = shard
    ds = grain.MapDataset.source(dataset)[index::count]
    if len(ds) == 0:
        raise UserError(f"{len(dataset)} training images cannot feed {count} processes")
    ds = (ds.seed(seed + index).shuffle().repeat(None)
          .random_map(_Sample(patch, augment))
          .batch(batch, drop_remainder=True))
    read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
    return iter(ds.to_iter_dataset(read))


def check_shapes(dataset: Sequence[data.Example], patch: int | None) -> tuple[int, int, int]:
    """The [H, W, C] of the training batches; a clear error if they cannot be batched."""
    shapes = {dataset[i].clean.shape for i in range(min(len(dataset), 32))}
    if len({shape[-1] for shape in shapes}) > 1:
        raise UserError("the training images mix grey and colour: pick one with a :rgb or "
                        ":gray data spec (e.g. skimage:train:rgb)")
    if patch:
        return (patch, patch, next(iter(shapes))[-1])
    if len(shapes) > 1:
        raise UserError(f"training images differ in size {sorted(shapes)[:3]}: set "
                        "--config.data.patch=N to train on random N×N crops")
    return tuple(next(iter(shapes)))
