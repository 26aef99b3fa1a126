"""Shared fixtures: small real photos written to temporary folders."""


import numpy as np
import pytest
from PIL import Image as PILImage


def crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


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
