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
    """The data set named by `spec` (any `data.load` spec, `tfds:NAME[:SPLIT][@DIR]` included).

    Only with `download` does a `tfds:` spec of a TFDS catalog set (e.g. tfds:mnist:train)
    first let TFDS fetch and prepare it; otherwise nothing touches the network.
    """
    if download and spec.startswith(TFDS_PREFIX):
        prepare_tfds(spec)
    return data.load(spec)


def prepare_tfds(spec: str) -> None:
    """Lets TFDS download and prepare `tfds:NAME[:SPLIT][@DATA_DIR]` (needs the network)."""
    where, _, data_dir = spec[len(TFDS_PREFIX):].partition("@")
    name, _, split = where.partition(":")
    try:
        import tensorflow_datasets as tfds

        # data_source prepares array_record files, which `data.load` reads without TF.
        tfds.data_source(name, split=split or "train", data_dir=data_dir or None, download=True)
    except Exception as e:  # tfds raises many types; the user needs one line either way
        text = (str(e).strip().splitlines() or [""])[0][:200]
        raise UserError(f"TFDS could not download and prepare {spec} ({type(e).__name__}: "
                        f"{text}); preparing some catalog sets needs TensorFlow, which this "
                        "project does not use: use the embedded mnist_5k:train instead") from e


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
