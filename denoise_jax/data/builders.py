"""tensorflow-datasets builders for real noisy/clean pairs, built and read without TensorFlow.

    build("sidd", "~/SIDD_Small_sRGB_Only")          # -> ~/tensorflow_datasets/sidd/1.0.0
    load("tfds:sidd:train")                           # via denoise_jax.data.load
    load("tfds:nind:test@/data/tfds")                 # another data folder
    train, test = seed001_pairs(sidd_dir, renoir_dir, nind_dir)

None of the sets can be downloaded here: each builder reads a folder the user downloaded
(tfds "manual_dir") and writes array_record shards under `<data_dir>/<name>/1.0.0/`, where
`data_dir` is `--data-dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.

Every example holds
  noisy, clean  tfds.features.Image(shape=(None, None, 3), dtype=uint8), no encoding_format:
                the bytes of an 8-bit RGB PNG or JPEG. Files that already are one (SIDD PNGs,
                NIND JPEGs and 8-bit PNGs) are stored byte for byte; everything else (RENOIR
                BMPs, 16-bit NIND PNGs, grey/RGBA/TIFF user files, the SIDD .mat blocks) is
                decoded with `denoise_jax.images` and stored as an 8-bit RGB PNG (16 bits are
                rounded to 8, grey is repeated to 3 channels, alpha is dropped). So plain
                tfds readers get uint8 [H, W, 3] arrays; `load("tfds:...")` decodes the same
                bytes with `denoise_jax.images` to float32 in [0, 1].
  name          unique, stable (the scene folder or noisy file's stem).
  camera        SIDD phone code (GP, IP, S6, N6, G4), RENOIR camera (Mi3, S90, T3i),
                NIND XT1 or C500D; "" when unknown.
  iso           the ISO as written in the file or folder name, leading zeros dropped
                ("1600", NIND "H1"); "" when the name holds none (RENOIR names hold none).
  scene         the unit kept on one side of a split: SIDD scene number ("002"), RENOIR
                "<camera>/Batch_NNN", NIND set name, paired_folder the pair's name.
  source        sidd | renoir | nind | paired_folder.
Each noisy and clean pair is checked at build time: both files must decode and have the
same height and width.

Builders and their splits (scene-level, deterministic):
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

Verified without TensorFlow (tfds 4.9.10): GeneratorBasedBuilder + array_record; Image
features fed bytes or paths (stored verbatim, no format check; numpy input would need TF),
Text, Scalar; MetadataDict (per-split names, so `load` never reads every record for them);
`builder_from_directory(...).as_data_source(split, decoders={...: SkipDecoding()})` hands
back the stored bytes; `tfds.data_source(name, data_dir=..., download=False)` finds them
too. `tfds.list_builders()` fails without TF (its community index needs TF). The builder
classes are left out of the tfds registry (no name clashes on re-import) and override
`code_path`: for a builder inside a package, tfds 4.9.10 probes `importlib_resources`,
which is not installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from denoise_jax import images
from denoise_jax.data import Dataset, Example
from denoise_jax.errors import UserError

BUILD_VERSION = "1.0.0"
TEST_FRACTION = 0.2
DATA_DIR_ENV = "TFDS_DATA_DIR"
_SHOWN = 5  # problems listed in an error before "and N more"

SIDD_EXAMPLE_SCENE = "0052_002_S6_01600_01000_5500_N"
SIDD_PHONES = {
    "GP": "Google Pixel", "IP": "iPhone 7", "S6": "Samsung Galaxy S6 Edge",
    "N6": "Motorola Nexus 6", "G4": "LG G4",
}
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
# What a build holds


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


def default_data_dir() -> str:
    """`$TFDS_DATA_DIR`, else `~/tensorflow_datasets` (absolute)."""
    folder = os.environ.get(DATA_DIR_ENV) or os.path.join("~", "tensorflow_datasets")
    return os.path.abspath(os.path.expanduser(folder))


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


def _load_mat(path: str, key: str) -> np.ndarray:
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
    from denoise_jax.data import CLEAN_DIRS, NOISY_DIRS, _pairs_dataset

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


# ---------------------------------------------------------------------------------------
# Image bytes in and out


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION = 0x0112


def _png_bytes(samples: np.ndarray) -> bytes:
    """[H, W, 3] uint8 -> PNG file bytes."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    # Level 1: the sources re-encoded here are large BMPs; speed over a few % of size.
    PILImage.fromarray(np.ascontiguousarray(samples), mode="RGB").save(
        buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _rgb8(pixels: np.ndarray) -> np.ndarray:
    """[H, W, 1|3] float in [0, 1] -> [H, W, 3] uint8."""
    samples = images.to_uint(pixels, 8)
    return np.repeat(samples, 3, axis=-1) if samples.shape[-1] == 1 else samples


def _stored_as_is(data: bytes) -> bool:
    """True for 8-bit RGB PNG or JPEG files without an EXIF rotation (stored verbatim)."""
    from PIL import Image as PILImage

    if data[:8] == _PNG_SIGNATURE and (len(data) < 26 or data[24] != 8 or data[25] != 2):
        return False
    try:
        with PILImage.open(io.BytesIO(data)) as im:
            return (im.format in ("PNG", "JPEG") and im.mode == "RGB"
                    and im.getexif().get(_ORIENTATION) in (None, 1))
    except Exception:
        return False  # read_image has already reported real damage


def encode_file(path: str) -> tuple[bytes, tuple[int, int]]:
    """An image file -> (bytes to store, (H, W)); decoding problems are `UserError`s."""
    pixels = images.read_image(path).pixels
    with open(path, "rb") as f:
        data = f.read()
    if not _stored_as_is(data):
        data = _png_bytes(_rgb8(pixels))
    return data, pixels.shape[:2]


def decode_image(data: bytes, label: str) -> np.ndarray:
    """Stored image bytes -> [H, W, C] float32 in [0, 1], exactly as `images.read_image`."""
    return images.decode_image(data, label).pixels


class _Encoder:
    """Pair -> stored bytes, reusing the last clean image (many noisy share one clean)."""

    def __init__(self):
        self._mats: dict[tuple[str, str], np.ndarray] = {}
        self._last: tuple[object, tuple[bytes, tuple[int, int]]] | None = None

    def _encode(self, source: str | MatBlock) -> tuple[bytes, tuple[int, int]]:
        if isinstance(source, MatBlock):
            key = (source.path, source.key)
            if key not in self._mats:
                self._mats[key] = _load_mat(source.path, source.key)
            block = self._mats[key][source.index]
            return _png_bytes(block), block.shape[:2]
        return encode_file(source)

    def pair(self, pair: Pair) -> tuple[bytes, bytes]:
        if self._last is None or self._last[0] != pair.clean:
            self._last = (pair.clean, self._encode(pair.clean))
        clean, clean_shape = self._last[1]
        noisy, noisy_shape = self._encode(pair.noisy)
        if noisy_shape != clean_shape:
            raise UserError(
                f"{pair.source}: pair {pair.name!r} differs in size: noisy {pair.noisy!r} is "
                f"{noisy_shape[0]}×{noisy_shape[1]} but clean {pair.clean!r} is "
                f"{clean_shape[0]}×{clean_shape[1]}"
            )
        return noisy, clean


# ---------------------------------------------------------------------------------------
# Builders


def _features() -> tfds.features.FeaturesDict:
    image = dict(shape=(None, None, 3), dtype=np.uint8)
    return tfds.features.FeaturesDict({
        "noisy": tfds.features.Image(**image, doc="noisy image: 8-bit RGB PNG or JPEG bytes"),
        "clean": tfds.features.Image(**image, doc="clean image: 8-bit RGB PNG or JPEG bytes"),
        "name": tfds.features.Text(doc="unique, stable example name"),
        "camera": tfds.features.Text(doc="camera code, '' if unknown"),
        "iso": tfds.features.Text(doc="ISO as written in the file name, '' if unknown"),
        "scene": tfds.features.Text(doc="scene kept on one side of a split"),
        "source": tfds.features.Text(doc="sidd | renoir | nind | paired_folder"),
    })


class _PairBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes a scanned `Plan` (split -> pairs) as array_record; see the module docstring."""

    VERSION = tfds.core.Version(BUILD_VERSION)
    RELEASE_NOTES = {BUILD_VERSION: "First release."}
    DESCRIPTION = ""
    LAYOUT = ""  # the manual folder, in one line
    HOMEPAGE = ""
    CITATION = ""
    scan: Callable[[str], Plan]

    def __init__(self, *, plan: Plan | None = None, **kwargs):
        self._plan = {split: pairs for split, pairs in (plan or {}).items() if pairs}
        super().__init__(**kwargs)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        # For a builder inside a package tfds probes `importlib_resources`, which is not
        # installed (Python 3.11); it only looks for a checksums file, which we have none of.
        return None

    def _info(self) -> tfds.core.DatasetInfo:
        names = {split: [p.name for p in pairs] for split, pairs in self._plan.items()}
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=_features(),
            supervised_keys=("noisy", "clean"),
            homepage=self.HOMEPAGE,
            citation=self.CITATION,
            disable_shuffling=True,  # keeps the scan order, which the stored names follow
            metadata=tfds.core.MetadataDict(names=names),
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(pairs) for split, pairs in self._plan.items()}

    def _generate_examples(self, pairs: list[Pair]):
        encoder = _Encoder()
        for i, pair in enumerate(pairs):
            noisy, clean = encoder.pair(pair)
            yield f"{i:07d}", {
                "noisy": noisy, "clean": clean, "name": pair.name, "camera": pair.camera,
                "iso": pair.iso, "scene": pair.scene, "source": pair.source,
            }


class Sidd(_PairBuilder, skip_registration=True):
    name = "sidd"
    DESCRIPTION = "Smartphone Image Denoising Dataset, sRGB: scene pairs + validation blocks."
    LAYOUT = (f"SIDD sRGB scene folders like {SIDD_EXAMPLE_SCENE}/ (GT_SRGB_010.PNG, "
              "NOISY_SRGB_010.PNG; Medium: 0001_GT_SRGB_010.PNG ...), searched recursively, "
              "plus optionally ValidationNoisyBlocksSrgb.mat + ValidationGtBlocksSrgb.mat")
    HOMEPAGE = "https://www.eecs.yorku.ca/~kamel/sidd/"
    CITATION = ("Abdelhamed, Lin, Brown. A High-Quality Denoising Dataset for Smartphone "
                "Cameras. CVPR 2018.")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"SIDD-Small or SIDD-Medium sRGB from {HOMEPAGE}."
    scan = staticmethod(scan_sidd)


class Renoir(_PairBuilder, skip_registration=True):
    name = "renoir"
    DESCRIPTION = "RENOIR: real low-light noise, Xiaomi Mi3, Canon S90, Canon T3i (aligned)."
    LAYOUT = ("{Mi3,S90,T3i}_Aligned/Batch_NNN/ folders with *Reference.bmp and one or more "
              "*Noisy.bmp (*full.bmp ignored)")
    HOMEPAGE = "https://ani.stat.fsu.edu/~abarbu/Renoir.html"
    CITATION = ("Anaya, Barbu. RENOIR - A Dataset for Real Low-Light Image Noise Reduction. "
                "JVCIR 2018.")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"The aligned Mi3, S90 and T3i sets from {HOMEPAGE}."
    scan = staticmethod(scan_renoir)


class Nind(_PairBuilder, skip_registration=True):
    name = "nind"
    DESCRIPTION = "Natural Image Noise Dataset: ISO series, lowest ISO as ground truth."
    LAYOUT = "NIND/<set>/NIND_<set>_ISO<value>.png|jpg files (ISO200 ... ISO6400, ISOH1 ...)"
    HOMEPAGE = "https://commons.wikimedia.org/wiki/Natural_Image_Noise_Dataset"
    CITATION = "Brummer, De Vleeschouwer. Natural Image Noise Dataset. CVPR Workshops 2019."
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"The NIND sets from {HOMEPAGE} (its download script)."
    scan = staticmethod(scan_nind)


class PairedFolder(_PairBuilder, skip_registration=True):
    name = "paired_folder"
    DESCRIPTION = "Your own noisy/clean pairs."
    LAYOUT = ("noisy/ + clean/ (or input|lq, gt|target|hq) with matching stems, or "
              "<stem>_noisy.<ext> + <stem>_clean.<ext>; optionally per train/, test/, "
              "validation/ sub-folder")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "A folder of your own noisy/clean pairs."
    scan = staticmethod(scan_paired_folder)


BUILDERS: dict[str, type[_PairBuilder]] = {
    cls.name: cls for cls in (Sidd, Renoir, Nind, PairedFolder)
}


@dataclasses.dataclass(frozen=True)
class BuildReport:
    """What `build` wrote: the version folder, examples per split, and whether it reused it."""

    name: str
    path: str
    counts: dict[str, int]
    reused: bool = False

    def lines(self) -> list[str]:
        counts = ", ".join(f"{split} {n}" for split, n in self.counts.items())
        head = "already built, reused" if self.reused else "built"
        out = [f"{self.name}: {head} at {self.path}: {counts}"]
        if self.reused:
            out.append("  (pass --overwrite to rebuild it from the manual folder)")
        data_dir = os.path.dirname(os.path.dirname(self.path))
        first = next(iter(self.counts), "train")
        out.append(f"  read it with the data spec tfds:{self.name}:{first}@{data_dir}")
        return out


def _builder_class(name: str) -> type[_PairBuilder]:
    if name not in BUILDERS:
        raise UserError(f"unknown data set {name!r}; buildable: {', '.join(BUILDERS)}")
    return BUILDERS[name]


def build(name: str, manual_dir: str, data_dir: str | None = None, *,
          overwrite: bool = False) -> BuildReport:
    """Scans `manual_dir` and writes `<data_dir>/<name>/1.0.0/` (array_record).

    An existing build is reused unless `overwrite`. Problems with the folder or its files
    are `UserError`s naming what was expected.
    """
    cls = _builder_class(name)
    manual = os.path.abspath(os.path.expanduser(manual_dir))
    plan = cls.scan(manual)
    root = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()
    try:
        builder = cls(plan=plan, data_dir=root, file_format="array_record")
        reused = not overwrite and os.path.isfile(
            os.path.join(builder.data_dir, "dataset_info.json"))
        mode = (tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
                else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=manual, try_download_gcs=False, download_mode=mode))
    except UserError:
        raise
    except OSError as e:
        raise UserError(f"{name}: cannot write under {root!r}: "
                        f"{(e.strerror or str(e)).lower()}") from None
    counts = {split: info.num_examples for split, info in builder.info.splits.items()}
    return BuildReport(name, os.fspath(builder.data_dir), counts, reused)


# ---------------------------------------------------------------------------------------
# Reading built data sets


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
        label = f"{spec}[{names[i]}]"
        if keys == ("image",):
            return Example(names[i], decode_image(record["image"], f"{label}.image"))
        return Example(names[i], decode_image(record["clean"], f"{label}.clean"),
                       decode_image(record["noisy"], f"{label}.noisy"))

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


# ---------------------------------------------------------------------------------------
# The real-noise comparison's protocol


SEED001_COUNTS = {"sidd": 160, "renoir": 80, "nind": 62}
SEED001_SIZE = 256


def seed001_pairs(
    sidd_dir: str | None,
    renoir_dir: str | None,
    nind_dir: str | None,
    *,
    size: int = SEED001_SIZE,
    renoir_cameras: Sequence[str] | None = ("Mi3",),
    nind_cameras: Sequence[str] | None = ("XT1",),
) -> tuple[Dataset, Dataset]:
    """The real-noise comparison's 302 pairs (SIDD 160 + RENOIR 80 + NIND 62), split 241/61.

    Reads the three manual folders directly (no build needed; None skips a source).
    Assumed order (the seed's own listing is unknown): SIDD scene pairs sorted by folder
    name (SIDD-Small gives 160), then RENOIR pairs sorted by camera/batch/noisy file, Mi3
    only (the seed's "smartphone camera": 40 batches × 2 noisy = 80), then NIND pairs
    sorted by set and ISO, X-T1 sets only (the seed: "Fujifilm X-T1"). Indices 0..N-1 of
    that list go through sklearn's `train_test_split(idx, test_size=0.2, random_state=42)`,
    which for N = 302 gives 241 train / 61 test, in sklearn's order. Each image is
    decoded, quantised to uint8 and resized to `size`×`size` with `cv2.resize` (bilinear)
    on access, as the seed fed whole 256×256 uint8 images.

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
                        key=_seed001_order)
        if cameras is not None:
            wanted_cameras = {c.lower() for c in cameras}
            chosen = [p for p in chosen if p.camera.lower() in wanted_cameras]
        found[source] = len(chosen)
        pairs.extend(chosen)
    if len(pairs) < 2:
        raise UserError(f"seed001: found {len(pairs)} pairs; the protocol needs the SIDD, "
                        "RENOIR and NIND folders (302 pairs)")
    train_idx, test_idx = train_test_split(np.arange(len(pairs)), test_size=0.2,
                                           random_state=42)
    counts = ", ".join(f"{k.upper()} {n}" for k, n in found.items())
    wanted = "/".join(str(n) for n in SEED001_COUNTS.values())

    def dataset(split: str, idx: np.ndarray) -> Dataset:
        chosen = [pairs[int(i)] for i in idx]
        return Dataset(
            f"seed001:{split}",
            f"real-noise comparison protocol, {split}: {len(chosen)} of {len(pairs)} pairs "
            f"({counts}; the seed had {wanted}), resized to {size}x{size}",
            [p.name for p in chosen],
            lambda i: _resized_example(chosen[i], size),
            files=[f for p in chosen for f in (p.noisy, p.clean)],
        )

    return dataset("train", train_idx), dataset("test", test_idx)


def _seed001_order(pair: Pair) -> tuple:
    """SIDD and RENOIR by name (folder/camera/batch/file order), NIND by set then ISO."""
    if pair.source == "nind":
        return (pair.scene, nind_rank(pair.iso), pair.name)
    return ("", (0, 0, 0), pair.name)


def _resized_example(pair: Pair, size: int) -> Example:
    import cv2

    def read(path: str) -> np.ndarray:
        samples = _rgb8(images.read_image(path).pixels)
        return images.from_uint(cv2.resize(samples, (size, size)))

    return Example(pair.name, read(pair.clean), read(pair.noisy))
