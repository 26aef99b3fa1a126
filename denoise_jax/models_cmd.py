"""`denoise-jax models`: every registered architecture (parameters, GMACs) and the shipped
pretrained models.

    denoise-jax models [--size 256]
"""

from __future__ import annotations

import argparse
import sys

from denoise_jax import checkpoints, pretrained

HELP = "list every architecture (parameters, GMACs) and the shipped models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the `models` arguments to `p`, a subparser of the CLI."""
    p.add_argument("--size", type=int, default=256, help="square input side (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from denoise_jax import models  # loads flax and jax: only when run (see cli.py)
    from denoise_jax.models import summary

    print(
        f"computing parameters and GMACs at {args.size}×{args.size}×3 (no weights allocated)…",
        file=sys.stderr,
        flush=True,
    )
    print(summary.table(models.names(), shape=(1, args.size, args.size, 3)))
    print()
    print(pretrained_table())
    return 0


def pretrained_table() -> str:
    """Markdown list of the shipped pretrained models: name, model, training data and noise."""
    shipped = pretrained.names()
    if not shipped:
        return "Shipped pretrained models: none in this version."
    lines = ["Shipped pretrained models (`denoise-jax denoise PHOTO -o OUT --model NAME`; "
             "card: denoise_jax/pretrained/NAME/MODEL_CARD.md):", "",
             "| name | model | trained on | noise |", "|---|---|---|---|"]
    for name in shipped:
        config = checkpoints.load_config(pretrained.find(name))
        lines.append(f"| {name} | {config.model.name} | {config.data.train} | {config.noise} |")
    return "\n".join(lines)
