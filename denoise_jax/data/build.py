"""`denoise-jax data ...`: build the real noisy/clean sets as tensorflow-datasets, offline.

    denoise-jax data build sidd --manual-dir ~/Downloads/SIDD_Small_sRGB_Only
    denoise-jax data build nind --manual-dir ~/NIND --data-dir /data/tfds --overwrite
    denoise-jax data list [--data-dir DIR]

`build` scans the folder you downloaded (nothing is fetched), writes
<data-dir>/<name>/1.0.0/ and prints the examples per split and the data spec that reads
them (`tfds:NAME:SPLIT@DATA_DIR`). `--data-dir` defaults to $TFDS_DATA_DIR, else
~/tensorflow_datasets. Every problem is a `UserError` (one line).
"""

from __future__ import annotations

import argparse

from denoise_jax.errors import UserError

PROG = "denoise-jax data"


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UserError` instead of printing usage and exiting."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Build the real noisy/clean data sets "
                     "(SIDD, RENOIR, NIND, your own pairs) as tensorflow-datasets, offline.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = commands.add_parser(
        "build", help="build NAME from a folder you downloaded",
        description="Scan --manual-dir and write <data-dir>/NAME/1.0.0 (array_record).")
    build.add_argument("name", metavar="NAME", help="sidd, renoir, nind or paired_folder")
    build.add_argument("--manual-dir", required=True, metavar="PATH",
                       help="the folder holding the downloaded files")
    build.add_argument("--data-dir", metavar="DIR",
                       help="where to write (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    build.add_argument("--overwrite", action="store_true",
                       help="rebuild even if a build already exists")
    listing = commands.add_parser(
        "list", help="list the buildable data sets and what is built",
        description="List the buildable data sets, the folder layout each expects, and "
        "what is already built in the data folder.")
    listing.add_argument("--data-dir", metavar="DIR",
                         help="where to look (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    return parser


def main(argv: list[str]) -> int:
    """Runs `denoise-jax data ARGV...`; returns the exit code (0) or raises `UserError`."""
    args = _parser().parse_args(argv)
    from denoise_jax.data import builders

    if args.command == "build":
        report = builders.build(args.name.strip().lower(), args.manual_dir, args.data_dir,
                                overwrite=args.overwrite)
        print("\n".join(report.lines()))
        return 0
    data_dir = args.data_dir or builders.default_data_dir()
    print(f"buildable data sets (data folder {data_dir}):")
    for name, cls in builders.BUILDERS.items():
        built = builders.built_counts(name, data_dir)
        status = ("built: " + ", ".join(f"{s} {n}" for s, n in built.counts.items())
                  if built else "not built")
        print(f"  {name:<14} {cls.DESCRIPTION} [{status}]")
        print(f"  {'':<14} --manual-dir: {cls.LAYOUT}")
    print("read one with the data spec tfds:NAME[:SPLIT][@DATA_DIR]; seed 001's 302-pair "
          "protocol: denoise_jax.data.builders.seed001_pairs(sidd_dir, renoir_dir, nind_dir)")
    return 0
