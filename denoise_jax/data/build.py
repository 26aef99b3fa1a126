"""`denoise-jax data ...`: build the photo corpus, and the real noisy/clean sets as tfds.

    denoise-jax data build photos                    # ~256 photos from 8 Debian packages
    denoise-jax data build sidd --manual-dir ~/Downloads/SIDD_Small_sRGB_Only
    denoise-jax data build nind --manual-dir ~/NIND --data-dir /data/tfds --overwrite
    denoise-jax data list [--data-dir DIR]

`build photos` is the one command that downloads (Debian packages, with apt-get; see
`denoise_jax.data.photos`); it writes ~/.cache/denoise_jax/photos (or --data-dir), read by
the data specs photos:train and photos:val. For the other sets `build` scans the folder you
downloaded (nothing is fetched), writes
<data-dir>/<name>/1.0.0/ and prints the examples per split and the data spec that reads
them (`tfds:NAME:SPLIT@DATA_DIR`). `--data-dir` defaults to $TFDS_DATA_DIR, else
~/tensorflow_datasets. Every problem is a `UserError` (one line).

The CLI hands everything after `denoise-jax data` to `run` untouched; this module's own
argparse parser takes it from there.
"""

from __future__ import annotations

import argparse
import os

from denoise_jax.data import photos
from denoise_jax.errors import UserError

PROG = "denoise-jax data"
HELP = ("build real-noise data sets from your folders: data build sidd|"
        "renoir|nind|paired_folder --manual-dir PATH; data list (`data --help` for more)")


class _Parser(argparse.ArgumentParser):
    """argparse that raises `UserError` instead of printing usage and exiting."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Build the photo corpus (photos: ~256 photographs "
                     "from named Debian packages) and the real noisy/clean data sets (SIDD, "
                     "RENOIR, NIND, your own pairs) as tensorflow-datasets.",
                     epilog="examples:\n  denoise-jax data build photos\n  denoise-jax data "
                     "build sidd --manual-dir ~/SIDD_Small_sRGB_Only\n  denoise-jax data list",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = commands.add_parser(
        "build", help="build photos (downloads Debian packages), or NAME from a folder you "
        "downloaded",
        description="photos: fetch 8 Debian packages with `apt-get download`, extract the "
        "photographs, write <data-dir>/{train,val}/*.png (default ~/.cache/denoise_jax/photos, "
        "about 650 MB downloaded, a few minutes). sidd|renoir|nind|paired_folder: scan "
        "--manual-dir and write <data-dir>/NAME/1.0.0 (array_record).")
    build.add_argument("name", metavar="NAME", help="photos, sidd, renoir, nind or paired_folder")
    build.add_argument("--manual-dir", metavar="PATH",
                       help="the folder holding the downloaded files (not for photos)")
    build.add_argument("--data-dir", metavar="DIR",
                       help="where to write (default: photos ~/.cache/denoise_jax/photos or "
                       "$DENOISE_JAX_PHOTOS; others $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    build.add_argument("--overwrite", action="store_true",
                       help="rebuild even if a build already exists")
    build.add_argument("--debs", metavar="DIR",
                       help="photos: take the .deb files from DIR instead of downloading them")
    build.add_argument("--update-manifest", action="store_true",
                       help="photos: record this build as the package's manifest instead of "
                       "checking against it (for maintainers changing the selection)")
    listing = commands.add_parser(
        "list", help="list the buildable data sets and what is built",
        description="List the buildable data sets, the folder layout each expects, and "
        "what is already built in the data folder.")
    listing.add_argument("--data-dir", metavar="DIR",
                         help="where to look (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    return parser


def run(args: argparse.Namespace) -> int:
    """The CLI's `data`: `args.rest` holds every argument after the command name."""
    return main(args.rest)


def main(argv: list[str]) -> int:
    """Runs `denoise-jax data ARGV...`; returns the exit code (0) or raises `UserError`."""
    args = _parser().parse_args(argv)
    if args.command == "build" and args.name.strip().lower() == "photos":
        report = photos.build(args.data_dir, debs=args.debs, overwrite=args.overwrite,
                              update_manifest=args.update_manifest)
        print("\n".join(report.lines()))
        return 0
    from denoise_jax.data import tfds_builders, tfds_load  # load tensorflow_datasets

    if args.command == "build":
        if not args.manual_dir:
            raise UserError(f"{PROG} build {args.name}: needs --manual-dir PATH, the folder "
                            "you downloaded (only `photos` is fetched by this project)")
        report = tfds_builders.build(args.name.strip().lower(), args.manual_dir, args.data_dir,
                                     overwrite=args.overwrite)
        print("\n".join(report.lines()))
        return 0
    data_dir = args.data_dir or tfds_builders.default_data_dir()
    root = photos.default_root()
    status = "built" if os.path.isfile(os.path.join(root, "manifest.tsv")) else "not built"
    print(f"photo corpus (photos:train, photos:val) at {root} [{status}]; build with "
          "`denoise-jax data build photos`")
    print(f"buildable data sets (data folder {data_dir}):")
    for name, cls in tfds_builders.BUILDERS.items():
        built = tfds_load.built_counts(name, data_dir)
        status = ("built: " + ", ".join(f"{s} {n}" for s, n in built.counts.items())
                  if built else "not built")
        print(f"  {name:<14} {cls.DESCRIPTION} [{status}]")
        print(f"  {'':<14} --manual-dir: {cls.LAYOUT}")
    print("read one with the data spec tfds:NAME[:SPLIT][@DATA_DIR]; the real-noise "
          "comparison's 302-pair protocol: "
          "denoise_jax.data.realnoise.realnoise_pairs(sidd_dir, renoir_dir, nind_dir)")
    return 0
