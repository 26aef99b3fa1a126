"""The training input pipeline: grain over a `data.load` data set.

    source = training_source("skimage:train:rgb")
    it = batches(source, batch=16, patch=64, augment=True, seed=0)
    batch = next(it)          # {"clean": [16, 64, 64, 3] float32 in [0, 1]} (+ "noisy" for pairs)
    state = it.get_state()    # JSON-able; `it.set_state(state)` continues exactly there

Real noisy/clean pairs (`pairs:PATH`, `tfds:sidd|renoir|nind|paired_folder[:SPLIT]`,
`realnoise:SPLIT@...`) yield "noisy" beside "clean", cut by the same crop and flip/rotation,
and the train step then uses them instead of drawing synthetic noise. `resolve(config)`
maps the config's `data.name` onto these specs (see experiments/base.py).

Per epoch the images are reshuffled; each draw takes one random `patch`×`patch` crop
(reflect-padded when the image is smaller; `patch=None` keeps whole, equally sized images,
as for MNIST) and, with `augment`, one of the 8 flips/rotations. Everything is a function
of `seed` and the position in the stream, so a restored iterator yields the same batches
as an uninterrupted one. With several JAX processes each reads its own slice of the
images (`grain.sharding.ShardByJaxProcess`) and yields its share of the global batch.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np
from ml_collections import ConfigDict

from denoise_jax import data
from denoise_jax.errors import UserError

TFDS_PREFIX = "tfds:"
REALNOISE_PREFIX = "realnoise:"
REALNOISE_SOURCES = data.REALNOISE_SOURCES
is_pair_spec = data.is_pair_spec


def __getattr__(name: str):
    # PAIR_SETS: the buildable tfds sets, all noisy/clean pairs (imports tensorflow_datasets,
    # so only when asked).
    if name == "PAIR_SETS":
        from denoise_jax.data import tfds_builders

        return tuple(tfds_builders.BUILDERS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def training_source(spec: str, download: bool = False,
                    resize: int | None = None) -> Sequence[data.Example]:
    """The data set named by `spec` (any `data.load` spec, `realnoise:train|test@...` included).

    Only with `download` does a `tfds:` spec of a TFDS catalog set (e.g. tfds:mnist:train)
    first let TFDS fetch and prepare it; otherwise nothing touches the network.
    `resize`: every image (both sides of a pair) resized to resize×resize on access.
    """
    if download and spec.startswith(TFDS_PREFIX):
        prepare_tfds(spec)
    dataset = data.load(spec)
    return resized(dataset, resize) if resize else dataset


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """[H, W, C] float32 -> [size, size, C], bilinear (cv2.resize, as the real-noise
    comparison); the same array if equal."""
    import cv2

    if image.shape[:2] == (size, size):
        return image
    out = cv2.resize(np.asarray(image, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(out.reshape(size, size, image.shape[-1]), 0.0, 1.0)


def resized(dataset: data.Dataset, size: int) -> data.Dataset:
    """`dataset` with every clean (and noisy) image resized to size×size when read."""
    if size < 1:
        raise UserError(f"resize must be a positive image side, not {size}")

    def get(i: int) -> data.Example:
        e = dataset[i]
        noisy = None if e.noisy is None else resize_image(e.noisy, size)
        return data.Example(e.name, resize_image(e.clean, size), noisy)

    return data.Dataset(dataset.spec, f"{dataset.description}, resized to {size}x{size}",
                        dataset.names, get, files=getattr(dataset, "files", ()))


def realnoise_spec(split: str, sidd: str | None, renoir: str | None, nind: str | None) -> str:
    """`realnoise:SPLIT@sidd=DIR,renoir=DIR,nind=DIR` (sources without a folder left out)."""
    dirs = {"sidd": sidd, "renoir": renoir, "nind": nind}
    given = ",".join(f"{k}={os.path.abspath(os.path.expanduser(v))}"
                     for k, v in dirs.items() if v)
    if not given:
        raise UserError("data.name=realnoise needs the manual folders: set --config.data.sidd_dir, "
                        "--config.data.renoir_dir and/or --config.data.nind_dir")
    return f"{REALNOISE_PREFIX}{split}@{given}"


def resolve(config: ConfigDict) -> ConfigDict:
    """A copy of `config` with `data.name` expanded into the data specs it stands for.

    data.name = a built tfds set (sidd, renoir, nind, paired_folder, or any set built
    under data.data_dir): data.train = tfds:NAME:train@DATA_DIR and eval.data = its test
    split (else validation; no split: evaluation off). data.name = realnoise: the comparison's
    241/61 split of data.sidd_dir / renoir_dir / nind_dir. data.data_dir defaults to
    $TFDS_DATA_DIR, else ~/tensorflow_datasets. Then, whatever named them: training on
    real pairs sets `noise` to "real" and evaluating on real pairs sets `eval.noise` to
    "real", so config.json records that no synthetic noise was drawn.
    """
    config = copy.deepcopy(config)
    name = (config.data.get("name") or "").strip().lower()
    if name == "realnoise":
        dirs = [config.data.get(f"{k}_dir") for k in REALNOISE_SOURCES]
        config.data.train = realnoise_spec("train", *dirs)
        config.eval.data = realnoise_spec("test", *dirs)
    elif name:
        from denoise_jax.data import tfds_builders, tfds_load

        root = config.data.get("data_dir") or tfds_builders.default_data_dir()
        root = os.path.abspath(os.path.expanduser(root))
        built = tfds_load.built_counts(name, root)
        if built is None:
            how = (f"denoise-jax data build {name} --manual-dir PATH"
                   if name in tfds_builders.BUILDERS
                   else "prepare it with tensorflow-datasets")
            raise UserError(f"data.name={name}: no build under {root!r}; run `{how}` first "
                            "(or point --config.data.data_dir / $TFDS_DATA_DIR at its folder)")
        if not built.counts.get("train"):
            raise UserError(f"data.name={name}: the build at {built.path} has no train split "
                            f"(it has {', '.join(built.counts) or 'none'})")
        held_out = next((s for s in ("test", "validation") if built.counts.get(s)), None)
        config.data.train = f"{TFDS_PREFIX}{name}:train@{root}"
        config.eval.data = f"{TFDS_PREFIX}{name}:{held_out}@{root}" if held_out else None
    if is_pair_spec(config.data.train):
        config.noise = "real"
    if is_pair_spec(config.eval.get("data")):
        config.eval.noise = "real"
    return config


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


def _permute_channels(rng: np.random.Generator, images: list[np.ndarray]) -> list:
    """The same random order of the colour channels for each image (grey stays as it is)."""
    if images[0].shape[-1] != 3:
        return images
    order = rng.permutation(3)
    return [x[..., order] for x in images]


class _Sample:
    """Example -> {"clean", optional "noisy"}: random crop + flips (a grain random map).

    A pair's noisy image goes through the very same crop window, flip/rotation and, with
    `permute_channels`, channel order (so a colour net cannot learn one palette's biases).
    """

    def __init__(self, patch: int | None, augment: bool, permute_channels: bool = False):
        self.patch, self.augment, self.permute = patch, augment, permute_channels

    def __call__(self, example: data.Example, rng: np.random.Generator) -> dict[str, np.ndarray]:
        images = [np.asarray(example.clean, np.float32)]
        if example.noisy is not None:
            images.append(np.asarray(example.noisy, np.float32))
        if self.patch:
            images = _crop_or_pad(rng, images, self.patch)
        if self.augment:
            images = _flip_rotate(rng, images)
        if self.permute:
            images = _permute_channels(rng, images)
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
    permute_channels: bool = False,
) -> Any:
    """An endless, checkpointable iterator of training batches (see the module docstring).

    Args:
      dataset: random-access examples (`clean` [H, W, C] float32 in [0, 1]).
      batch: images per batch from this process (the global batch / process count).
      patch: crop side, or None for whole images (they must then all have one shape).
      shard: (index, count) of this process; default from `ShardByJaxProcess`.
      permute_channels: also shuffle the colour channels' order per crop.
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
          .random_map(_Sample(patch, augment, permute_channels))
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
