"""The shared evaluation module: one table for classical and learned denoisers.

Training, notebooks, the CLI and the app all call `evaluate`; nothing else in the
project computes PSNR or SSIM (those live in `metrics`, used only from here and from
the training loss reports).

A *method* is a `methods.Method` (or a plain function, given default traits) with the
denoiser call shape `denoise(noisy: [H, W, C] float32, sigma: float | None) -> [H, W, C]
float32`; names resolve through `methods.resolve` (classical methods by name, trained runs
by workdir path, shipped models as `pretrained:NAME`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from denoise_jax import metrics, noise
from denoise_jax.errors import UserError
from denoise_jax.images import atomic_output
from denoise_jax.methods import Method, as_method, resolve

INPUTS = ("float", "8bit")
COLOUR_BIAS = ("per image, the largest |mean(output - clean)| over the channels, in levels "
               "of 255, averaged over the images (a colour cast; 0 for a neutral method)")


def resolve_method(name: str, ensemble: int | None = None) -> Method:
    """Returns the denoiser called `name`: a classical method, a training workdir
    (`DIR`, `DIR@best|latest`) or a shipped model (`pretrained:NAME`); see `methods.resolve`
    (`ensemble`: a learned model's self-ensemble views instead of its own)."""
    return resolve(name, ensemble)


@dataclasses.dataclass
class MethodResult:
    """Mean and per-image scores of one method on one data set."""

    psnr: float
    ssim: float
    sec_per_mp: float
    sigma: str  # how the method got the noise level: "given", "estimated", "blind" or "-"
    per_image: list[dict[str, Any]]
    # mean over images of max over channels |mean(output - clean)|, in levels of 255
    colour_bias: float = 0.0
    # vs the report's reference method: the image where this one does worst, and by how much
    worst: dict[str, Any] | None = None


@dataclasses.dataclass
class Report:
    """What `evaluate` returns; renders as markdown, CSV, JSON and a figure."""

    data: str
    noise: str
    seed: int
    methods: dict[str, MethodResult]
    # "float": noise added in floating point; "8bit": the noisy input clipped to [0, 1] and
    # rounded to 8 bits, as a user's photo file holds it
    input: str = "float"
    reference: str | None = None  # the method each "worst" margin is taken against
    # First few (name, clean, noisy, {method: denoised}) kept for the figure.
    samples: list[tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = dataclasses.field(
        default_factory=list, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "noise": self.noise,
            "seed": self.seed,
            "input": self.input,
            "reference": self.reference,
            "metrics": {**metrics.DEFINITIONS, "colour_bias": COLOUR_BIAS},
            "methods": {k: dataclasses.asdict(v) for k, v in self.methods.items()},
        }

    def to_json(self) -> str:
        return json.dumps(json_safe(self.to_dict()), indent=2)

    def to_markdown(self) -> str:
        worst = f" worst vs {self.reference} |" if self.reference else ""
        lines = [
            f"data: {self.data} | noise: {self.noise} | input: {self.input} | seed: {self.seed}",
            "",
            f"| method | PSNR (dB) | SSIM | colour bias |{worst} s/MP | σ |",
            "|---|---:|---:|---:|" + ("---|" if worst else "") + "---:|---|",
        ]
        for name, r in self.methods.items():
            cell = ""
            if self.reference:
                cell = " - |" if name == self.reference or not r.worst else (
                    f" {r.worst['margin']:+.2f} dB on {r.worst['image']} |")
            lines.append(
                f"| {name} | {r.psnr:.2f} | {r.ssim:.4f} | {r.colour_bias:.2f} |{cell} "
                f"{r.sec_per_mp:.3g} | {r.sigma} |"
            )
        lines += [
            "",
            "PSNR: " + metrics.DEFINITIONS["psnr"],
            "SSIM: " + metrics.DEFINITIONS["ssim"],
            "colour bias: " + COLOUR_BIAS,
        ]
        if self.reference:
            lines.append(f"worst vs {self.reference}: the image where the method's PSNR falls "
                         f"furthest below {self.reference}'s (negative: below)")
        return "\n".join(lines)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["image", "psnr", "ssim", "colour_bias", "seconds", "megapixels"]
        writer.writerow(["method", *columns])
        for name, r in self.methods.items():
            for row in r.per_image:
                writer.writerow([name, *(row[c] for c in columns)])
        return out.getvalue()


def json_safe(obj: Any) -> Any:
    """JSON has no inf: identical images (PSNR inf) are written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def center_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """Crops image: [H, W, C] to at most size×size around its centre."""
    if size is None:
        return image
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


def noisy_version(seed: int, index: int, clean: np.ndarray, model: noise.NoiseModel) -> np.ndarray:
    """The noisy input for image `index`: the same for every method and every run."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
    return np.asarray(model(key, jnp.asarray(clean, jnp.float32)), np.float32)


def as_8bit(noisy: np.ndarray) -> np.ndarray:
    """The noisy image as an 8-bit file holds it: clipped to [0, 1], rounded to 1/255."""
    return (np.rint(np.clip(noisy, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def colour_bias(denoised: np.ndarray, clean: np.ndarray) -> float:
    """max over channels of |mean(denoised - clean)|, in levels of 255 ([H, W, C] in [0, 1])."""
    diff = np.asarray(denoised, np.float64) - np.asarray(clean, np.float64)
    return float(255.0 * np.abs(diff.reshape(-1, diff.shape[-1]).mean(axis=0)).max())


def score(denoised: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """(PSNR, SSIM) of one [H, W, C] image in [0, 1], the project's pinned definitions."""
    x, y = jnp.asarray(denoised, jnp.float32), jnp.asarray(clean, jnp.float32)
    return float(metrics.psnr(x, y, data_range=1.0)), float(metrics.ssim(x, y, data_range=1.0))


def evaluate(
    methods: Sequence[str] | dict[str, Method],
    dataset: Sequence[Any],
    noise_spec: str | None,
    seed: int = 0,
    *,
    crop: int | None = None,
    keep_samples: int = 0,
    progress: bool = True,
    data_name: str | None = None,
    input: str = "float",
    reference: str | None = None,
) -> Report:
    """Scores each method on each image of `dataset`.

    Args:
      methods: method names (see `resolve_method`) or a {name: Method} dict.
      dataset: a sequence of examples with `name`, `clean` [H, W, C] float32 in [0, 1] and
        optionally `noisy` (real pairs; then `noise_spec` must be None or "real").
      noise_spec: a `noise.parse` spec applied to the clean images (same noise for every
        method: keyed by `seed` and the image index).
      crop: centre-crop every image to at most crop×crop first (faster tables).
      keep_samples: keep the first n images' outputs in `Report.samples` for a figure.
      input: "float" (noise added in floating point) or "8bit" (each noisy input clipped and
        rounded to 8 bits, as a user's file holds it; synthetic noise only).
      reference: a method name; each other method's worst image margin against it is
        reported (e.g. "bm3d").
    """
    if input not in INPUTS:
        raise UserError(f"unknown input {input!r}: use {' or '.join(INPUTS)}")
    if isinstance(methods, dict):
        resolved = {name: as_method(name, m) for name, m in methods.items()}
    else:
        resolved = {name: resolve_method(name) for name in methods}
    if not resolved:
        raise UserError("no methods to evaluate: pass --methods, e.g. noisy,nlm,bm3d")
    if len(dataset) == 0:
        raise UserError("the data set is empty: nothing to evaluate")
    real = noise_spec in (None, "real")
    model = None if real else noise.parse(noise_spec)
    if real and getattr(dataset[0], "noisy", None) is None:
        raise UserError(
            "no noise given and the data has no noisy images: pass --noise, e.g. gaussian:25"
        )

    per_method: dict[str, list[dict[str, Any]]] = {name: [] for name in resolved}
    warmed: set[tuple[str, tuple[int, ...]]] = set()
    sigma_source: dict[str, str] = {}
    samples = []
    bar = tqdm(
        total=len(dataset) * len(resolved),
        desc="evaluating",
        unit="run",
        disable=not progress or None,
    )
    for index in range(len(dataset)):
        example = dataset[index]
        clean = center_crop(example.clean, crop)
        if real:
            noisy = center_crop(np.asarray(example.noisy, np.float32), crop)
            if noisy.shape != clean.shape:
                raise UserError(
                    f"pair {example.name!r}: noisy {noisy.shape} and clean {clean.shape} "
                    "differ in shape"
                )
        else:
            noisy = noisy_version(seed, index, clean, model)
            if input == "8bit":
                noisy = as_8bit(noisy)
        known_sigma = None if model is None or model.blind else model.sigma
        outputs = {}
        for name, method in resolved.items():
            bar.set_postfix_str(f"{name} on {example.name}")
            if method.compiles_per_shape and (name, noisy.shape) not in warmed:
                method(noisy, known_sigma)  # compile outside the timing: s/MP is steady state
                warmed.add((name, noisy.shape))
            start = time.perf_counter()
            denoised = np.asarray(method(noisy, known_sigma), np.float32)
            seconds = time.perf_counter() - start
            if denoised.shape != clean.shape:
                raise UserError(
                    f"method {name!r} returned shape {denoised.shape} "
                    f"for an image of shape {clean.shape}"
                )
            p, s = score(denoised, clean)
            megapixels = clean.shape[0] * clean.shape[1] / 1e6
            per_method[name].append(
                {
                    "image": example.name,
                    "psnr": p,
                    "ssim": s,
                    "colour_bias": colour_bias(denoised, clean),
                    "seconds": seconds,
                    "megapixels": megapixels,
                }
            )
            sigma_source[name] = _sigma_source(method, known_sigma)
            outputs[name] = denoised
            bar.update()
        if index < keep_samples:
            samples.append((example.name, clean, noisy, outputs))
    bar.close()

    if reference is not None and reference not in per_method:
        raise UserError(f"reference method {reference!r} is not among the methods "
                        f"({', '.join(per_method)})")
    results = {}
    for name, rows in per_method.items():
        total_mp = sum(r["megapixels"] for r in rows)
        results[name] = MethodResult(
            psnr=float(np.mean([r["psnr"] for r in rows])),
            ssim=float(np.mean([r["ssim"] for r in rows])),
            sec_per_mp=sum(r["seconds"] for r in rows) / total_mp,
            sigma=sigma_source[name],
            per_image=rows,
            colour_bias=float(np.mean([r["colour_bias"] for r in rows])),
            worst=None if reference in (None, name) else worst_margin(rows, per_method[reference]),
        )
    return Report(
        data=data_name or getattr(dataset, "spec", "?"),
        noise=noise_spec or "real",
        seed=seed,
        methods=results,
        samples=samples,
        input=input if not real else "real pairs",
        reference=reference,
    )


def worst_margin(rows: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> dict:
    """{"image", "margin"}: the image with the lowest PSNR(method) - PSNR(reference), in dB."""
    margins = [(r["psnr"] - ref["psnr"], r["image"]) for r, ref in zip(rows, reference,
                                                                         strict=True)]
    margin, image = min(margins)
    return {"image": image, "margin": float(margin)}


def _sigma_source(method: Method, known_sigma: float | None) -> str:
    if not method.uses_sigma:
        return "-"
    if method.blind:
        return "blind"
    return "given" if known_sigma is not None else "estimated"


def figure(report: Report, path: str, zoom: int = 4) -> None:
    """Writes a grid PNG: one row per kept image, columns noisy | each method | clean.

    Each panel shows the whole image and, below it, a zoomed centre crop (1/zoom of the
    side) so differences in fine texture are visible.
    """
    # matplotlib is heavy (~0.4 s): imported here, only evaluations that draw a figure pay.
    # A bare Figure (no pyplot): no global backend switch, so notebooks keep showing plots.
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if not report.samples:
        raise UserError("no samples kept for the figure: call evaluate(..., keep_samples=n)")
    # The noisy input gets its own column unless "noisy" is already one of the methods.
    columns = [*(["input"] if "noisy" not in report.methods else []), *report.methods, "clean"]
    n = len(report.samples)
    fig = Figure(figsize=(2.4 * len(columns), 4.8 * n))
    axes = fig.subplots(2 * n, len(columns), squeeze=False)
    for row, (image_name, clean, noisy, outputs) in enumerate(report.samples):
        panels = {"input": noisy, **outputs, "clean": clean}
        for col, name in enumerate(columns):
            image = np.clip(panels[name], 0.0, 1.0)
            h, w = image.shape[:2]
            ch, cw = max(8, h // zoom), max(8, w // zoom)
            top, left = (h - ch) // 2, (w - cw) // 2
            crop = image[top : top + ch, left : left + cw]
            cmap = "gray" if image.shape[-1] == 1 else None
            for r, img in ((2 * row, image), (2 * row + 1, crop)):
                ax = axes[r, col]
                ax.imshow(
                    img.squeeze(-1) if cmap else img,
                    cmap=cmap,
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",
                )
                ax.set_xticks([])
                ax.set_yticks([])
            axes[2 * row, col].add_patch(
                Rectangle((left, top), cw, ch, fill=False, edgecolor="yellow", linewidth=1)
            )
            if name == "clean":
                title = f"clean\n{image_name}"
            elif name == "input":
                p, s = score(np.clip(noisy, 0.0, 1.0), clean)
                title = f"noisy input\n{p:.2f} dB / {s:.3f}"
            else:
                entry = next(e for e in report.methods[name].per_image if e["image"] == image_name)
                title = f"{name}\n{entry['psnr']:.2f} dB / {entry['ssim']:.3f}"
            axes[2 * row, col].set_title(title, fontsize=8)
    fig.suptitle(f"{report.data}, noise {report.noise} (PSNR / SSIM)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
