"""Pretrained models shipped inside the package (`denoise-jax denoise --model NAME`).

Each model is a sub-folder `denoise_jax/pretrained/<name>/` laid out like a training workdir,
so the same loader reads both:

    <name>/config.json         the training config (model name and arguments)
    <name>/checkpoints/<step>/ an orbax checkpoint (the `state` item of `checkpoints.save`)
    <name>/MODEL_CARD.md       what it was trained on, noise levels, scores, licence

To ship a trained run: copy its `config.json` and its best `checkpoints/<step>/` folder here
under a new name and write the card. Nothing is ever downloaded: a name that is not a folder
here is an error.
"""

from __future__ import annotations

import os

from denoise_jax.errors import UserError

ROOT = os.path.dirname(os.path.abspath(__file__))
CARD = "MODEL_CARD.md"
# The best shipped model for photos with this many channels: what `denoise` and the web page
# use when the user names no method (see each card's photos:val table).
DEFAULT_FOR_CHANNELS = {3: "gauss_rgb", 1: "gauss_gray"}
# The method name (`eval --methods`) of "DEFAULT_FOR_CHANNELS[the image's channels]".
SHIPPED = "shipped"


def default_for(channels: int) -> str:
    """The shipped model used by default for images with `channels` channels (1 or 3)."""
    if channels not in DEFAULT_FOR_CHANNELS:
        raise UserError(f"no default model for {channels}-channel images; pass --model/--method")
    return DEFAULT_FOR_CHANNELS[channels]


def _is_model(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json")) and os.path.isdir(
        os.path.join(folder, "checkpoints")
    )


def names(root: str | None = None) -> list[str]:
    """Names of the shipped models present under `root` (default: this package), sorted."""
    root = root or ROOT
    return sorted(
        name
        for name in os.listdir(root)
        if not name.startswith((".", "_")) and _is_model(os.path.join(root, name))
    )


def find(name: str, root: str | None = None) -> str:
    """The folder of the shipped model `name` (a workdir-like path for `checkpoints`).

    An unknown name is a `UserError` listing the shipped ones (or saying there are none).
    """
    root = root or ROOT
    known = names(root)
    if name in known:
        return os.path.join(root, name)
    if not known:
        raise UserError(
            f"unknown pretrained model {name!r}: no pretrained models are shipped with this "
            "version yet; use --workdir DIR (your training run) or --method bm3d|nlm|..."
        )
    raise UserError(f"unknown pretrained model {name!r}: choose one of {', '.join(known)}")


def model_card(name: str, root: str | None = None) -> str:
    """The text of `<name>/MODEL_CARD.md` ("" when the folder has none)."""
    path = os.path.join(find(name, root), CARD)
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()
