"""`denoise-jax train`: flags -> `configs.load` -> `train.train_and_evaluate`.

    denoise-jax train --config experiments/skimage_gauss.py[:tiny] --workdir runs/x \\
        [--config.optimizer.lr=3e-4 ...]

The flags are parsed here (`_parse`), not by the CLI's argparse: `run` gets everything
after `denoise-jax train` untouched.
"""

from __future__ import annotations

import argparse

from absl import flags

from denoise_jax import configs
from denoise_jax.errors import UserError

HELP = ("train an experiment: --config experiments/NAME.py[:ARG] --workdir DIR "
        "[--config.KEY=VALUE ...] (re-running resumes; `train --help` for all flags)")

USAGE = """\
usage: denoise-jax train --config experiments/NAME.py[:ARG] --workdir DIR [--config.KEY=VALUE ...]

Trains an experiment config; re-running the same command resumes from DIR's newest good
checkpoint (a changed config is reported and used).

  --config FILE[:ARG]   an experiment file with get_config(arg); ARG 'tiny' shrinks it
                        for a quick smoke run
  --workdir DIR         where checkpoints/, metrics.jsonl, tensorboard/, samples/ and
                        config.json go
  --config.KEY=VALUE    override any config field, e.g. --config.optimizer.lr=3e-4
                        --config.num_steps=2000 --config.data.batch=32

Writes: DIR/config.json, DIR/checkpoints/<step>/ (the last `keep` plus the best by
validation PSNR; also every checkpoint_every_minutes), DIR/metrics.jsonl, DIR/tensorboard/
(tensorboard --logdir DIR), DIR/samples/step_N.png. Evaluate a run with: denoise-jax eval
--methods noisy,DIR ...

SIGTERM or Ctrl-C saves the step in progress, then exits 128 + the signal (a second Ctrl-C
quits at once); re-run to resume. A damaged checkpoint is moved to DIR/checkpoints_damaged/
for the previous one. DIR/train.lock keeps a second run off DIR.
--config.init_from=pretrained:NAME|DIR[@best|@latest] starts a new run from those weights.
"""


HELPS = ("-h", "--help", "-help", "--helpfull")


def _experiments_help() -> str:
    found = configs.names()
    return ("\nexperiments:\n" + "".join(f"  experiments/{n}\n" for n in found)) if found else ""


def _parse(argv: list[str]) -> tuple[str | None, str | None, list[str], bool]:
    """(config spec, workdir, ["KEY=VALUE" overrides], help wanted) from the flags."""
    spec = workdir = None
    overrides, rest, wants_help = [], list(argv), False
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if arg in HELPS:
            wants_help = True
        elif name in ("--config", "--workdir"):
            if not eq:
                if not rest:
                    raise UserError(f"train: {name} needs a value (see denoise-jax train --help)")
                value = rest.pop(0)
            spec, workdir = (value, workdir) if name == "--config" else (spec, value)
        elif name.startswith("--config."):
            if not eq and rest and not rest[0].startswith("--"):
                value, eq = rest.pop(0), "="
            overrides.append(f"{name[len('--config.'):]}={value}" if eq else name[9:])
        else:
            raise UserError(f"train: unexpected argument {arg!r} (flags look like --name=value; "
                            "see denoise-jax train --help)")
    return spec, workdir, overrides, wants_help


def main(argv: list[str]) -> int:
    """`denoise-jax train ...`: argv[0] is the program name, the rest the flags above.

    Can run more than once in a process. Raises `UserError` for bad input.
    """
    spec, workdir, overrides, wants_help = _parse(list(argv)[1:])
    config = None
    if spec is not None:
        try:
            config = configs.load(spec, overrides)
        except (flags.Error, OSError, AttributeError, KeyError, TypeError, ValueError) as e:
            if not wants_help:
                raise UserError(f"train: {_flag_error(e)} (see denoise-jax train --help)") from e
        except UserError:
            if not wants_help:
                raise
    if wants_help:
        print(USAGE + _experiments_help())
        if config is not None:
            print(f"the chosen config (every field can be overridden):\n{config}")
        return 0
    if config is None or not workdir:
        raise UserError("train needs --config experiments/NAME.py[:ARG] and --workdir DIR "
                        "(see denoise-jax train --help)")
    from denoise_jax import train  # loads jax: only when training (see cli.py)

    train.train_and_evaluate(config, workdir)
    return 0


def run(args: argparse.Namespace) -> int:
    """The CLI's `train`: `args.rest` holds every argument after the command name."""
    return main(["denoise-jax train", *args.rest])


def _flag_error(e: Exception) -> str:
    """One line from absl / ml_collections' flag and config-loading errors."""
    if isinstance(e, AttributeError | KeyError):
        return f"no such config field: {str(e).strip(chr(34) + chr(39))}"
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    return lines[-1] if "Traceback" in str(e) or "Attempted" in str(e) else lines[0]
