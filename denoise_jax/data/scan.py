"""Scanning the real-noise sets' manual folders into noisy/clean `Pair`s (no image decoded).

    plan = scan_sidd("~/SIDD_Small_sRGB_Only")   # {"train": [Pair, ...], "validation": [...]}

Each `scan_*` returns a `Plan` (split -> pairs, in the order they are stored), which
`tfds_builders` writes as a tensorflow-datasets build and `realnoise` reads directly. Besides
its noisy and clean sources (a file path, or a `MatBlock` of a SIDD .mat file) a pair holds
  name          unique, stable (the scene folder or noisy file's stem).
  camera        SIDD phone code (GP, IP, S6, N6, G4), RENOIR camera (Mi3, S90, T3i),
                NIND XT1 or C500D; "" when unknown.
  iso           the ISO as written in the file or folder name, leading zeros dropped
                ("1600", NIND "H1"); "" when the name holds none (RENOIR names hold none).
  scene         the unit kept on one side of a split: SIDD scene number ("002"), RENOIR
                "<camera>/Batch_NNN", NIND set name, paired_folder the pair's name.
  source        sidd | renoir | nind | paired_folder.

Layouts and their splits (scene-level, deterministic):
  sidd    any folder holding SIDD sRGB scene folders (searched recursively), e.g.
          SIDD_Small_sRGB_Only/Data/0052_002_S6_01600_01000_5500_N/{GT,NOISY}_SRGB_010.PNG
          or Medium's 0001_{GT,NOISY}_SRGB_01{0,1}.PNG. train = every scene pair;
          validation = ValidationNoisyBlocksSrgb.mat + ValidationGtBlocksSrgb.mat when
          present (any leading shape, real (40, 32, 256, 256, 3) uint8 -> 1280 patches named
          validation_II_JJ). MATLAB v5 files are read with scipy; v7.3 (the real files) need
          h5py. The Benchmark*.mat files (no public ground truth) are ignored.
  renoir  {Mi3,S90,T3i}_Aligned/.../Batch_NNN/ with one *Reference.<ext> (clean) and one or
          more *Noisy.<ext>; *full.bmp (the batch's second low-noise shot) is ignored. One
          example per noisy image; camera from the nearest <camera>_Aligned folder.
  nind    NIND/<set>/NIND_<set>_ISO<value>.{png,jpg}: the lowest ISO is clean and every
          higher ISO a noisy pair with it; ISOH1 < ISOH2 < ... rank above every number.
          Repeat shots at the clean ISO (ISO200-2) are not paired (they are not noisier).
  paired_folder  the `pairs:` layouts of `denoise_jax.data`; sub-folders train/, test/,
          validation/ (or val/) holding such layouts become those splits.
  renoir, nind and a single paired folder: test = the round(0.2 n) of n scenes (at least
  one when n >= 2) that come first when ordered by sha256("<builder>/<scene>"); train =
  the rest. Same scenes, same split, whatever order the files are found in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np

from denoise_jax import images
from denoise_jax.data import CLEAN_DIRS, NOISY_DIRS, _pairs_dataset
from denoise_jax.errors import UserError

# scipy and h5py (optional) are imported only to read SIDD's .mat files.

TEST_FRACTION = 0.2
_SHOWN = 5  # problems listed in an error before "and N more"

SIDD_EXAMPLE_SCENE = "0052_002_S6_01600_01000_5500_N"
SIDD_MAT_KEYS = {"noisy": "ValidationNoisyBlocksSrgb", "clean": "ValidationGtBlocksSrgb"}
_SIDD_SCENE = re.compile(
    r"^(?P<instance>\d{4})_(?P<scene>\d{3})_(?P<phone>[A-Za-z0-9]{2})_(?P<iso>\d+)_"
    r"(?P<shutter>\d+)_(?P<temperature>\d+)_(?P<brightness>[LNH])$"
)
_SIDD_FILE = re.compile(r"^(?:(?P<prefix>\d+)_)?(?P<role>GT|NOISY)_SRGB_(?P<k>\d+)\.png$", re.I)
_RENOIR_BATCH = re.compile(r"^batch_?\d+$", re.I)
_RENOIR_CAMERA = re.compile(r"^(?P<camera>.+)_aligned$", re.I)
_ISO_IN_NAME = re.compile(r"iso[-_]?(\d+)", re.I)
_NIND_FILE = re.compile(
    r"^NIND_(?P<set>.+)_ISO(?P<iso>H\d+|\d+(?:-\d+)?)\.(?:png|jpe?g|tiff?)$", re.I
)
_NIND_UNKNOWN_CAMERA = {"Pen-pile"}  # NIND's download list files it under "Other"
_SPLIT_FOLDERS = {"train": "train", "test": "test", "validation": "validation",
                  "val": "validation"}


# ---------------------------------------------------------------------------------------
# What a scan finds


@dataclasses.dataclass(frozen=True)
class MatBlock:
    """One patch of a SIDD validation .mat file: array[index] of the array under `key`."""

    path: str
    key: str
    index: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Pair:
    """One example to build: image sources (file path or .mat block) and metadata."""

    name: str
    noisy: str | MatBlock
    clean: str | MatBlock
    camera: str = ""
    iso: str = ""
    scene: str = ""
    source: str = ""


Plan = dict[str, list[Pair]]  # split -> pairs, in the order they are stored


def scene_split(scenes: Sequence[str], salt: str, test_fraction: float = TEST_FRACTION
                ) -> frozenset[str]:
    """The scenes held out for test (see the module docstring); none when fewer than 2."""
    unique = sorted(set(scenes))
    if len(unique) < 2:
        return frozenset()
    n_test = min(len(unique) - 1, max(1, round(test_fraction * len(unique))))
    ranked = sorted(unique, key=lambda s: hashlib.sha256(f"{salt}/{s}".encode()).hexdigest())
    return frozenset(ranked[:n_test])


def _split_by_scene(pairs: list[Pair], salt: str) -> Plan:
    test = scene_split([p.scene for p in pairs], salt)
    return {
        "train": [p for p in pairs if p.scene not in test],
        "test": [p for p in pairs if p.scene in test],
    }


# ---------------------------------------------------------------------------------------
# Scanning the manual folders (no image is decoded here)


def _folder(what: str, folder: str, expected: str) -> str:
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    if not os.path.isdir(folder):
        problem = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise UserError(f"{what}: {folder!r} {problem}; expected a folder holding {expected}")
    return folder


def _walk(folder: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk in sorted order (so every scan is deterministic); prune by editing dirs."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        yield dirpath, dirnames, sorted(filenames)


def _listing(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown}; and {len(items) - _SHOWN} more"


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("._") or "image"


def scan_sidd(folder: str) -> Plan:
    """SIDD sRGB scene folders (+ validation .mat blocks) under `folder`, recursively."""
    expected = (f"SIDD sRGB scene folders like {SIDD_EXAMPLE_SCENE} (GT_SRGB_010.PNG + "
                "NOISY_SRGB_010.PNG) and/or ValidationNoisyBlocksSrgb.mat + "
                "ValidationGtBlocksSrgb.mat")
    folder = _folder("sidd", folder, expected)
    scenes: dict[str, str] = {}
    mats: dict[str, str] = {}
    mat_names = {f"{key.lower()}.mat": role for role, key in SIDD_MAT_KEYS.items()}
    duplicates = []
    for dirpath, dirnames, filenames in _walk(folder):
        base = os.path.basename(dirpath)
        if _SIDD_SCENE.match(base):
            if base in scenes:
                duplicates.append(f"{scenes[base]!r} and {dirpath!r}")
            scenes.setdefault(base, dirpath)
            dirnames[:] = []
        for name in filenames:
            role = mat_names.get(name.lower())
            if role is not None:
                if role in mats:
                    duplicates.append(f"{mats[role]!r} and {os.path.join(dirpath, name)!r}")
                mats.setdefault(role, os.path.join(dirpath, name))
    if duplicates:
        raise UserError(f"sidd: found twice under {folder!r}: {_listing(duplicates)}; "
                        "keep one copy (e.g. SIDD-Small or SIDD-Medium, not both)")
    if not scenes and not mats:
        raise UserError(
            f"sidd: no scene folders like {SIDD_EXAMPLE_SCENE} under {folder!r}; download "
            "SIDD-Small (or Medium) sRGB and pass the folder you extracted it to"
        )
    plan: Plan = {}
    if scenes:
        plan["train"] = _sidd_scene_pairs(scenes)
    if mats:
        plan["validation"] = _sidd_mat_pairs(mats)
    return plan


def _sidd_scene_pairs(scenes: dict[str, str]) -> list[Pair]:
    pairs, problems = [], []
    for base in sorted(scenes):
        path = scenes[base]
        fields = _SIDD_SCENE.match(base)
        found: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        for name in sorted(os.listdir(path)):
            m = _SIDD_FILE.match(name)
            if m is not None:
                found[(m["prefix"] or "", m["k"])][m["role"].upper()] = os.path.join(path, name)
        if not found:
            problems.append(f"{path!r} holds no GT_SRGB_*.PNG / NOISY_SRGB_*.PNG (raw-only "
                            "SIDD folders are not supported: download the sRGB version)")
            continue
        for (_, k), roles in sorted(found.items()):
            if set(roles) != {"GT", "NOISY"}:
                have = next(iter(roles.values()))
                missing = "GT" if "GT" not in roles else "NOISY"
                problems.append(f"{have!r} has no {missing}_SRGB_{k} partner")
                continue
            pairs.append(Pair(
                name=f"{base}_{k}", noisy=roles["NOISY"], clean=roles["GT"],
                camera=fields["phone"].upper(), iso=str(int(fields["iso"])),
                scene=fields["scene"], source="sidd",
            ))
    if problems:
        raise UserError(f"sidd: incomplete scene folders: {_listing(problems)}")
    return pairs


def _sidd_mat_pairs(mats: dict[str, str]) -> list[Pair]:
    for role, key in SIDD_MAT_KEYS.items():
        if role not in mats:
            other = next(iter(mats.values()))
            raise UserError(f"sidd: found {other!r} but not {key}.mat beside it; the "
                            "validation split needs both ValidationNoisyBlocksSrgb.mat and "
                            "ValidationGtBlocksSrgb.mat")
    shapes = {role: _mat_shape(mats[role], SIDD_MAT_KEYS[role]) for role in SIDD_MAT_KEYS}
    if shapes["noisy"] != shapes["clean"]:
        raise UserError(f"sidd: the validation blocks differ in shape: {mats['noisy']!r} holds "
                        f"{shapes['noisy']} but {mats['clean']!r} holds {shapes['clean']}")
    shape = shapes["noisy"]
    if len(shape) < 4 or shape[-1] != 3:
        raise UserError(f"sidd: {mats['noisy']!r} holds blocks of shape {shape}; expected "
                        "(..., H, W, 3), e.g. (40, 32, 256, 256, 3)")
    pairs = []
    for index in np.ndindex(*shape[:-3]):
        tag = "_".join(f"{i:02d}" for i in index)
        pairs.append(Pair(
            name=f"validation_{tag}",
            noisy=MatBlock(mats["noisy"], SIDD_MAT_KEYS["noisy"], index),
            clean=MatBlock(mats["clean"], SIDD_MAT_KEYS["clean"], index),
            source="sidd",
        ))
    return pairs


def _mat_shape(path: str, key: str) -> tuple[int, ...]:
    import scipy.io

    try:
        found = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        h5py = _h5py(path)
        with h5py.File(path, "r") as f:
            found = {name: tuple(reversed(f[name].shape)) for name in f.keys()
                     if isinstance(f[name], h5py.Dataset)}
    except Exception as e:
        raise UserError(f"sidd: cannot read {path!r}: {type(e).__name__}: {e}") from None
    if key not in found:
        raise UserError(f"sidd: {path!r} has no variable {key!r} (it holds "
                        f"{', '.join(sorted(found)) or 'nothing'})")
    return tuple(int(n) for n in found[key])


def _h5py(path: str):
    try:
        import h5py
    except ImportError:
        raise UserError(f"sidd: {path!r} is a MATLAB v7.3 (HDF5) file, which needs h5py: "
                        "`pip install h5py`, or re-save it as v7 (-v7) in MATLAB") from None
    return h5py




def load_mat(path: str, key: str) -> np.ndarray:
    """The whole array `key` of a v5 or v7.3 .mat file, in MATLAB's index order."""
    import scipy.io

    try:
        array = scipy.io.loadmat(path, variable_names=[key])[key]
    except NotImplementedError:
        with _h5py(path).File(path, "r") as f:
            # v7.3 stores column-major: HDF5 sees the axes reversed.
            array = np.asarray(f[key]).transpose()
    if array.dtype != np.uint8:
        raise UserError(f"sidd: {path!r} {key} holds {array.dtype} samples; expected uint8")
    return array


def scan_renoir(folder: str) -> Plan:
    """RENOIR Batch_NNN folders under `folder` (recursively), split by batch."""
    expected = ("RENOIR folders {Mi3,S90,T3i}_Aligned/Batch_NNN/ with *Reference.bmp and "
                "*Noisy.bmp")
    folder = _folder("renoir", folder, expected)
    pairs, problems, seen = [], [], {}
    for dirpath, dirnames, filenames in _walk(folder):
        batch = os.path.basename(dirpath)
        if not _RENOIR_BATCH.match(batch):
            continue
        dirnames[:] = []
        camera = _renoir_camera(dirpath)
        if camera is None:
            problems.append(f"{dirpath!r} is not inside a <camera>_Aligned folder")
            continue
        scene = f"{camera}/{batch}"
        if scene in seen:
            problems.append(f"{scene} is both {seen[scene]!r} and {dirpath!r}")
            continue
        seen[scene] = dirpath

        def ending(suffix: str, files=filenames) -> list[str]:
            return [f for f in files if images.is_image_path(f)
                    and os.path.splitext(f)[0].lower().endswith(suffix)]

        references, noisy = ending("reference"), ending("noisy")
        if len(references) != 1 or not noisy:
            why = (f"{len(references)} *Reference files" if len(references) != 1
                   else "no *Noisy file")
            problems.append(f"{dirpath!r} has {why}")
            continue
        clean = os.path.join(dirpath, references[0])
        for name in noisy:
            iso = _ISO_IN_NAME.search(os.path.splitext(name)[0])
            pairs.append(Pair(
                name=_safe(f"{camera}_{batch}_{os.path.splitext(name)[0]}"),
                noisy=os.path.join(dirpath, name), clean=clean, camera=camera,
                iso=str(int(iso[1])) if iso else "", scene=scene, source="renoir",
            ))
    if problems:
        raise UserError(f"renoir: incomplete batch folders under {folder!r}: "
                        f"{_listing(problems)}; expected {expected}")
    if not pairs:
        raise UserError(f"renoir: no Batch_NNN folders under {folder!r}; expected {expected} "
                        "(download the aligned RENOIR sets and pass the folder holding them)")
    return _split_by_scene(pairs, "renoir")


def _renoir_camera(batch_dir: str) -> str | None:
    for part in reversed(os.path.abspath(batch_dir).split(os.sep)[:-1]):
        m = _RENOIR_CAMERA.match(part)
        if m is not None:
            return m["camera"]
    return None


def nind_rank(iso: str) -> tuple[int, int, int]:
    """Sort key of a NIND ISO label: "200" < "200-2" < "6400" < "H1" < "H2"."""
    if iso[:1].upper() == "H":
        return (1, int(iso[1:]), 0)
    value, _, repeat = iso.partition("-")
    return (0, int(value), int(repeat or 1))


def nind_camera(set_name: str) -> str:
    """C500D for NIND's "-C500D" sets, "" for Pen-pile (camera unknown), else XT1."""
    if set_name.upper().endswith("-C500D"):
        return "C500D"
    return "" if set_name in _NIND_UNKNOWN_CAMERA else "XT1"


def scan_nind(folder: str) -> Plan:
    """NIND sets under `folder` (recursively): lowest ISO clean, each higher ISO noisy."""
    expected = "NIND/<set>/NIND_<set>_ISO<value>.png|jpg files (e.g. NIND_droid_ISO200.jpg)"
    folder = _folder("nind", folder, expected)
    sets: dict[str, dict[str, str]] = defaultdict(dict)
    problems = []
    for dirpath, _, filenames in _walk(folder):
        for name in filenames:
            m = _NIND_FILE.match(name)
            if m is None:
                continue
            shots, iso = sets[m["set"]], m["iso"].upper()
            if iso in shots:
                problems.append(f"{shots[iso]!r} and {os.path.join(dirpath, name)!r} are both "
                                f"ISO{iso} of {m['set']}; keep one")
            shots.setdefault(iso, os.path.join(dirpath, name))
    pairs = []
    for set_name in sorted(sets):
        shots = sets[set_name]
        ranked = sorted(shots, key=nind_rank)
        clean = ranked[0]
        noisy = [iso for iso in ranked if nind_rank(iso)[:2] > nind_rank(clean)[:2]]
        if not noisy:
            problems.append(f"set {set_name!r} has no image above ISO{clean} "
                            f"({os.path.dirname(shots[clean])!r})")
        for iso in noisy:
            pairs.append(Pair(
                name=_safe(f"NIND_{set_name}_ISO{iso}"), noisy=shots[iso], clean=shots[clean],
                camera=nind_camera(set_name), iso=iso.partition("-")[0], scene=set_name,
                source="nind",
            ))
    if problems:
        raise UserError(f"nind: {_listing(problems)}; every set needs its lowest-ISO image "
                        "and at least one higher ISO")
    if not pairs:
        raise UserError(f"nind: no files like NIND_<set>_ISO<value>.png under {folder!r}; "
                        f"expected {expected}")
    return _split_by_scene(pairs, "nind")


def scan_paired_folder(folder: str) -> Plan:
    """The user's own pairs in the `pairs:` layouts (optionally per split sub-folder)."""
    expected = (f"sub-folders {'|'.join(NOISY_DIRS)} and {'|'.join(CLEAN_DIRS)} or "
                "<stem>_noisy.<ext> + <stem>_clean.<ext> files, optionally inside train/, "
                "test/, validation/ sub-folders")
    folder = _folder("paired_folder", folder, expected)
    subdirs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    split_dirs = {_SPLIT_FOLDERS[d.lower()]: d for d in subdirs if d.lower() in _SPLIT_FOLDERS}
    has_pair_dirs = any(d.lower() in NOISY_DIRS + CLEAN_DIRS for d in subdirs)

    def pairs_in(path: str) -> list[Pair]:
        ds = _pairs_dataset(f"paired_folder:{path}", path)
        noisy, clean = ds.files[0::2], ds.files[1::2]
        return [Pair(name=n, noisy=a, clean=b, scene=n, source="paired_folder")
                for n, a, b in zip(ds.names, noisy, clean, strict=True)]

    if split_dirs and not has_pair_dirs:
        return {split: pairs_in(os.path.join(folder, d)) for split, d in split_dirs.items()}
    return _split_by_scene(pairs_in(folder), "paired_folder")
