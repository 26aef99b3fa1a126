"""Learning curves of training runs against compute: validation PSNR per CPU-hour.

    python -m denoise_jax.curves ~/runs/drunet ~/runs/ffdnet --plot curves.png --at 0.5
    curves.val_curve("~/runs/drunet")        # [(cpu_hours, step, psnr), ...]

Runs are compared per unit of compute, not per step: each `metrics.jsonl` record carries the
CPU-hours the run had used so far (`writers.MetricWriter`), summed over resumed chunks, so
runs made on busy or different machines still line up. The table gives each run's validation
PSNR at the same CPU-hours (linear interpolation between evaluations), its last value and its
recent slope (dB per CPU-hour over the last third of its curve).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from denoise_jax import writers
from denoise_jax.errors import UserError, report_user_error
from denoise_jax.images import atomic_output


def val_curve(workdir: str) -> list[tuple[float, int, float]]:
    """[(cpu_hours, step, val PSNR)] of a run, oldest first (records without CPU time skipped)."""
    rows = writers.read_metrics(os.path.expanduser(workdir), "val")
    return [(r["cpu_hours"], r["step"], r["psnr"]) for r in rows
            if r.get("cpu_hours") is not None and r.get("psnr") is not None]


def at_hours(curve: Sequence[tuple[float, int, float]], hours: float) -> float | None:
    """The curve's PSNR at `hours` (interpolated); None outside what it reached."""
    if not curve or hours > curve[-1][0] or hours < curve[0][0]:
        return None
    x, _, y = zip(*curve, strict=True)
    return float(np.interp(hours, x, y))


def slope(curve: Sequence[tuple[float, int, float]]) -> float | None:
    """dB per CPU-hour, least squares over the last third of the curve (None: too short)."""
    tail = curve[-max(3, len(curve) // 3):]
    if len(tail) < 3 or tail[-1][0] <= tail[0][0]:
        return None
    x, _, y = zip(*tail, strict=True)
    return float(np.polyfit(x, y, 1)[0])


def table(runs: Mapping[str, str], at: float | None = None) -> str:
    """Markdown: per run, PSNR at `at` CPU-hours (default: the shortest run's end), the last
    evaluation and the recent slope."""
    curves = {label: val_curve(path) for label, path in runs.items()}
    if not any(curves.values()):
        raise UserError(f"no validation records with CPU time in {', '.join(curves)}")
    # A run that has not been evaluated yet (just started) gets a row, not a say in `at`.
    at = at if at is not None else min(c[-1][0] for c in curves.values() if c)
    lines = [f"| run | val PSNR at {at:.2f} CPU-h | last: CPU-h, step, PSNR | slope (dB/CPU-h) |",
             "|---|---:|---|---:|"]
    for label, c in curves.items():
        if not c:
            lines.append(f"| {label} | - | no evaluation yet | - |")
            continue
        value, rate = at_hours(c, at), slope(c)
        lines.append(f"| {label} | {'-' if value is None else f'{value:.2f}'} | "
                     f"{c[-1][0]:.2f}, {c[-1][1]}, {c[-1][2]:.2f} | "
                     f"{'-' if rate is None else f'{rate:+.2f}'} |")
    return "\n".join(lines)


def plot(runs: Mapping[str, Sequence[tuple[float, int, float]]], path: str,
         references: Mapping[str, float] | None = None,
         title: str = "validation PSNR against compute") -> None:
    """A PNG of each curve (`val_curve`'s rows) as val PSNR against CPU-hours, with horizontal
    reference lines."""
    from matplotlib.figure import Figure  # heavy (~0.4 s): only a plot loads it

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for label, curve in runs.items():
        if curve:
            x, _, y = zip(*curve, strict=True)
            ax.plot(x, y, marker=".", label=label)
    for label, value in (references or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=8, va="bottom")
    ax.set(xlabel="CPU-hours (all threads)", ylabel="val PSNR (dB)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m denoise_jax.curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="WORKDIR", help="training workdirs")
    parser.add_argument("--at", type=float, help="compare at this many CPU-hours")
    parser.add_argument("--plot", metavar="FILE.png", help="also write the curves as a plot")
    return report_user_error(run, parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    runs = {os.path.basename(os.path.normpath(r)): r for r in args.runs}
    print(table(runs, args.at))
    if args.plot:
        plot({label: val_curve(r) for label, r in runs.items()}, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
