"""Shared fixtures: small real photos written to temporary folders."""


import numpy as np
import pytest
from PIL import Image as PILImage


def crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


# The longest files first, so that `make test`'s workers (pytest-xdist, one file at a time)
# do not end with one of them still running a long file alone.
LONGEST_FILES = ("test_notebooks.py", "test_real_noise.py", "test_train.py", "test_parallel.py",
                 "test_pretrained.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


@pytest.fixture(autouse=True)
def _scores_cache(tmp_path_factory, monkeypatch):
    """Classical scores computed by tests go to a temporary folder, never into the checkout's
    committed cache (`ship.SCORES`)."""
    monkeypatch.setenv("DENOISE_JAX_SCORES", str(tmp_path_factory.getbasetemp() / "scores"))


@pytest.fixture
def photo_dir(tmp_path):
    """A folder with three 64×64 real photo crops (two colour PNG, one grey JPEG-free PNG)."""
    import skimage.data

    folder = tmp_path / "photos"
    folder.mkdir()
    PILImage.fromarray(crop(skimage.data.astronaut(), 64)).save(folder / "astronaut.png")
    PILImage.fromarray(crop(skimage.data.coffee(), 64)).save(folder / "coffee.png")
    PILImage.fromarray(crop(skimage.data.camera(), 64)).save(folder / "camera.png")
    return folder


@pytest.fixture(scope="session")
def _built_photo_corpus(tmp_path_factory):
    import shutil

    from denoise_jax.data import photos
    from tests import photo_fixtures as fx

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb (Debian's package tool) is not installed")
    folder = tmp_path_factory.mktemp("photo_corpus")
    debs = fx.build_debs(str(folder / "debs"))
    photos.build(str(folder / "photos"), sources=fx.SOURCES, debs=debs, val=fx.VAL,
                 update_manifest=True, manifest=str(folder / "manifest.tsv"),
                 progress=lambda _: None)
    return str(folder / "photos")


@pytest.fixture
def photo_corpus(_built_photo_corpus, monkeypatch):
    """A tiny photo corpus built from generated packages, as the default photos: folder."""
    monkeypatch.setenv("DENOISE_JAX_PHOTOS", _built_photo_corpus)
    return _built_photo_corpus


@pytest.fixture
def full_disk(monkeypatch):
    """full_disk(marker): from then on, a file opened for writing at a path containing
    `marker` takes half of what is written, then fails with ENOSPC, as on a disk that fills
    up. Python-level writes only (PIL, matplotlib, JSON, orbax's metadata), not C++ ones."""
    import builtins
    import errno
    import io
    import os

    real_open, markers = builtins.open, []

    class Filling:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            self._f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        path = os.fsdecode(file) if isinstance(file, str | bytes | os.PathLike) else ""
        if set(mode) & set("wax+") and any(m in path for m in markers):
            return Filling(f)
        return f

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    return markers.append
