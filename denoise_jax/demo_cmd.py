"""`denoise-jax demo`: train a small colour denoiser, then table it against NLM and BM3D.

    denoise-jax demo [--out demo_out] [--crop 256]

Trains experiments/skimage_gauss.py:demo into OUT/run (re-running resumes), scores it with
the shipped gauss_rgb model beside noisy, NLM and BM3D on the held-out colour photos, and
writes OUT/table.md, OUT/results.json and OUT/figure.png. Needs a clone's experiments/.
"""

from __future__ import annotations

import argparse
import os

from denoise_jax import configs, data
from denoise_jax.configs import EXPERIMENTS as experiments
from denoise_jax.errors import UserError
from denoise_jax.images import write_text

HELP = "train a small denoiser, then a table and a figure against NLM and BM3D"
DEMO_EXPERIMENT = "skimage_gauss.py:demo"
SHIPPED = "gauss_rgb"  # the shipped colour model, tabled beside the demo's own


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the `demo` arguments to `p`, a subparser of the CLI."""
    p.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    p.add_argument("--crop", type=int, default=256, help="centre crop size (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Trains a small colour denoiser, then tables it against noisy, NLM and BM3D."""
    from denoise_jax import evaluate, methods, train  # load jax: only when run (see cli.py)

    config = os.path.join(experiments, DEMO_EXPERIMENT)
    if not os.path.isfile(config.split(":")[0]):
        raise UserError(
            f"the demo needs the repository's experiments/ folder (not found at "
            f"{str(experiments)!r}); run it from a clone with `make demo`"
        )
    run_dir = os.path.join(args.out, "run")
    print(
        f"denoise_jax demo\n1) train a small blind colour DnCNN on scikit-image's training "
        f"photos (experiments/{DEMO_EXPERIMENT}, a few minutes on 2 CPU cores; re-running "
        f"resumes) -> {run_dir}",
        flush=True,
    )
    train.train_and_evaluate(configs.load(config), run_dir)
    print(
        f"\n2) score it against classical methods on the held-out colour photos "
        f"(centre {args.crop}×{args.crop} crops), noise gaussian:25, with the shipped "
        f"{SHIPPED} model beside it\n",
        flush=True,
    )
    dataset = data.load("skimage:test:rgb")
    table = {name: methods.classical(name) for name in ("noisy", "nlm", "bm3d")}
    table["dncnn (trained by the demo)"] = methods.load_method(run_dir)
    table[f"{SHIPPED} (shipped)"] = methods.resolve(f"pretrained:{SHIPPED}")
    report = evaluate.evaluate(
        table,
        dataset,
        "gaussian:25",
        0,
        crop=args.crop,
        keep_samples=len(dataset),
        data_name="skimage:test:rgb",
    )
    table = report.to_markdown()
    print(table)
    os.makedirs(args.out, exist_ok=True)
    write_text(os.path.join(args.out, "table.md"), table + "\n")
    write_text(os.path.join(args.out, "results.json"), report.to_json() + "\n")
    evaluate.figure(report, os.path.join(args.out, "figure.png"))
    print(
        f"\nwrote {args.out}/table.md, {args.out}/results.json, {args.out}/figure.png "
        f"(training curves: {run_dir}/metrics.jsonl; TensorBoard events: {run_dir}/tensorboard)"
    )
    return 0
