"""Geometric self-ensemble: a denoiser averaged over rotations and mirrors of its input.

A network denoising noise that looks the same in every orientation (Gaussian) makes
different errors on a rotated photo; averaging the outputs over V views, each turned back,
cancels part of them at V times the cost. Noise with a direction (demosaicked camera noise)
can come out worse, so each model's config says how many views its denoiser uses
(`config.ensemble`, read by `methods.ensemble_views`; 1 = none).

- `VIEWS`: the view sets by size: 2 = the photo and its 180° turn, 4 = the four 90° turns,
  8 = those four and their mirrors (`NAMES` says so in words, for cards and messages).
- `self_ensemble(fn, x, views, axes)`: the mean of `fn` over those views of `x`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from denoise_jax.errors import UserError

# (quarter turns, mirrored) per view; the identity first.
VIEWS: dict[int, tuple[tuple[int, bool], ...]] = {
    1: ((0, False),),
    2: ((0, False), (2, False)),
    4: tuple((k, False) for k in range(4)),
    8: tuple((k, mirror) for k in range(4) for mirror in (False, True)),
}
NAMES = {1: "the input only", 2: "the input and its half turn", 4: "the four quarter turns",
         8: "the four quarter turns and their mirrors"}


def check_views(views: int) -> int:
    """`views` if it is a size of `VIEWS`, else a `UserError` naming the sizes."""
    if isinstance(views, bool) or views not in VIEWS:
        raise UserError(f"a self-ensemble has {', '.join(map(str, VIEWS))} views, not {views!r}")
    return int(views)


def self_ensemble(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, views: int = 8,
                  axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Mean of `fn` over `views` rotations/mirrors of `x` (in the plane of `axes`), each
    output turned back.

    Args:
      fn: an array shaped like `x` -> one shaped like it (it is also called with the two
        spatial axes swapped when they differ in length and `views` > 2).
      x: e.g. an image [H, W, C] (axes (0, 1)) or a batch of tiles [B, h, w, C] (axes (1, 2)).
      views: 1, 2, 4 or 8 (`VIEWS`).
    Returns:
      float32, shaped like `x` (`fn(x)` itself when `views` is 1).
    """
    x = np.asarray(x)
    if check_views(views) == 1:
        return np.asarray(fn(x), np.float32)
    total = np.zeros(x.shape, np.float32)
    for turns, mirror in VIEWS[views]:
        view = np.rot90(x, turns, axes=axes)
        if mirror:
            view = np.flip(view, axes[1])
        out = np.asarray(fn(np.ascontiguousarray(view)), np.float32)
        if mirror:
            out = np.flip(out, axes[1])
        total += np.rot90(out, -turns, axes=axes)
    total /= len(VIEWS[views])
    return total
