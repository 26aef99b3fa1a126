"""The real-noise comparison's data protocol ("realnoise"): 302 SIDD + RENOIR + NIND pairs.

    train, test = realnoise_pairs(sidd_dir, renoir_dir, nind_dir)
    load("realnoise:test@sidd=DIR,renoir=DIR,nind=DIR")   # the same, via denoise_jax.data

The three manual folders are read directly with `denoise_jax.data.scan` (no tfds build);
see `realnoise_pairs` for the assumed order and split (docs/reference.md#real-noise-comparison).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from denoise_jax import images
from denoise_jax.data import Dataset, Example
from denoise_jax.data.scan import Pair, nind_rank, scan_nind, scan_renoir, scan_sidd
from denoise_jax.errors import UserError

# scikit-learn and OpenCV are imported inside the functions that use them.

REALNOISE_COUNTS = {"sidd": 160, "renoir": 80, "nind": 62}
REALNOISE_SIZE = 256


def realnoise_pairs(
    sidd_dir: str | None,
    renoir_dir: str | None,
    nind_dir: str | None,
    *,
    size: int = REALNOISE_SIZE,
    renoir_cameras: Sequence[str] | None = ("Mi3",),
    nind_cameras: Sequence[str] | None = ("XT1",),
) -> tuple[Dataset, Dataset]:
    """The real-noise comparison's 302 pairs (SIDD 160 + RENOIR 80 + NIND 62), split 241/61.

    Reads the three manual folders directly (no build needed; None skips a source).
    Assumed order (the comparison's own listing is unknown): SIDD scene pairs sorted by folder
    name (SIDD-Small gives 160), then RENOIR pairs sorted by camera/batch/noisy file, Mi3
    only (the comparison's "smartphone camera": 40 batches × 2 noisy = 80), then NIND pairs
    sorted by set and ISO, X-T1 sets only (the comparison: "Fujifilm X-T1"). Indices 0..N-1 of
    that list go through sklearn's `train_test_split(idx, test_size=0.2, random_state=42)`,
    which for N = 302 gives 241 train / 61 test, in sklearn's order. Each image is
    decoded, quantised to uint8 and resized to `size`×`size` with `cv2.resize` (bilinear)
    on access, as the comparison fed whole 256×256 uint8 images.

    Returns:
      (train, test) Datasets of Example(name, clean, noisy), [size, size, 3] float32.
    """
    from sklearn.model_selection import train_test_split

    pairs: list[Pair] = []
    found = {}
    for source, folder, scan, cameras in (
        ("sidd", sidd_dir, scan_sidd, None),
        ("renoir", renoir_dir, scan_renoir, renoir_cameras),
        ("nind", nind_dir, scan_nind, nind_cameras),
    ):
        if folder is None:
            found[source] = 0
            continue
        plan = scan(folder)
        chosen = sorted((p for split, ps in plan.items() if split != "validation" for p in ps),
                        key=_realnoise_order)
        if cameras is not None:
            wanted_cameras = {c.lower() for c in cameras}
            chosen = [p for p in chosen if p.camera.lower() in wanted_cameras]
        found[source] = len(chosen)
        pairs.extend(chosen)
    if len(pairs) < 2:
        raise UserError(f"realnoise: found {len(pairs)} pairs; the protocol needs the SIDD, "
                        "RENOIR and NIND folders (302 pairs)")
    train_idx, test_idx = train_test_split(np.arange(len(pairs)), test_size=0.2,
                                           random_state=42)
    counts = ", ".join(f"{k.upper()} {n}" for k, n in found.items())
    wanted = "/".join(str(n) for n in REALNOISE_COUNTS.values())

    def dataset(split: str, idx: np.ndarray) -> Dataset:
        chosen = [pairs[int(i)] for i in idx]
        return Dataset(
            f"realnoise:{split}",
            f"real-noise comparison protocol, {split}: {len(chosen)} of {len(pairs)} pairs "
            f"({counts}; the comparison had {wanted}), resized to {size}x{size}",
            [p.name for p in chosen],
            lambda i: _resized_example(chosen[i], size),
            files=[f for p in chosen for f in (p.noisy, p.clean)],
        )

    return dataset("train", train_idx), dataset("test", test_idx)


def _realnoise_order(pair: Pair) -> tuple:
    """SIDD and RENOIR by name (folder/camera/batch/file order), NIND by set then ISO."""
    if pair.source == "nind":
        return (pair.scene, nind_rank(pair.iso), pair.name)
    return ("", (0, 0, 0), pair.name)


def _resized_example(pair: Pair, size: int) -> Example:
    import cv2

    def read(path: str) -> np.ndarray:
        samples = images.rgb8(images.read_image(path).pixels)
        return images.from_uint(cv2.resize(samples, (size, size)))

    return Example(pair.name, read(pair.clean), read(pair.noisy))
