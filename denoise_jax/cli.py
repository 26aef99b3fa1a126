"""`denoise-jax` command line (also `python -m denoise_jax`).

Every command turns a `UserError` into one line on stderr and exit code 2; a training run
stopped by SIGTERM / SIGINT prints where it stopped and exits with 128 + the signal.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from denoise_jax.errors import Interrupted, UserError

EXAMPLES = textwrap.dedent(
    """\
    examples:
      denoise-jax demo                                   # the README's first table
      denoise-jax eval --methods noisy,nlm,bm3d --data skimage:test --noise gaussian:25
      denoise-jax eval --methods noisy,bm3d --data folder:~/photos --noise camera --json out.json
      denoise-jax eval --methods noisy,wavelet --data pairs:~/my_pairs    # real noisy/clean pairs
      denoise-jax eval --methods noisy,nlm,bm3d,pretrained:gauss_rgb --data photos:val \
          --noise gaussian:25 --input 8bit --worst-vs bm3d    # as your 8-bit files hold it
    """
)


def _examples() -> str:
    """EXAMPLES with the data and noise specs each registry knows."""
    from denoise_jax import data, noise

    specs = (("data specs", data.spec_examples()), ("noise specs", noise.examples()))
    return EXAMPLES + "\n" + "".join(
        textwrap.fill(text, 96, initial_indent=f"    {title + ':':<14}",
                      subsequent_indent=" " * 18, break_on_hyphens=False) + "\n"
        for title, text in specs)


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--methods",
        default="noisy,nlm,bm3d",
        help="comma-separated methods: classical names (see `denoise-jax eval --list`) "
        "or training workdirs (default: %(default)s)",
    )
    p.add_argument("--data", default="skimage:test", help="data spec (default: %(default)s)")
    p.add_argument(
        "--noise",
        default="gaussian:25",
        help="noise spec added to the clean images; 'real' for noisy/clean pairs "
        "(default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed; same seed, same noisy inputs")
    p.add_argument(
        "--input",
        choices=("float", "8bit"),
        default="float",
        help="float: noise added in floating point; 8bit: each noisy input clipped and rounded "
        "to 8 bits, as your photo files hold it (default: %(default)s)",
    )
    p.add_argument(
        "--worst-vs",
        metavar="METHOD",
        help="add a column: each method's worst image and its PSNR margin against METHOD "
        "(one of --methods, e.g. bm3d)",
    )
    p.add_argument(
        "--crop",
        type=int,
        default=None,
        metavar="N",
        help="centre-crop each image to at most N×N first (faster)",
    )
    p.add_argument("--json", metavar="FILE", help="write the full results (per image too) as JSON")
    p.add_argument("--csv", metavar="FILE", help="write per-image results as CSV")
    p.add_argument("--markdown", metavar="FILE", help="write the table as markdown")
    p.add_argument(
        "--figure",
        metavar="FILE.png",
        help="write a grid: noisy | each method | clean, with zoomed crops",
    )
    p.add_argument(
        "--figure-images",
        type=int,
        default=2,
        metavar="N",
        help="images shown in the figure (default: %(default)s)",
    )
    p.add_argument("--list", action="store_true", help="list classical methods and exit")


def run_eval(args: argparse.Namespace) -> int:
    from denoise_jax import baselines, data, denoise_cmd, evaluate
    from denoise_jax.images import ensure_not_input, write_text

    if args.list:
        print("\n".join(baselines.names()))
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    dataset = data.load(args.data)
    outputs = [p for p in (args.json, args.csv, args.markdown, args.figure) if p]
    for path in outputs:
        ensure_not_input(path, dataset.files)
    # An unwritable output folder stops the command before the (long) evaluation.
    denoise_cmd.check_output_folders(outputs)
    noise_spec = None if args.noise == "real" else args.noise
    report = evaluate.evaluate(
        methods,
        dataset,
        noise_spec,
        args.seed,
        crop=args.crop,
        keep_samples=args.figure_images if args.figure else 0,
        data_name=args.data,
        input=args.input,
        reference=args.worst_vs,
    )
    print(report.to_markdown())
    for path, text in (
        (args.json, report.to_json()),
        (args.csv, report.to_csv()),
        (args.markdown, report.to_markdown()),
    ):
        if path:
            write_text(path, text + ("\n" if not text.endswith("\n") else ""))
            print(f"wrote {path}")
    if args.figure:
        evaluate.figure(report, args.figure)
        print(f"wrote {args.figure}")
    return 0


DEMO_EXPERIMENT = "skimage_gauss.py:demo"
SHIPPED = "gauss_rgb"  # the shipped colour model, tabled beside the demo's own


def run_demo(args: argparse.Namespace) -> int:
    """Trains a small colour denoiser, then tables it against noisy, NLM and BM3D."""
    from denoise_jax import configs, data, evaluate, methods, train
    from denoise_jax.configs import EXPERIMENTS as experiments
    from denoise_jax.images import write_text

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


def run_models(args: argparse.Namespace) -> int:
    from denoise_jax import models
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
    from denoise_jax import checkpoints, pretrained

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


def run_train(args: argparse.Namespace) -> int:
    from denoise_jax import train_cmd

    return train_cmd.main(["denoise-jax train", *args.rest])


def run_data(args: argparse.Namespace) -> int:
    from denoise_jax.data import build

    return build.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="denoise-jax",
        description="Image denoising in JAX: evaluate classical and learned denoisers with one "
        "pinned PSNR/SSIM.",
        epilog=_examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "eval",
        help="score methods on a data set with added or real noise",
        epilog=_examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_eval_args(p)
    p.set_defaults(run=run_eval)

    # Commands with their own flag parsers (absl for train, argparse for data): everything
    # after the command name is handed over untouched.
    for name, run, text in (
        (
            "train",
            run_train,
            "train an experiment: --config experiments/NAME.py[:ARG] --workdir "
            "DIR [--config.KEY=VALUE ...] (re-running resumes; `train --help` for all flags)",
        ),
        (
            "data",
            run_data,
            "build real-noise data sets from your folders: data build sidd|"
            "renoir|nind|paired_folder --manual-dir PATH; data list (`data --help` for more)",
        ),
    ):
        p = sub.add_parser(name, add_help=False, prefix_chars="\0", help=text)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=run)

    from denoise_jax import denoise_cmd

    p = sub.add_parser(
        "denoise",
        help="denoise your photos: files, folders or globs -> -o OUT (tiled, any size)",
        description=denoise_cmd.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    denoise_cmd.add_arguments(p)
    p.set_defaults(run=denoise_cmd.run)

    from denoise_jax import app_cmd

    p = sub.add_parser("app", help="serve the denoising web page on 127.0.0.1 (Streamlit)")
    app_cmd.add_arguments(p)
    p.set_defaults(run=app_cmd.run)

    p = sub.add_parser(
        "models", help="list every architecture (parameters, GMACs) and the shipped models"
    )
    p.add_argument("--size", type=int, default=256, help="square input side (default: %(default)s)")
    p.set_defaults(run=run_models)

    p = sub.add_parser(
        "demo", help="train a small denoiser, then a table and a figure against NLM and BM3D"
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    p.add_argument("--crop", type=int, default=256, help="centre crop size (default: %(default)s)")
    p.set_defaults(run=run_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `denoise-jax models | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
