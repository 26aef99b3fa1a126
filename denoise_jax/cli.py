"""`denoise-jax` command line (also `python -m denoise_jax`).

Each command lives in its own module, which holds its `HELP` line, its arguments
(`add_arguments(parser)`) and `run(args) -> exit code`; this one builds the top-level parser
from them and dispatches. The command modules import jax, flax, tensorflow_datasets and
streamlit inside the functions that use them, not at module level, so that `--help` and
argument errors load no more than they need.

Every command turns a `UserError` into one line on stderr and exit code 2; a training run
stopped by SIGTERM / SIGINT prints where it stopped and exits with 128 + the signal.
"""

from __future__ import annotations

import argparse
import os
import sys

from denoise_jax import app_cmd, demo_cmd, denoise_cmd, eval_cmd, models_cmd, train_cmd
from denoise_jax.data import build as data_cmd
from denoise_jax.errors import Interrupted, report_user_error

COMMANDS = {
    "eval": eval_cmd,
    "train": train_cmd,
    "data": data_cmd,
    "denoise": denoise_cmd,
    "app": app_cmd,
    "models": models_cmd,
    "demo": demo_cmd,
}
# Commands with their own flag parsers (train's config overrides, data's argparse):
# everything after the command name is handed over untouched, as args.rest.
OWN_FLAGS = ("train", "data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="denoise-jax",
        description="Image denoising in JAX: evaluate classical and learned denoisers with one "
        "pinned PSNR/SSIM.",
        epilog=eval_cmd.examples(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        if name in OWN_FLAGS:
            p = sub.add_parser(name, add_help=False, prefix_chars="\0", help=command.HELP)
            p.add_argument("rest", nargs=argparse.REMAINDER)
        else:
            p = sub.add_parser(name, help=command.HELP)
            command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return report_user_error(args.run, args)
    except Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `denoise-jax models | head`: the reader left; exit quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
