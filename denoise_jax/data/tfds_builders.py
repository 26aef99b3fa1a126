"""tensorflow-datasets builders for real noisy/clean pairs, built without TensorFlow.

    build("sidd", "~/SIDD_Small_sRGB_Only")          # -> ~/tensorflow_datasets/sidd/1.0.0
    load("tfds:sidd:train")                           # via denoise_jax.data.load (tfds_load)

None of the sets can be downloaded here: each builder scans a folder the user downloaded
(tfds "manual_dir"; the layouts and scene-level splits are `denoise_jax.data.scan`'s) and
writes array_record shards under `<data_dir>/<name>/1.0.0/`, where `data_dir` is
`--data-dir`, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.

Every example holds
  noisy, clean  tfds.features.Image(shape=(None, None, 3), dtype=uint8), no encoding_format:
                the bytes of an 8-bit RGB PNG or JPEG. Files that already are one (SIDD PNGs,
                NIND JPEGs and 8-bit PNGs) are stored byte for byte; everything else (RENOIR
                BMPs, 16-bit NIND PNGs, grey/RGBA/TIFF user files, the SIDD .mat blocks) is
                decoded with `denoise_jax.images` and stored as an 8-bit RGB PNG (16 bits are
                rounded to 8, grey is repeated to 3 channels, alpha is dropped). So plain
                tfds readers get uint8 [H, W, 3] arrays; `load("tfds:...")` decodes the same
                bytes with `denoise_jax.images` to float32 in [0, 1].
  name, camera, iso, scene, source
                text, the scanned `Pair`'s fields (see `denoise_jax.data.scan`).
Each noisy and clean pair is checked at build time: both files must decode and have the
same height and width.

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
import os
from collections.abc import Callable

import numpy as np
import tensorflow_datasets as tfds

from denoise_jax import images
from denoise_jax.data.scan import (
    SIDD_EXAMPLE_SCENE,
    MatBlock,
    Pair,
    Plan,
    load_mat,
    scan_nind,
    scan_paired_folder,
    scan_renoir,
    scan_sidd,
)
from denoise_jax.errors import UserError

BUILD_VERSION = "1.0.0"
DATA_DIR_ENV = "TFDS_DATA_DIR"


def default_data_dir() -> str:
    """`$TFDS_DATA_DIR`, else `~/tensorflow_datasets` (absolute)."""
    folder = os.environ.get(DATA_DIR_ENV) or os.path.join("~", "tensorflow_datasets")
    return os.path.abspath(os.path.expanduser(folder))


# ---------------------------------------------------------------------------------------
# Storing a pair's images


class _Encoder:
    """Pair -> stored bytes, reusing the last clean image (many noisy share one clean)."""

    def __init__(self):
        self._mats: dict[tuple[str, str], np.ndarray] = {}
        self._last: tuple[object, tuple[bytes, tuple[int, int]]] | None = None

    def _encode(self, source: str | MatBlock) -> tuple[bytes, tuple[int, int]]:
        if isinstance(source, MatBlock):
            key = (source.path, source.key)
            if key not in self._mats:
                self._mats[key] = load_mat(source.path, source.key)
            block = self._mats[key][source.index]
            return images.png_bytes(block), block.shape[:2]
        return images.encode_file(source)

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

