"""`denoise-jax denoise`: denoise image files with a trained, shipped or classical method.

Wired into cli.py by `HELP`, `add_arguments(parser)` and `run(args)`.

Behaviour:
- INPUT... are files, folders (their images, not recursive) or glob patterns. With one
  input, OUT is the output file (its extension picks the format), or a folder when it
  already is one or ends with '/'. With several, OUT is a folder (created); each output is
  named after its input's stem with the input's extension (GIF becomes PNG) or `--format`.
- Outputs never overwrite an input or a reference: such a plan is refused before anything
  is read, as are two inputs that would write the same output name.
- Grey, RGB and RGBA come out as they came; alpha is copied bit-exact (never denoised); a
  16-bit input gives a 16-bit output in PNG/TIFF (JPEG/BMP hold 8 bits: a note says so).
- A failure on one image of a batch (corrupt file, reference of another shape, alpha into
  JPEG, ...) is reported as one `warning:` line and the batch goes on; at the end the
  command fails with exit code 2 saying how many failed (the JSON lists them). With one
  input any failure is the error. Problems with the whole command (missing inputs,
  unknown model, unwritable OUT) stop it before the first image.
- `--reference` scores the output as written (quantised to its bit depth) with
  `evaluate.score`, and the noisy input too, for comparison. `seconds` in the JSON is the
  denoising time of the image (reading and writing excluded).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from denoise_jax import baselines, images, pretrained
from denoise_jax.ensemble import VIEWS
from denoise_jax.errors import UserError, report_user_error

HELP = "denoise your photos: files, folders or globs -> -o OUT (tiled, any size)"
EXAMPLES = textwrap.dedent(
    """\
    examples:
      denoise-jax denoise noisy.png -o clean.png --workdir runs/cdncnn
      denoise-jax denoise photos/ -o denoised/ --workdir runs/cdncnn@latest --ensemble
      denoise-jax denoise 'scans/*.tif' -o out/ --method bm3d --sigma 15
      denoise-jax denoise noisy.png -o out.png --method nlm --reference clean.png --json r.json
      denoise-jax denoise noisy/ -o out/ --model NAME --reference clean/ --json scores.json

    --reference FOLDER matches references to inputs by file stem (a.png <-> a.tif).
    Exit codes: 0 all written; 2 an error, or some images of a batch failed (see warnings).
    """
)

FORMATS = {"png": ".png", "tif": ".tif", "tiff": ".tiff", "jpg": ".jpg", "jpeg": ".jpeg",
           "bmp": ".bmp"}
_SIXTEEN_BIT = (".png", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the `denoise` arguments to `parser` (a subparser of the CLI)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    parser.description = "Denoise image files (grey, RGB, RGBA; 8 or 16 bit)."
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (one input) or folder (several inputs, or a path "
                        "ending in '/')")
    shipped = ", ".join(pretrained.names()) or "none shipped yet"
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="NAME",
                       help=f"a pretrained model shipped with the package ({shipped}); "
                       "default: the best shipped one for each image's channels "
                       f"({pretrained.DEFAULT_FOR_CHANNELS[3]} for colour, "
                       f"{pretrained.DEFAULT_FOR_CHANNELS[1]} for grey)")
    which.add_argument("--workdir", metavar="DIR",
                       help="a training workdir (its best checkpoint; DIR@latest for the "
                       "newest)")
    which.add_argument("--method", metavar="NAME",
                       help=f"a classical method: {', '.join(baselines.names())}")
    parser.add_argument("--sigma", type=float, metavar="S",
                        help="noise level on the 0-255 scale for --method (default: "
                        "estimated per image); learned models are blind and ignore it")
    parser.add_argument("--tile", type=int, default=512, metavar="N",
                        help="tile side for models on large images (default: %(default)s)")
    parser.add_argument("--overlap", type=int, default=32, metavar="M",
                        help="pixels shared by neighbouring tiles (default: %(default)s)")
    parser.add_argument("--tile-batch", type=int, default=1, metavar="B",
                        help="tiles per model call (default: %(default)s)")
    parser.add_argument("--ensemble", nargs="?", type=int, const=8, choices=tuple(VIEWS),
                        metavar="N", help="self-ensemble: average over N rotations/mirrors "
                        "of each tile (1, 2, 4 or 8; bare --ensemble = 8), better and N times "
                        "slower (default: the model's own setting: 4 for the shipped gauss_rgb, "
                        "2 for gauss_gray, 1 for camera; 1 for --method)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="model compute dtype (default: %(default)s)")
    parser.add_argument("--format", choices=sorted(FORMATS), default=None,
                        help="output format (default: the input's; GIF becomes PNG)")
    parser.add_argument("--reference", metavar="REF",
                        help="clean reference: a file (one input) or a folder matched by "
                        "stem; prints PSNR/SSIM")
    parser.add_argument("--json", metavar="FILE",
                        help="write per-image results (seconds, megapixels, PSNR/SSIM) as JSON")


# ---------------------------------------------------------------------------------------
# Planning: which file goes where (all checks before any image is read)


def _ext_of(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def plan_outputs(inputs: list[str], output: str, fmt: str | None) -> list[str]:
    """Output path for each input; refuses collisions and overwriting an input."""
    single = len(inputs) == 1
    folder_mode = not single or os.path.isdir(output) or output.endswith(("/", os.sep))
    if folder_mode:
        if os.path.exists(output) and not os.path.isdir(output):
            raise UserError(f"output {output!r} is a file; with several inputs -o names a "
                            "folder")
        outs = []
        for path in inputs:
            stem, ext = os.path.splitext(os.path.basename(path))
            if fmt:
                ext = FORMATS[fmt]
            elif ext.lower() not in images.WRITE_FORMATS:
                ext = ".png"
            outs.append(os.path.join(output, stem + ext))
    else:
        ext = _ext_of(output)
        if ext not in images.WRITE_FORMATS:
            raise UserError(
                f"output {output!r} needs an image extension ({', '.join(sorted(FORMATS))}), "
                "or end it with '/' for a folder"
            )
        if fmt and FORMATS[fmt] != ext and {FORMATS[fmt], ext} not in ({".jpg", ".jpeg"},
                                                                        {".tif", ".tiff"}):
            raise UserError(f"--format {fmt} disagrees with the output name {output!r}")
        outs = [output]
    seen: dict[str, str] = {}
    for source, out in zip(inputs, outs, strict=True):
        key = os.path.normcase(os.path.abspath(out))
        if key in seen:
            raise UserError(
                f"{seen[key]!r} and {source!r} would both be written to {out!r}; "
                "denoise them into different folders or pick --format"
            )
        seen[key] = source
    return outs


def match_references(inputs: list[str], reference: str | None) -> list[str | None]:
    """The reference file of each input: one file for one input, or a folder by stem."""
    if reference is None:
        return [None] * len(inputs)
    if os.path.isdir(reference):
        by_stem: dict[str, str] = {}
        for path in images.list_images([reference]):
            stem = os.path.splitext(os.path.basename(path))[0]
            if stem in by_stem:
                raise UserError(f"reference folder {reference!r} has two images named "
                                f"{stem!r}: {by_stem[stem]!r} and {path!r}")
            by_stem[stem] = path
        refs = []
        for path in inputs:
            stem = os.path.splitext(os.path.basename(path))[0]
            if stem not in by_stem:
                raise UserError(f"no reference for {path!r} in {reference!r} "
                                f"(expected an image named {stem}.*)")
            refs.append(by_stem[stem])
        return refs
    if not os.path.exists(reference):
        raise UserError(f"no such reference file or folder: {reference!r}")
    if len(inputs) != 1:
        raise UserError(f"--reference {reference!r} is one file but there are {len(inputs)} "
                        "inputs; pass a folder of references matched by file stem")
    return [reference]


# ---------------------------------------------------------------------------------------
# The method


def _sigma01(sigma255: float | None) -> float | None:
    if sigma255 is None:
        return None
    if not math.isfinite(sigma255) or sigma255 < 0:
        raise UserError(f"--sigma must be a number >= 0 on the 0-255 scale, got {sigma255}")
    return sigma255 / 255.0


def build_method(args: argparse.Namespace) -> tuple[Callable, str, bool]:
    """(denoise(noisy, sigma) -> out, description, is_classical) from the arguments."""
    from denoise_jax import checkpoints, inference, methods  # load jax: only when run
    from denoise_jax.ensemble import self_ensemble

    options = dict(tile=args.tile, overlap=args.overlap, batch=args.tile_batch,
                   ensemble=args.ensemble, dtype=args.dtype, progress=True)
    if args.method:
        base, views = baselines.get_baseline(args.method), args.ensemble or 1
        if views > 1:
            def method(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
                return self_ensemble(lambda x: base(x, sigma), noisy, views)
        else:
            method = base
        return method, args.method + _views_label(views), True
    if not args.model and not args.workdir:
        names = {channels: pretrained.default_for(channels) for channels in (3, 1)}
        views = {c: methods.ensemble_views(checkpoints.load_config(pretrained.find(name)),
                                           args.ensemble) for c, name in names.items()}
        return _default_method(options), (
            f"the shipped {names[3]} (colour{_views_label(views[3], ', ', '')}) / {names[1]} "
            f"(grey{_views_label(views[1], ', ', '')}) models, the default (choose with --model, "
            "--method or --workdir)"), False
    if args.model:
        folder = pretrained.find(args.model)
        denoiser = inference.Denoiser.from_workdir(folder, "best", name=args.model, **options)
        label = f"pretrained {args.model}"
    else:
        path, which = methods.parse_spec(args.workdir)
        denoiser = inference.Denoiser.from_workdir(path, which, **options)
        label = f"workdir {path}@{which or 'best'} (step {denoiser.step})"
    if args.sigma is not None:
        _note("--sigma is ignored: learned models are blind")
    return denoiser, label + _views_label(denoiser.ensemble), False


def _views_label(views: int, start: str = " (", end: str = ")") -> str:
    """" (x4 self-ensemble)" for 4 views, "" for 1."""
    return f"{start}x{views} self-ensemble{end}" if views > 1 else ""


def _default_method(options: dict[str, Any]) -> Callable:
    """denoise(noisy, sigma) with the default shipped model for the image's channels."""
    from denoise_jax import inference

    loaded: dict[str, inference.Denoiser] = {}

    def method(noisy: np.ndarray, sigma: float | None) -> np.ndarray:
        name = pretrained.default_for(noisy.shape[-1])
        if name not in loaded:
            loaded[name] = inference.Denoiser.from_workdir(pretrained.find(name), "best",
                                                           name=name, **options)
        return loaded[name](noisy, sigma)

    return method


# ---------------------------------------------------------------------------------------
# Running


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def _score_line(row: dict[str, Any]) -> str:
    return (f"  PSNR {row['psnr']:.2f} dB  SSIM {row['ssim']:.4f}   "
            f"(input {row['input_psnr']:.2f} dB / {row['input_ssim']:.4f})")


def denoise_one(
    method: Callable, classical: bool, sigma: float | None, source: str, out_path: str,
    reference: str | None, notes: set[str],
) -> dict[str, Any]:
    """Reads, denoises, writes (and scores) one image; -> its JSON row."""
    from denoise_jax import evaluate

    image = images.read_image(source)
    clean = None
    if reference is not None:
        clean = images.read_image(reference).pixels
        if clean.shape != image.pixels.shape:
            raise UserError(
                f"reference {reference!r} is {'×'.join(map(str, clean.shape))} but "
                f"{source!r} is {'×'.join(map(str, image.pixels.shape))} (H×W×C): they must match"
            )
    row: dict[str, Any] = {"input": source, "output": out_path}
    if classical:
        if sigma is None:
            sigma = baselines.estimate_sigma(image.pixels)
            row["sigma"] = {"value_255": 255 * sigma, "source": "estimated"}
        else:
            row["sigma"] = {"value_255": 255 * sigma, "source": "given"}
    start = time.perf_counter()
    out = np.asarray(method(image.pixels, sigma), np.float32)
    seconds = time.perf_counter() - start
    if out.shape != image.pixels.shape:
        raise ValueError(f"the method returned {out.shape} for an image of {image.pixels.shape}")
    depth = image.bit_depth
    if depth == 16 and _ext_of(out_path) not in _SIXTEEN_BIT:
        depth = 8
        if "depth" not in notes:
            notes.add("depth")
            _note(f"{_ext_of(out_path)} holds 8 bits: 16-bit inputs are written as 8-bit "
                  "(use --format png or tif to keep 16)")
    images.write_image(out_path, out, bit_depth=depth, alpha=image.alpha)
    row.update(seconds=seconds, megapixels=out.shape[0] * out.shape[1] / 1e6, bit_depth=depth,
               channels=out.shape[2], alpha=image.alpha is not None)
    if clean is not None:
        written = images.from_uint(images.to_uint(out, depth))
        psnr, ssim = evaluate.score(written, clean)
        input_psnr, input_ssim = evaluate.score(np.clip(image.pixels, 0.0, 1.0), clean)
        row.update(reference=reference, psnr=psnr, ssim=ssim, input_psnr=input_psnr,
                   input_ssim=input_ssim)
    return row


def check_output_folders(outputs: list[str]) -> None:
    """Creates the output folders now, so an unwritable OUT stops the run before any work."""
    for folder in sorted({os.path.dirname(os.path.abspath(p)) for p in outputs}):
        try:
            os.makedirs(folder, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"cannot write into {folder!r}: part of that path is a file"
                            ) from None
        except OSError as e:
            reason, todo = images.place_error(e.errno) or ((e.strerror or str(e)).lower(), "")
            raise UserError(f"cannot create the output folder {folder!r}: {reason}"
                            + (f"; {todo}" if todo else "")) from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"cannot write into {folder!r}: permission denied; write to a "
                            "folder you can write to")


def run(args: argparse.Namespace) -> int:
    """Runs `denoise-jax denoise`; returns 0, or raises `UserError` (exit code 2)."""
    from tqdm.auto import tqdm

    from denoise_jax import evaluate

    inputs = images.list_images(args.inputs)
    outputs = plan_outputs(inputs, args.output, args.format)
    references = match_references(inputs, args.reference)
    protected = inputs + [r for r in references if r is not None]
    for out in outputs:
        images.ensure_not_input(out, protected)
    if args.json:
        images.ensure_not_input(args.json, protected)
        if _ext_of(args.json) in images.IMAGE_EXTENSIONS or args.json in outputs:
            raise UserError(f"--json {args.json!r} looks like an image path; use a .json name")
    sigma = _sigma01(args.sigma)
    method, label, classical = build_method(args)
    check_output_folders(outputs)

    print(f"denoising {len(inputs)} image(s) with {label}", flush=True)
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    notes: set[str] = set()
    bar = tqdm(total=len(inputs), desc="images", unit="img", disable=None)
    try:
        for source, out_path, reference in zip(inputs, outputs, references, strict=True):
            bar.set_postfix_str(os.path.basename(source))
            try:
                row = denoise_one(method, classical, sigma, source, out_path, reference, notes)
            except UserError as e:
                if len(inputs) == 1:
                    raise
                failed.append({"input": source, "error": str(e)})
                bar.write(f"warning: skipped {source!r}: {e}", file=sys.stderr)
                bar.update()
                continue
            rows.append(row)
            line = (f"{source} -> {out_path}  ({row['megapixels']:.2f} MP, "
                    f"{row['seconds']:.2f} s)")
            if "sigma" in row and row["sigma"]["source"] == "estimated":
                line += f"  sigma estimated {row['sigma']['value_255']:.1f}/255"
            bar.write(line)
            if "psnr" in row:
                bar.write(_score_line(row))
            bar.update()
    finally:
        bar.close()

    summary: dict[str, Any] = {"method": label, "tile": args.tile, "overlap": args.overlap,
                               "ensemble": args.ensemble,  # None: each model's own
                               "images": rows, "failed": failed}
    scored = [r for r in rows if "psnr" in r]
    if scored:
        summary["mean"] = {k: float(np.mean([r[k] for r in scored]))
                           for k in ("psnr", "ssim", "input_psnr", "input_ssim")}
        if len(scored) > 1:
            print("mean:" + _score_line(summary["mean"]))
    if args.json:
        images.write_text(args.json, json.dumps(evaluate.json_safe(summary), indent=2) + "\n")
        print(f"wrote {args.json}")
    if failed:
        raise UserError(f"{len(failed)} of {len(inputs)} images failed (see the warnings "
                        f"above); the other {len(rows)} were written")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m denoise_jax.denoise_cmd ...`), as `denoise-jax denoise`."""
    parser = argparse.ArgumentParser(prog="denoise-jax denoise")
    add_arguments(parser)
    return report_user_error(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
