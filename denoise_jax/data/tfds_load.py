"""Reading built tensorflow-datasets sets without TensorFlow: the `tfds:` data specs.

    load("tfds:sidd:train")                           # via denoise_jax.data.load
    load("tfds:nind:test@/data/tfds")                 # another data folder
    built_counts("sidd")                              # what is built, or None

A spec is tfds:NAME[:SPLIT][@DATA_DIR]: SPLIT defaults to train; DATA_DIR (default
`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`) holds NAME/<version>/, the newest of which
is read, or is a version folder itself. Any array_record build reads: the ones
`denoise_jax.data.tfds_builders` writes, and other tfds sets with noisy + clean features
(pairs) or an image feature (clean images).
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow_datasets as tfds

from denoise_jax import images
from denoise_jax.data import Dataset, Example
from denoise_jax.data.tfds_builders import BUILDERS, BuildReport, default_data_dir
from denoise_jax.errors import UserError


def _version_dir(name: str, root: str) -> str:
    if os.path.isfile(os.path.join(root, "dataset_info.json")):
        return root  # DATA_DIR named the version folder itself
    folder = os.path.join(root, name)
    versions = []
    if os.path.isdir(folder):
        for entry in os.listdir(folder):
            if (re.fullmatch(r"\d+\.\d+\.\d+", entry)
                    and os.path.isfile(os.path.join(folder, entry, "dataset_info.json"))):
                versions.append(tuple(int(p) for p in entry.split(".")))
    if not versions:
        how = (f"run `denoise-jax data build {name} --manual-dir PATH` first" if name in BUILDERS
               else "prepare it with tensorflow-datasets first")
        raise UserError(f"tfds:{name}: not built under {root!r} (no {folder}/<version>/"
                        f"dataset_info.json); {how}, or name its data folder: "
                        f"tfds:{name}:SPLIT@DATA_DIR")
    return os.path.join(folder, ".".join(str(p) for p in max(versions)))


def parse_spec(rest: str) -> tuple[str, str, str]:
    """"NAME[:SPLIT][@DATA_DIR]" (the part after "tfds:") -> (name, split, data_dir)."""
    where, at, data_dir = rest.strip().partition("@")
    name, _, split = where.partition(":")
    name, split = name.strip().lower(), split.strip() or "train"
    if not re.fullmatch(r"[a-z0-9_]+", name) or ":" in split:
        raise UserError(f"bad data spec 'tfds:{rest}': expected tfds:NAME[:SPLIT][@DATA_DIR], "
                        "e.g. tfds:sidd:train or tfds:nind:test@/data/tfds")
    if at and not data_dir.strip():
        raise UserError(f"bad data spec 'tfds:{rest}': nothing after '@' (the data folder)")
    root = (os.path.abspath(os.path.expanduser(data_dir.strip())) if at
            else default_data_dir())
    return name, split, root


def load_spec(spec: str, rest: str) -> Dataset:
    """`data.load` for "tfds:" specs: a built data set's split as a `Dataset`.

    Pair data sets (features noisy + clean) give `Example(name, clean, noisy)`; data sets
    with a single `image` feature give clean-only examples. Images come back as
    [H, W, C] float32 in [0, 1], decoded with `denoise_jax.images`.
    """
    name, split, root = parse_spec(rest)
    version_dir = _version_dir(name, root)
    try:
        builder = tfds.builder_from_directory(version_dir)
    except Exception as e:  # tfds raises many types for a damaged folder
        raise UserError(f"{spec}: cannot open {version_dir!r}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
    features = builder.info.features
    keys = ("noisy", "clean") if {"noisy", "clean"} <= set(features.keys()) else ("image",)
    if keys == ("image",) and "image" not in features.keys():
        raise UserError(f"{spec}: {version_dir!r} has neither noisy+clean nor image features "
                        f"(it has {', '.join(features.keys())})")
    splits = list(builder.info.splits.keys())
    if split not in splits:
        raise UserError(f"{spec}: no split {split!r}; {name} has {', '.join(splits)}")
    try:
        source = builder.as_data_source(
            split=split, decoders={k: tfds.decode.SkipDecoding() for k in keys})
    except Exception as e:
        raise UserError(f"{spec}: cannot read split {split!r} of {version_dir!r} "
                        f"({type(e).__name__}); only array_record builds are readable without "
                        "TensorFlow") from None
    names = _stored_names(builder, split, len(source)) or [
        f"{name}_{split}_{i:06d}" for i in range(len(source))]

    def get(i: int) -> Example:
        record = source[i]

        def pixels(key: str) -> np.ndarray:
            return images.decode_image(record[key], f"{spec}[{names[i]}].{key}").pixels

        if keys == ("image",):
            return Example(names[i], pixels("image"))
        return Example(names[i], pixels("clean"), pixels("noisy"))

    kind = "noisy/clean pairs" if len(keys) == 2 else "images"
    return Dataset(spec, f"{len(names)} {kind}, {name} {split} split ({version_dir})",
                   names, get, files=_split_files(builder, split))


def _stored_names(builder, split: str, count: int) -> list[str] | None:
    metadata = getattr(builder.info, "metadata", None) or {}
    names = (metadata.get("names") or {}).get(split)
    return list(names) if names is not None and len(names) == count else None


def _split_files(builder, split: str) -> list[str]:
    try:
        return [os.fspath(p) for p in builder.info.splits[split].filepaths]
    except Exception:  # only used to protect inputs from being overwritten
        return []


def built_counts(name: str, data_dir: str | None = None) -> BuildReport | None:
    """The existing build of `name` under `data_dir`, or None."""
    root = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()
    try:
        version_dir = _version_dir(name, root)
        builder = tfds.builder_from_directory(version_dir)
    except Exception:
        return None
    counts = {split: info.num_examples for split, info in builder.info.splits.items()}
    return BuildReport(name, version_dir, counts, reused=True)
