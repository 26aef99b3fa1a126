"""`denoise-jax eval`: score methods on a data set with added or real noise.

    denoise-jax eval --methods noisy,nlm,bm3d --data skimage:test --noise gaussian:25

Prints the markdown table of `evaluate.evaluate` and writes, on request, the full results
as JSON, per-image CSV, the table as markdown and a figure grid. Outputs never overwrite an
input, and an unwritable output folder stops the command before the evaluation.
"""

from __future__ import annotations

import argparse
import textwrap

from denoise_jax import baselines, data, denoise_cmd, pretrained
from denoise_jax.ensemble import VIEWS
from denoise_jax.images import ensure_not_input, write_text

HELP = "score methods on a data set with added or real noise"
EXAMPLES = textwrap.dedent(
    """\
    examples:
      denoise-jax demo                                   # the README's first table
      denoise-jax eval                                   # noisy, NLM, BM3D, shipped models
      denoise-jax eval --methods noisy,nlm,bm3d --data skimage:test --noise gaussian:25
      denoise-jax eval --methods noisy,bm3d --data folder:~/photos --noise camera --json out.json
      denoise-jax eval --methods noisy,wavelet --data pairs:~/my_pairs    # real noisy/clean pairs
      denoise-jax eval --methods noisy,nlm,bm3d,pretrained:gauss_rgb --data photos:val \\
          --noise gaussian:25 --input 8bit --worst-vs bm3d    # as your 8-bit files hold it
    """
)


def examples() -> str:
    """EXAMPLES with the data and noise specs each registry knows."""
    from denoise_jax import noise  # loads jax: not at import time (see cli.py)

    specs = (("data specs", data.spec_examples()), ("noise specs", noise.examples()))
    return EXAMPLES + "\n" + "".join(
        textwrap.fill(text, 96, initial_indent=f"    {title + ':':<14}",
                      subsequent_indent=" " * 18, break_on_hyphens=False) + "\n"
        for title, text in specs)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the `eval` arguments (and the examples epilog) to `p`, a subparser of the CLI."""
    p.epilog = examples()
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--methods",
        default=f"noisy,nlm,bm3d,{pretrained.SHIPPED}",
        help="comma-separated methods: classical names (see `denoise-jax eval --list`), "
        "pretrained:NAME (`denoise-jax models`), 'shipped' (the best shipped model for "
        "each image's channels, what `denoise` uses by default) or training workdirs "
        "(default: %(default)s)",
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
    p.add_argument("--ensemble", type=int, choices=tuple(VIEWS), metavar="N",
                   help="learned methods average N rotations/mirrors of each image (1, 2, 4 or "
                   "8; default: each model's own config `ensemble`)")
    p.add_argument("--list", action="store_true",
                   help="list classical methods (and 'shipped') and exit")



def run(args: argparse.Namespace) -> int:
    from denoise_jax import evaluate

    if args.list:
        print("\n".join(baselines.names()))
        print(pretrained.SHIPPED)
        return 0
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    dataset = data.load(args.data)
    outputs = [p for p in (args.json, args.csv, args.markdown, args.figure) if p]
    for path in outputs:
        ensure_not_input(path, dataset.files)
    # An unwritable output folder stops the command before the (long) evaluation.
    denoise_cmd.check_output_folders(outputs)
    noise_spec = None if args.noise == "real" else args.noise
    methods = {name: evaluate.resolve_method(name, args.ensemble) for name in names}
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
