"""Tiny stand-ins for the real noisy/clean sets, with their real file and folder names.

    make_sidd(tmp)       # SIDD_Small_sRGB_Only/Data/<scene>/{GT,NOISY}_SRGB_010.PNG + .mat
    make_renoir(tmp)     # {Mi3,S90,T3i}_Aligned/Batch_NNN/IMG_*{Reference,Noisy,full}.bmp
    make_nind(tmp)       # NIND/<set>/NIND_<set>_ISO<value>.png
    make_pairs(tmp, 5)   # noisy/ + clean/ (or <stem>_noisy/_clean files)

Each returns the folder to pass as `--manual-dir`. Clean images are crops of the
scikit-image photos (astronaut, coffee, chelsea, rocket; a different crop per scene);
noisy ones add seeded Gaussian noise (σ in 8-bit units, ≈ 22 dB PSNR at σ = 20), so a
right pair scores far higher PSNR than a wrong one. Images are `size` = (32, 48) by
default. The SIDD validation .mat files hold the real keys with a scaled-down
(images, blocks, 16, 16, 3) uint8 layout instead of (40, 32, 256, 256, 3); MATLAB v5
via scipy, or v7.3 (HDF5 behind MATLAB's 512-byte header) when h5py is installed.
RENOIR's IMG_NNNN prefixes are illustrative; only the *Reference/*Noisy/*full endings
and the folder names matter to the builder.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image as PILImage

from denoise_jax.data.scan import nind_rank

# scikit-image, scipy and h5py (optional) are imported only by the fixtures that need them.

SIDD_SCENES = (
    "0001_001_S6_00100_00060_3200_L",
    "0052_002_S6_01600_01000_5500_N",
    "0087_004_GP_00800_00350_5500_N",
    "0145_007_IP_03200_00200_3200_L",
    "0187_008_G4_00400_00160_5500_H",
)
RENOIR_CAMERAS = ("Mi3", "S90", "T3i")
NIND_SETS: dict[str, tuple[str, ...]] = {
    "droid": ("200", "800", "3200", "6400"),
    "MuseeL-Bobo-C500D": ("100", "200", "H1"),
    "whistle": ("200", "200-2", "6400", "H1", "H2"),
    "gnome": ("200", "1600"),
}
DEFAULT_SIZE = (32, 48)
_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@functools.cache
def _photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def clean_image(index: int, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
    """A distinct real photo crop per index: [H, W, 3] uint8."""
    photo = _photo(_PHOTOS[index % len(_PHOTOS)])
    h, w = size
    step = index // len(_PHOTOS)
    top = (40 + 37 * step) % (photo.shape[0] - h)
    left = (60 + 53 * step) % (photo.shape[1] - w)
    return np.ascontiguousarray(photo[top : top + h, left : left + w, :3])


def add_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """clean [H, W, C] uint8 + N(0, sigma²) (8-bit units), rounded and clipped: uint8."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def _save(path: str, pixels: np.ndarray) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def make_sidd(
    root: str,
    scenes: Sequence[str] = SIDD_SCENES,
    medium: bool = False,
    with_mat: bool = True,
    mat_shape: tuple[int, int, int] = (2, 3, 16),
    mat_version: str = "5",
    size: tuple[int, int] = DEFAULT_SIZE,
    sigma: float = 20.0,
) -> str:
    """SIDD-Small (or Medium, two pairs _010/_011 per scene) sRGB plus validation .mat files.

    Small: root/SIDD_Small_sRGB_Only/Data/<scene>/{GT,NOISY}_SRGB_010.PNG; Medium:
    root/SIDD_Medium_Srgb/Data/<scene>/<instance>_{GT,NOISY}_SRGB_01{0,1}.PNG.
    `mat_shape` = (images, blocks per image, block side): root/ValidationNoisyBlocksSrgb.mat
    and root/ValidationGtBlocksSrgb.mat hold (images, blocks, side, side, 3) uint8.
    Returns root.
    """
    top = "SIDD_Medium_Srgb" if medium else "SIDD_Small_sRGB_Only"
    for i, scene in enumerate(scenes):
        folder = os.path.join(root, top, "Data", scene)
        for k in ("010", "011") if medium else ("010",):
            prefix = f"{scene[:4]}_" if medium else ""
            clean = clean_image(i * 2 + (k == "011"), size)
            _save(os.path.join(folder, f"{prefix}GT_SRGB_{k}.PNG"), clean)
            _save(os.path.join(folder, f"{prefix}NOISY_SRGB_{k}.PNG"),
                  add_noise(clean, sigma, seed=1000 + i * 2 + (k == "011")))
    if with_mat:
        n_images, n_blocks, side = mat_shape
        gt = np.stack([
            np.stack([clean_image(100 + i * n_blocks + j, (side, side)) for j in range(n_blocks)])
            for i in range(n_images)
        ])
        noisy = add_noise(gt, sigma, seed=7)
        _savemat(os.path.join(root, "ValidationGtBlocksSrgb.mat"), "ValidationGtBlocksSrgb",
                 gt, mat_version)
        _savemat(os.path.join(root, "ValidationNoisyBlocksSrgb.mat"),
                 "ValidationNoisyBlocksSrgb", noisy, mat_version)
    return root


def _savemat(path: str, key: str, array: np.ndarray, version: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if version == "5":
        import scipy.io

        scipy.io.savemat(path, {key: array})
        return
    if version != "7.3":
        raise ValueError(f"mat_version must be '5' or '7.3', not {version!r}")
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        # MATLAB writes column-major, so HDF5 sees the axes reversed.
        dataset = f.create_dataset(key, data=array.transpose())
        dataset.attrs["MATLAB_class"] = np.bytes_("uint8")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: denoise_jax fixtures"
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(512, b"\x00"))


def make_renoir(
    root: str,
    cameras: Sequence[str] = RENOIR_CAMERAS,
    batches: int = 3,
    noisy_per_batch: Sequence[int] = (2, 1),
    with_full: bool = True,
    size: tuple[int, int] = DEFAULT_SIZE,
    sigma: float = 20.0,
) -> str:
    """root/<camera>_Aligned/Batch_NNN/IMG_<n>{Reference,Noisy,full}.bmp.

    Batch b gets noisy_per_batch[b % len(noisy_per_batch)] noisy images; *full.bmp is a
    second, slightly noisy reference. Returns root.
    """
    index = 0
    for camera in cameras:
        for b in range(1, batches + 1):
            folder = os.path.join(root, f"{camera}_Aligned", f"Batch_{b:03d}")
            clean = clean_image(index, size)
            shot = 4000 + 10 * index
            _save(os.path.join(folder, f"IMG_{shot}Reference.bmp"), clean)
            for k in range(noisy_per_batch[(b - 1) % len(noisy_per_batch)]):
                _save(os.path.join(folder, f"IMG_{shot + 1 + k}Noisy.bmp"),
                      add_noise(clean, sigma * (1 + k), seed=2000 + 10 * index + k))
            if with_full:
                _save(os.path.join(folder, f"IMG_{shot + 9}full.bmp"),
                      add_noise(clean, 2.0, seed=3000 + index))
            index += 1
    return root


def make_nind(
    root: str,
    sets: Mapping[str, Sequence[str]] = NIND_SETS,
    ext: str = "png",
    size: tuple[int, int] = DEFAULT_SIZE,
    sigma_per_rank: float = 6.0,
) -> str:
    """root/NIND/<set>/NIND_<set>_ISO<value>.<ext>; returns root/NIND.

    The first (lowest) ISO of each set is the clean crop itself; the k-th higher one adds
    noise of σ = sigma_per_rank × k, so noise grows with ISO (ISOH* noisiest). Files are
    written in reverse order, so nothing may depend on the order they are found in.
    """
    for s, (set_name, isos) in enumerate(sets.items()):
        clean = clean_image(200 + s, size)
        ranked = sorted(isos, key=nind_rank)
        for iso in reversed(ranked):
            k = ranked.index(iso)
            pixels = clean if k == 0 else add_noise(clean, sigma_per_rank * k, 4000 + 10 * s + k)
            _save(os.path.join(root, "NIND", set_name, f"NIND_{set_name}_ISO{iso}.{ext}"), pixels)
    return os.path.join(root, "NIND")


def make_pairs(
    root: str,
    n: int,
    layout: str = "subfolders",
    size: tuple[int, int] = DEFAULT_SIZE,
    sigma: float = 20.0,
) -> str:
    """n pairs in a `pairs:` layout; returns root.

    layout "subfolders": root/noisy/pair_NN.png + root/clean/pair_NN.png;
    "suffix": root/pair_NN_noisy.png + root/pair_NN_clean.png.
    """
    if layout not in ("subfolders", "suffix"):
        raise ValueError(f"layout must be 'subfolders' or 'suffix', not {layout!r}")
    for i in range(n):
        clean = clean_image(300 + i, size)
        noisy = add_noise(clean, sigma, seed=5000 + i)
        if layout == "subfolders":
            _save(os.path.join(root, "clean", f"pair_{i:02d}.png"), clean)
            _save(os.path.join(root, "noisy", f"pair_{i:02d}.png"), noisy)
        else:
            _save(os.path.join(root, f"pair_{i:02d}_clean.png"), clean)
            _save(os.path.join(root, f"pair_{i:02d}_noisy.png"), noisy)
    return root
