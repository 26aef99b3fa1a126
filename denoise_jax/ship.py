"""Turns a finished training run into a shipped pretrained model with its model card.

    python -m denoise_jax.ship RUN_DIR NAME [--which latest] [--seeds 0,1,2,3]
    python -m denoise_jax.ship --rescore NAME    # re-score a shipped model's card

1. exports the run's evaluation weights (EMA) to `denoise_jax/pretrained/NAME/`
   (`methods.export`: no optimizer state, a few MB);
2. scores the shipped model on the held-out test photos next to the noisy input, NLM and
   BM3D with `denoise_jax.evaluate` — the same code as `denoise-jax eval` — at the noise
   levels of its kind (Gaussian: σ = 15, 25, 50 with σ given to NLM and BM3D; camera: the
   synthetic camera noise, σ estimated), averaged over the noise seeds;
3. scores it on the photo corpus's held-out `photos:val` (24 whole photos it never saw) at
   the same noise levels, with the noisy input in floating point and as an 8-bit file holds
   it, the colour-bias column and the worst photo's margin against BM3D;
4. writes `MODEL_CARD.md`: config, data, steps, hardware, training time, the tables and the
   `denoise-jax eval` commands that reproduce each row.
`--rescore NAME` redoes steps 2 and 3 for a model already shipped (after a change to how its
denoiser runs, say) and replaces the card's tables and config, keeping the training lines.
`--ensemble N` sets the shipped model's self-ensemble (config `ensemble`: the rotations and
mirrors its denoiser averages, `denoise_jax/ensemble.py`) before it is scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import re
import sys

import jax
import numpy as np

from denoise_jax import checkpoints, curves, data, evaluate, methods, metrics, pretrained, train
from denoise_jax.ensemble import NAMES, VIEWS
from denoise_jax.errors import UserError, report_user_error
from denoise_jax.images import write_text
from denoise_jax.inference import Denoiser

GAUSS_LEVELS = (15, 25, 50)


def protocol(config) -> list[tuple[str, str]]:
    """[(data spec, noise spec)] a model trained with `config` is scored on."""
    colour = not config.data.train.endswith(":gray")
    test = "skimage:test:rgb" if colour else "skimage:test:gray"
    if config.noise == "camera":
        return [(test, "camera")]
    return [(test, f"gaussian:{s}") for s in GAUSS_LEVELS]


def photos_protocol(config) -> list[tuple[str, str]]:
    """[(data spec, noise spec)] on the photo corpus's val split, by the model's kind."""
    colour = not config.data.train.endswith(":gray")
    val = "photos:val" if colour else "photos:val:gray"
    if config.noise == "camera":
        return [(val, "camera")]
    return [(val, f"gaussian:{s}") for s in GAUSS_LEVELS]


def photos_table(method: str, name: str, data_spec: str, noise_spec: str, seed: int = 0,
                 crop: int | None = None) -> str:
    """Markdown: noisy, NLM, BM3D and the model on `data_spec`, float and 8-bit inputs."""
    dataset = data.load(data_spec)
    model = {name: evaluate.resolve_method(method)}
    results = {}
    for kind in evaluate.INPUTS:
        found = with_classical(model, dataset, data_spec, noise_spec, seed, kind, crop)
        for label, r in found.items():
            if label != "BM3D":
                r.worst = evaluate.worst_margin(r.per_image, found["BM3D"].per_image)
        results[kind] = found
    for label, seconds in classical_speed(dataset, data_spec, noise_spec, seed, crop).items():
        results["8bit"][label] = dataclasses.replace(results["8bit"][label],
                                                     sec_per_mp=seconds)
    lines = ["| method | PSNR float / 8-bit (dB) | SSIM float / 8-bit | colour bias float / "
             "8-bit | worst vs BM3D, 8-bit | s/MP | σ |", "|---|---:|---:|---:|---|---:|---|"]
    for label in (*CLASSICAL, name):
        f, q = (results[k][label] for k in evaluate.INPUTS)
        worst = "-" if q.worst is None else f"{q.worst['margin']:+.2f} dB ({q.worst['image']})"
        lines.append(f"| {label} | {f.psnr:.2f} / {q.psnr:.2f} | {f.ssim:.4f} / {q.ssim:.4f} | "
                     f"{f.colour_bias:.2f} / {q.colour_bias:.2f} | {worst} | "
                     f"{q.sec_per_mp:.3g} | {q.sigma} |")
    return "\n".join(lines)


CLASSICAL = {"noisy": "noisy", "NLM": "nlm", "BM3D": "bm3d"}
SPEED_CROP = 512


def speed_where(config, crop: int | None) -> str:
    """Where `classical_speed` times NLM and BM3D, in words."""
    side = min(crop or SPEED_CROP, SPEED_CROP)
    first = data.load(photos_protocol(config)[0][0]).names[0]
    return f"on at most the centre {side}×{side} of {first}; their scores are from the cache"


def classical_speed(dataset, data_spec: str, noise_spec: str, seed: int,
                    crop: int | None) -> dict[str, float]:
    """{label: s/MP} of NLM and BM3D timed now, on the centre `SPEED_CROP`² (or `crop`²) of
    the first photo as an 8-bit input: their scores come from the cache, which may have been
    filled on another machine, and a card's speed ratios must be this machine's."""
    timed = {label: evaluate.resolve_method(m) for label, m in CLASSICAL.items()
             if m != "noisy"}
    report = evaluate.evaluate(timed, dataset.subset([0]), noise_spec, seed,
                               data_name=data_spec, input="8bit",
                               crop=min(crop or SPEED_CROP, SPEED_CROP))
    return {label: r.sec_per_mp for label, r in report.methods.items()}


SCORES = os.path.join(pretrained.ROOT, "classical_scores")


def scores_cache() -> str:
    """Where classical methods' scores are kept: $DENOISE_JAX_SCORES, else `SCORES` in the
    checkout, committed beside the cards: BM3D runs at 183-241 s/MP (the cards' s/MP), 22-29
    minutes for one photos:val table, so a new machine must not have to recompute them."""
    return os.path.expanduser(os.environ.get("DENOISE_JAX_SCORES") or SCORES)


def classical_results(dataset, data_spec: str, noise_spec: str, seed: int, kind: str,
                      crop: int | None) -> dict[str, evaluate.MethodResult]:
    """noisy, NLM and BM3D on these exact inputs: computed once, then read from the cache
    (BM3D takes minutes per megapixel; the same noisy inputs give the same scores)."""
    files = getattr(dataset, "files", ())
    identity = [data_spec, noise_spec, seed, kind, crop, list(dataset.names),
                [os.path.getsize(f) for f in files]]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:20]
    path = os.path.join(scores_cache(), f"{key}.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return {k: evaluate.MethodResult(**v) for k, v in json.load(f).items()}
    methods = {label: evaluate.resolve_method(m) for label, m in CLASSICAL.items()}
    report = evaluate.evaluate(methods, dataset, noise_spec, seed, data_name=data_spec,
                               input=kind, crop=crop)
    os.makedirs(scores_cache(), exist_ok=True)
    write_text(path, json.dumps({k: dataclasses.asdict(v) for k, v in report.methods.items()}))
    return report.methods


def with_classical(models: dict, dataset, data_spec: str, noise_spec: str, seed: int,
                   kind: str, crop: int | None) -> dict[str, evaluate.MethodResult]:
    """noisy, NLM and BM3D (cached) then `models` ({label: method}), scored on the same
    noisy inputs."""
    found = classical_results(dataset, data_spec, noise_spec, seed, kind, crop)
    found.update(evaluate.evaluate(models, dataset, noise_spec, seed, data_name=data_spec,
                                   input=kind, crop=crop).methods)
    return found


def photos_section(method: str, name: str, config, seed: int = 0,
                   crop: int | None = None) -> str:
    """The card's photos:val section: one table per noise level, and how to reproduce it."""
    lines = ["## Held-out scores: `photos:val`", "",
             "The photo corpus's 24 held-out photos (`denoise-jax data build photos`; every "
             "package is represented, and no photo or scene of them is in `photos:train`), "
             f"whole photos, noise seed {seed}. *float*: noise added in floating point; "
             "*8-bit*: the noisy input clipped and rounded to 8 bits, as a photo file holds "
             f"it. Colour bias: {evaluate.COLOUR_BIAS}. Worst vs BM3D: the photo where the "
             "method falls furthest below BM3D, and by how much. s/MP on this machine "
             f"(8-bit run; NLM's and BM3D's timed in the same run, {speed_where(config, crop)})."
             + (KEEPS_MEANS if methods.keeps_means(config) else "")
             + ensemble_note(config), ""]
    for data_spec, noise_spec in photos_protocol(config):
        table = photos_table(method, name, data_spec, noise_spec, seed, crop)
        print(f"{data_spec} {noise_spec}\n{table}\n", flush=True)
        command = eval_command(name, data_spec, noise_spec, seed)
        lines += [f"### `{data_spec}`, noise `{noise_spec}`", "", table, "",
                  f"Reproduce: `{command} --input 8bit --worst-vs bm3d` (and without "
                  "`--input 8bit`)", ""]
    return "\n".join(lines)


KEEPS_MEANS = (" The model's denoiser puts the noisy input's 16-pixel local means back after "
               "the network (config `keep_means`, `denoise_jax/local_means.py`), in every "
               "row here as in `denoise-jax denoise`.")


def ensemble_note(config) -> str:
    views = methods.ensemble_views(config)
    if views == 1:
        return ""
    return (f" It averages the network over {views} views of each tile ({NAMES[views]}; config "
            "`ensemble`, `denoise_jax/ensemble.py`) in every row here as in `denoise-jax "
            "denoise`; its s/MP includes them.")


def set_ensemble(folder: str, views: int | None):
    """The shipped model's config, with `ensemble` set to `views` (and written) if given."""
    config = checkpoints.load_config(folder)
    if views is not None:
        config.ensemble = views
        write_text(os.path.join(folder, checkpoints.CONFIG), checkpoints.config_json(config))
    return config


def rescore(name: str, root: str = pretrained.ROOT, seeds: tuple[int, ...] = (0, 1),
            crop: int | None = None, ensemble: int | None = None) -> str:
    """Re-scores a shipped model: replaces its card's tables and config (everything from the
    first held-out section on) and keeps the lines on its training; returns the card.
    `ensemble`: set the model's self-ensemble views first (`set_ensemble`)."""
    folder = pretrained.find(name, root)
    text = pretrained.model_card(name, root)
    start = text.find(PHOTOS_HEADING)
    if start < 0:  # a card from before the corpus
        start = text.find(OLD_HEADING)
    if start < 0:
        raise UserError(f"{os.path.join(folder, pretrained.CARD)} has no '{PHOTOS_HEADING}' "
                        f"section to replace; ship the run again instead of --rescore")
    config = set_ensemble(folder, ensemble)
    method = f"pretrained:{name}" if root == pretrained.ROOT else folder
    text = text[:start] + scores_sections(name, method, folder, list(seeds), config, crop)
    write_text(os.path.join(folder, pretrained.CARD), text)
    return text


def validation_references(config) -> dict[str, float]:
    """NLM's and BM3D's PSNR on exactly the run's validation inputs (its `eval` settings),
    to draw beside its learning curve."""
    dataset = train.validation_set(config)
    noise_spec = config.eval.get("noise")
    if dataset is None or noise_spec in (None, "real"):
        return {}
    found = classical_results(dataset, config.eval.data, noise_spec, config.seed, "float",
                              config.eval.get("crop") or None)
    return {f"{label} (σ given)": found[label].psnr for label in ("NLM", "BM3D")}


def campaign_curve(run_dir: str, earlier: list[str], spec: str | None) -> list[dict]:
    """The validation curve of the campaign a model is shipped from: the curve the model the
    run started from was shipped with (`HISTORY` in its folder; `spec` is the run's
    `init_from`), then the run's own evaluations, placed after the CPU-hours of all earlier
    training (the card's `earlier` lines, see `started_from`), so cycles line up end to end."""
    source = os.path.join(methods.parse_spec(spec)[0], HISTORY) if spec else ""
    prior = []
    if os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            prior = [json.loads(line) for line in f if line.strip()]
    offset = sum(float(hours) for line in earlier if line.startswith(EARLIER)
                 for hours in re.findall(r"([\d.]+) CPU-hours", line))
    run = os.path.basename(os.path.normpath(run_dir))
    return prior + [{"run": run, "cpu_hours": round(offset + hours, 4), "step": step,
                     "psnr": psnr} for hours, step, psnr in curves.val_curve(run_dir)]


def learning_curve(history: list[dict], path: str, name: str, config) -> None:
    """The campaign's validation PSNR against CPU-hours (one line per run, `campaign_curve`),
    NLM and BM3D drawn on the same inputs."""
    where = f"{config.eval.data}, {config.eval.noise}" + (
        f", centre {config.eval.crop}² crops" if config.eval.get("crop") else "")
    runs: dict[str, list[tuple[float, int, float]]] = {}
    for row in history:
        runs.setdefault(row["run"], []).append((row["cpu_hours"], row["step"], row["psnr"]))
    curves.plot(runs, path, validation_references(config),
                title=f"{name}: validation PSNR ({where})")


def ship_curve(run_dir: str, dest: str, name: str, config, earlier: list[str]) -> None:
    """Writes the campaign's curve (`HISTORY`) and its plot (`CURVE`) into `dest`; `earlier`:
    the card's lines on the training before the run (`started_from`)."""
    history = campaign_curve(run_dir, earlier, config.get("init_from"))
    write_text(os.path.join(dest, HISTORY), "".join(json.dumps(r) + "\n" for r in history))
    learning_curve(history, os.path.join(dest, CURVE), name, config)


CURVE, HISTORY = "learning_curve.png", "campaign.jsonl"
DATA_TEXT = {
    "skimage": "scikit-image's bundled training photos; the test photos are never seen",
    "photos": "the photo corpus's 232 training photos, `denoise-jax data build photos`; "
              "no photo or scene of photos:val is among them",
}


def data_text(spec: str) -> str:
    return DATA_TEXT.get(spec.split(":")[0], "see the config below")


PHOTOS_HEADING = "## Held-out scores: `photos:val`"
SKIMAGE_HEADING = "## Held-out scores: scikit-image test photos"
OLD_HEADING = "## Held-out scores\n"


def training_time(workdir: str, upto: int) -> tuple[float, float | None]:
    """(seconds of training, CPU-hours) up to step `upto`, from the run's metrics.jsonl:
    seconds summed from the logged step rates of every resumed chunk, CPU-hours as logged."""
    seconds, last, cpu_hours = 0.0, 0, None
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("split") != "train" or row["step"] > upto:
                continue
            if row.get("steps_per_sec") and row["step"] > last:
                seconds += (row["step"] - last) / row["steps_per_sec"]
                last = row["step"]
            cpu_hours = row.get("cpu_hours", cpu_hours)
    return seconds, cpu_hours


def score_table(method: str, folder: str, name: str, data_spec: str, noise_spec: str,
                seeds: list[int], crop: int | None = None) -> tuple[str, dict]:
    """A markdown table (mean over seeds) of noisy, NLM, BM3D (from the scores cache), the
    model (`method`, as `denoise-jax eval` names it: with its own self-ensemble), and with
    the ×8 one unless that is its own (`denoise --ensemble 8`, loaded from `folder`); and
    the raw means {label: [PSNR, SSIM]}."""
    dataset = data.load(data_spec)
    models = {name: evaluate.resolve_method(method)}
    if methods.ensemble_views(checkpoints.load_config(folder)) != 8:
        models[f"{name} ×8 ensemble"] = Denoiser.from_workdir(folder, ensemble=8).as_method()
    sums: dict[str, np.ndarray] = {}
    sigma: dict[str, str] = {}
    for seed in seeds:
        found = with_classical(models, dataset, data_spec, noise_spec, seed, "float", crop)
        for label, r in found.items():
            sums[label] = sums.get(label, np.zeros(2)) + (r.psnr, r.ssim)
            sigma[label] = r.sigma
    means = {k: v / len(seeds) for k, v in sums.items()}
    lines = ["| method | PSNR (dB) | SSIM | σ |", "|---|---:|---:|---|"]
    for label, (p, s) in means.items():
        lines.append(f"| {label} | {p:.2f} | {s:.4f} | {sigma[label]} |")
    return "\n".join(lines), {k: [float(v[0]), float(v[1])] for k, v in means.items()}


def eval_command(name: str, data_spec: str, noise_spec: str, seed: int) -> str:
    return (f"denoise-jax eval --methods noisy,nlm,bm3d,pretrained:{name} --data {data_spec} "
            f"--noise {noise_spec} --seed {seed}")


def card(name: str, method: str, folder: str, run_dir: str, step: int, seeds: list[int],
         config, earlier: list[str], crop: int | None = None) -> str:
    """The model card of the model shipped to `folder` from `run_dir` (scores it); `earlier`:
    its lines on the training before the run (`started_from`)."""
    seconds, cpu_hours = training_time(run_dir, step)
    kind = "realistic synthetic camera noise" if config.noise == "camera" else (
        f"blind Gaussian noise ({config.noise})")
    lines = [
        f"# `{name}`: {config.model.name} for {kind}",
        "",
        f"- **Use**: `denoise-jax denoise PHOTO -o OUT --model {name}`; in Python "
        f"`evaluate.resolve_method('pretrained:{name}')`, or this folder as a workdir.",
        f"- **Model**: `{config.model.name}` {dict(config.model)}.",
        f"- **Trained by**: `denoise-jax train --config {config_arg(name)} "
        f"--workdir runs/{name}`, then `python -m denoise_jax.ship runs/{name} "
        f"{name}`.",
        f"- **Data**: `{config.data.train}` ({data_text(config.data.train)}), "
        f"random {config.data.patch}² crops, batch {config.data.batch}, flips and 90° rotations"
        + (", a random colour-channel order" if config.data.get("permute_channels") else "")
        + f"; noise `{config.noise}` drawn per crop"
        + (f", {config.noise_8bit_share:.0%} of the noisy crops rounded to 8 bits"
           if config.get("noise_8bit_share") else "") + ".",
        *earlier,
        f"{STEPS}{step} (EMA {config.ema} weights of the last step; no checkpoint "
        "was picked on test scores).",
        f"{HARDWARE}{hardware()}; training time {seconds / 60:.0f} min (summed from the "
        "logged step rates of every resumed chunk)"
        + (f", {cpu_hours:.2f} CPU-hours" if cpu_hours else "") + ".",
        "",
        "![validation PSNR against CPU-hours over the training campaign (one line per run, "
        "each after the hours of the runs before it), with NLM and BM3D on the same inputs]"
        f"({CURVE})",
        "",
        "",
    ]
    return "\n".join(lines) + scores_sections(name, method, folder, seeds, config, crop)


def scores_sections(name: str, method: str, folder: str, seeds: list[int], config,
                    crop: int | None = None) -> str:
    """The card from its first held-out section on: photos:val, the scikit-image test
    photos (mean over `seeds`, with the ×8 ensemble) and the config."""
    config_json = checkpoints.config_json(config).rstrip("\n")
    lines = [photos_section(method, name, config, seeds[0], crop), SKIMAGE_HEADING, ""]
    lines += [
        f"Mean over noise seeds {', '.join(map(str, seeds))} of the whole test photos "
        "(no crop). PSNR/SSIM: " + metrics.DEFINITIONS["psnr"] + "; "
        + metrics.DEFINITIONS["ssim"] + ".",
        "",
    ]
    for data_spec, noise_spec in protocol(config):
        table, _ = score_table(method, folder, name, data_spec, noise_spec, seeds, crop)
        print(f"{data_spec} {noise_spec}\n{table}\n", flush=True)
        lines += [f"### `{data_spec}`, noise `{noise_spec}`", "", table, "",
                  "Reproduce one seed: `" + eval_command(name, data_spec, noise_spec, seeds[0])
                  + "`", ""]
    lines += ["## Config", "", "```json", config_json, "```", ""]
    return "\n".join(lines)


# Card lines `started_from` reads back from the card of the model a run started from.
STEPS, HARDWARE, EARLIER = "- **Steps**: ", "- **Hardware**: ", "- **Earlier training**: "


def started_from(run_dir: str, spec: str | None = None) -> list[str]:
    """The card's lines on a warm start (what `train` recorded when the run began), if any,
    and, when it started from a model with a card (`spec`, the run's `init_from`), that
    card's steps and hardware lines and its own earlier ones, so the hours add up."""
    path = os.path.join(run_dir, train.INIT_FROM)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = [f"- **Warm start**: {f.read().strip()}."]
    source = os.path.join(methods.parse_spec(spec)[0], pretrained.CARD) if spec else ""
    if not os.path.isfile(source):
        return lines
    with open(source, encoding="utf-8") as f:
        text = f.read().splitlines()
    found = {label: line[len(label):] for line in text for label in (STEPS, HARDWARE)
             if line.startswith(label)}
    if len(found) == 2:
        lines.append(f"{EARLIER}{spec}, as it was then: {found[STEPS].split()[0]} steps on "
                     f"{found[HARDWARE].rstrip('.')}.")
        lines += [line for line in text if line.startswith(EARLIER)]
    return lines


def config_arg(name: str) -> str:
    return f"experiments/pretrained.py:{name}"


def hardware() -> str:
    device = jax.devices()[0]
    return f"{device.platform.upper()} ({platform.processor() or platform.machine()}, " \
           f"{os.cpu_count()} cores)" if device.platform == "cpu" else device.device_kind


def seed_list(text: str) -> list[int]:
    """`--seeds 0,1` -> [0, 1]; argparse turns the error into a one-line usage error."""
    try:
        seeds = [int(s) for s in text.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m denoise_jax.ship",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", help="the finished training workdir")
    parser.add_argument("name", nargs="?",
                        help="the shipped model's name (a folder under pretrained/)")
    parser.add_argument("--rescore", metavar="NAME",
                        help="re-score the shipped model NAME and rewrite its card's tables")
    parser.add_argument("--which", default="latest", choices=("latest", "best"))
    parser.add_argument("--seeds", type=seed_list, default="0,1",
                        help="noise seeds averaged in the card")
    parser.add_argument("--root", default=pretrained.ROOT, help="where models are shipped")
    parser.add_argument("--crop", type=int, help="score centre crops (quick checks; the card "
                        "of a shipped model uses whole photos)")
    parser.add_argument("--ensemble", type=int, choices=tuple(VIEWS), metavar="N",
                        help="the shipped denoiser's self-ensemble: rotations/mirrors it "
                        "averages, 1, 2, 4 or 8 (default: the run's config `ensemble`, else 1)")
    return parser


def run(args: argparse.Namespace) -> int:
    seeds = args.seeds
    if args.rescore:
        rescore(args.rescore, args.root, tuple(seeds), crop=args.crop, ensemble=args.ensemble)
        print(f"updated the card of {args.rescore}")
        return 0
    dest = os.path.join(args.root, args.name)
    step = methods.export(args.run_dir, dest, args.which)
    config = set_ensemble(dest, args.ensemble)
    earlier = started_from(args.run_dir, config.get("init_from"))
    ship_curve(args.run_dir, dest, args.name, config, earlier)
    method = f"pretrained:{args.name}" if args.root == pretrained.ROOT else dest
    write_text(os.path.join(dest, pretrained.CARD), card(
        args.name, method, dest, args.run_dir, step, seeds, config, earlier, args.crop))
    print(f"shipped {args.name} (step {step}) to {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.rescore and not args.name:
        parser.error("give RUN_DIR and NAME, or --rescore NAME")
    return report_user_error(run, args)


if __name__ == "__main__":
    sys.exit(main())
