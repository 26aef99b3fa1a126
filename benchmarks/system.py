"""System benchmarks: what the denoise CLI costs in memory and time, whether the input
pipeline keeps up with the train step, SSIM speed, and the data-parallel mesh overhead.

    python -m benchmarks.system [--quick] [--cases GLOB[,GLOB...]] [--json FILE]

prints a markdown table and the JSON list of result rows. `run_all(quick)` returns the rows
(the benchmark runner merges them with its own); each row is

    {"name": str, "unit": str, "jax": float, "peer": str | None,
     "peer_value": float | None, "ratio": float | None, "config": dict}

with `ratio > 1` meaning our code is better (faster, smaller, or keeps up).

Cases (GLOB matches these names):
  memory/denoise_24mp    peak RSS (MB) of `denoise-jax denoise big.png -o out.png` on a
                         6000×4000 RGB photo, a fresh process started and measured by the
                         small launcher `benchmarks.peak_rss` (`os.wait4`); the must-show
                         is < 3 GB (no peer: the limit is in `config`)
  memory/denoise_scaling denoising time and peak RSS at 1, 4, 16, 24 MP with least-squares
                         lines (R² in `config`) and the plot results/denoise_scaling.png
  data/<experiment>      images/s of the grain pipeline train.py builds for the experiment
                         against the images/s its train step consumes (ratio > 1: keeps up)
  metrics/ssim           MP/s of `metrics.ssim` (jitted, warm) against scikit-image's
                         `structural_similarity` with the same settings, 512² and 2048² RGB
  mesh/4dev              the project's train step on 4 fake CPU devices against 1, same
                         global batch, same machine (ratio = t1 / t4)

The model of the denoise cases is the shipped colour Gaussian model when the package has one,
else a checkpoint of experiments/skimage_gauss.py (the architecture that would ship; random
weights cost the same) written by `checkpoints.save` into a temporary workdir. `--quick` uses
the experiment's `:tiny` model, small images and few repeats: all cases in well under a minute.
Timings are medians of repeats after warm-up; every measurement that needs a fresh runtime
(peak RSS, device count) runs in its own subprocess.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks import cases as case_list
from benchmarks import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
SCALING_PLOT = os.path.join(RESULTS, "denoise_scaling.png")
LIMIT_MB = 3 * 1024
NOISE_SIGMA = 25.0  # on the 0-255 scale
FULL_MODEL = "skimage_gauss"  # experiment whose model stands in for the shipped one
TINY_MODEL = "skimage_gauss:tiny"
CHILD_TIMEOUT = 1800

Row = dict[str, Any]


# ---------------------------------------------------------------------------------------
# Small pure helpers


def row(name: str, unit: str, value: float, config: dict[str, Any], peer: str | None = None,
        peer_value: float | None = None, ratio: float | None = None) -> Row:
    """One result row in the runner's schema; `config` gains the machine's load average.

    The load matters: on a shared 2-core machine other processes' work shows in the timings.
    """
    config = {**config, "load_avg_1m": round(os.getloadavg()[0], 2)}
    return {"name": name, "unit": unit, "jax": float(value), "peer": peer,
            "peer_value": None if peer_value is None else float(peer_value),
            "ratio": None if ratio is None else float(ratio), "config": config}


def linear_fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares line y = intercept + slope·x -> {"slope", "intercept", "r2"}.

    R² = 1 - SS_res / SS_tot (1.0 when y is constant and fitted exactly).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2:
        raise ValueError(f"a line needs at least 2 points, got {x.size}")
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(np.sum((y - (intercept + slope * x)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": float(r2)}


def size_for(megapixels: float, aspect: float = 1.5) -> tuple[int, int]:
    """(width, height) of a 3:2 photo of about `megapixels` (24 -> 6000×4000)."""
    height = max(16, round(math.sqrt(megapixels * 1e6 / aspect)))
    return round(height * aspect), height


def _child_result(stdout: str) -> dict[str, Any]:
    lines = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
    if not lines:
        raise RuntimeError("the benchmark subprocess printed no RESULT line")
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------------------------------
# Workspace: temporary images and workdirs, made once per process


_WORKSPACE: str | None = None
_MADE: dict[tuple, Any] = {}


def workspace() -> str:
    """A temporary folder for this process's images, workdirs and outputs (removed at exit)."""
    global _WORKSPACE
    if _WORKSPACE is None or not os.path.isdir(_WORKSPACE):
        _WORKSPACE = tempfile.mkdtemp(prefix="denoise_bench_")
        atexit.register(shutil.rmtree, _WORKSPACE, ignore_errors=True)
    return _WORKSPACE


def noisy_photo(width: int, height: int, seed: int = 0) -> str:
    """A `width`×`height` RGB PNG: scikit-image's coffee photo resized, plus Gaussian noise σ 25.

    Written once per size into `workspace()`; the noise is drawn in row blocks so this
    (parent) process never holds a float copy of the whole image.
    """
    key = ("photo", width, height, seed, workspace())
    if key in _MADE and os.path.exists(_MADE[key]):
        return _MADE[key]
    import cv2
    import skimage.data
    from PIL import Image as PILImage

    base = cv2.resize(skimage.data.coffee(), (width, height), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    for top in range(0, height, 256):
        block = base[top:top + 256]
        noise = rng.normal(0.0, NOISE_SIGMA, block.shape).astype(np.float32)
        block[...] = np.clip(block + noise, 0, 255).round().astype(np.uint8)
    path = os.path.join(workspace(), f"photo_{width}x{height}.png")
    PILImage.fromarray(base).save(path, compress_level=1)
    _MADE[key] = path
    return path


def experiment_config(spec: str):
    """The config of `experiments/NAME.py` for spec "NAME[:ARG]" (as `--config` loads it)."""
    from denoise_jax import configs

    return configs.load(spec)


def make_workdir(folder: str, spec: str) -> str:
    """A training workdir in `folder` holding step 1 of `spec`'s model (fresh weights).

    Written as train.py writes one: `checkpoints.write_config` and `checkpoints.save` of a
    `train.TrainState`, so `--workdir` and `checkpoints.load_run` read it as a real run.
    """
    import jax

    from denoise_jax import checkpoints, methods, optim, train

    config = experiment_config(spec)
    model, _ = methods.build_model(config)
    tx = optim.make_optimizer(config.optimizer, int(config.num_steps))
    state = train.create_state(jax.random.PRNGKey(0), model, tx, (16, 16, 3),
                               ema=bool(config.get("ema")))
    os.makedirs(folder, exist_ok=True)
    checkpoints.write_config(folder, config, announce=True)
    mngr = checkpoints.manager(folder)
    try:
        checkpoints.save(mngr, 1, state, {})
        mngr.wait_until_finished()
    finally:
        mngr.close()
    return folder


def shipped_colour_gaussian() -> str | None:
    """Name of a shipped pretrained colour model trained on Gaussian noise, or None."""
    from denoise_jax import pretrained

    for name in pretrained.names():
        try:
            with open(os.path.join(pretrained.find(name), "config.json"), encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError):
            continue
        train_spec = str(config.get("data", {}).get("train", "")).lower()
        if str(config.get("noise", "")).startswith("gaussian") and "gray" not in train_spec \
                and "mnist" not in train_spec:
            return name
    return None


def model_arguments(spec: str, prefer_shipped: bool) -> tuple[list[str], str]:
    """(CLI arguments choosing the model, its description) for the denoise cases."""
    if prefer_shipped:
        name = shipped_colour_gaussian()
        if name:
            return ["--model", name], f"pretrained {name}"
    key = ("workdir", spec, workspace())
    if key not in _MADE:
        folder = os.path.join(workspace(), "run_" + spec.replace(":", "_"))
        _MADE[key] = make_workdir(folder, spec)
    config = experiment_config(spec)
    described = ", ".join(f"{k}={v}" for k, v in config.model.to_dict().items())
    return ["--workdir", _MADE[key]], f"workdir of {spec} ({described}; fresh weights)"


# ---------------------------------------------------------------------------------------
# Subprocesses with their own peak RSS


def run_measured(argv: list[str], env: dict[str, str] | None = None,
                 timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """Runs `argv` in the repository root; -> {"rc", "peak_rss_mb", "wall_s", "stdout", "stderr"}.

    The peak RSS is the child's own: `benchmarks.peak_rss` starts it from a small process and
    reads `os.wait4`'s ru_maxrss (which also covers any process the child waited for); taken
    here, it would include this process's own peak (see that module). NaN if the launcher died.
    """
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as out, \
            tempfile.TemporaryFile("w+") as err:
        report = os.path.join(tmp, "peak_rss.json")
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.peak_rss", report, *argv],
                                cwd=REPO, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        # The whole session: killing the launcher alone would leave the child running.
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            proc.wait()
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        try:
            with open(report, encoding="utf-8") as f:
                peak_mb = json.load(f)["peak_rss_kb"] / 1024
        except (OSError, ValueError, KeyError):
            peak_mb = math.nan
        out.seek(0)
        err.seek(0)
        return {"rc": proc.returncode, "peak_rss_mb": peak_mb, "wall_s": wall,
                "stdout": out.read(), "stderr": err.read()}


def _fail(what: str, result: dict[str, Any]) -> RuntimeError:
    tail = (result["stderr"] or result["stdout"])[-1500:]
    return RuntimeError(f"{what} failed with exit code {result['rc']}:\n{tail}")


def denoise_file(width: int, height: int, spec: str, prefer_shipped: bool,
                 extra: Sequence[str] = ()) -> dict[str, Any]:
    """`denoise-jax denoise photo.png -o out.png <model>` in a fresh process (cached per size).

    Returns {"width", "height", "megapixels", "peak_rss_mb", "seconds" (the CLI's own
    denoising time, one tile compilation included), "wall_s", "model", "command"}.
    """
    model_args, model = model_arguments(spec, prefer_shipped)
    key = ("denoise", width, height, tuple(model_args), tuple(extra), workspace())
    if key in _MADE:
        return _MADE[key]
    src = noisy_photo(width, height)
    dst = os.path.join(workspace(), f"out_{width}x{height}.png")
    report = os.path.join(workspace(), f"out_{width}x{height}.json")
    argv = [sys.executable, "-m", "denoise_jax", "denoise", src, "-o", dst, *model_args,
            "--json", report, *extra]
    result = run_measured(argv)
    if result["rc"] != 0:
        raise _fail("denoise-jax denoise", result)
    with open(report, encoding="utf-8") as f:
        image = json.load(f)["images"][0]
    os.remove(dst)
    measured = {"width": width, "height": height, "megapixels": width * height / 1e6,
                "peak_rss_mb": result["peak_rss_mb"], "seconds": float(image["seconds"]),
                "wall_s": result["wall_s"], "model": model,
                "command": "denoise-jax denoise big.png -o out.png " + " ".join(
                    os.path.basename(a) if a.startswith(workspace()) else a
                    for a in model_args + list(extra))}
    _MADE[key] = measured
    return measured


# ---------------------------------------------------------------------------------------
# Case 1: memory


def memory_denoise(width: int = 6000, height: int = 4000, spec: str = FULL_MODEL,
                   prefer_shipped: bool = True, limit_mb: float = LIMIT_MB) -> Row:
    """Peak RSS (MB) of the denoise CLI on one `width`×`height` RGB photo."""
    m = denoise_file(width, height, spec, prefer_shipped)
    config = {"width": width, "height": height, "megapixels": m["megapixels"],
              "limit_mb": limit_mb, "under_limit": m["peak_rss_mb"] < limit_mb,
              "seconds": m["seconds"], "wall_s": m["wall_s"], "model": m["model"],
              "command": m["command"], "tile": 512, "overlap": 32,
              "measured_by": "os.wait4 ru_maxrss of the CLI, via benchmarks.peak_rss"}
    return row("memory/denoise_24mp", "MB", m["peak_rss_mb"], config)


def memory_scaling(megapixels: Sequence[float] = (1, 4, 16, 24), spec: str = FULL_MODEL,
                   prefer_shipped: bool = True, plot: str | None = SCALING_PLOT,
                   limit_mb: float = LIMIT_MB) -> list[Row]:
    """Denoising time and peak RSS against image size, with least-squares lines.

    Returns two rows: "memory/denoise_scaling" (slope in MB per MP; R² and points in
    `config`) and "memory/denoise_scaling_time" (slope in s per MP). Writes `plot` (PNG)
    when given.
    """
    points = [denoise_file(*size_for(mp), spec, prefer_shipped) for mp in megapixels]
    mps = [p["megapixels"] for p in points]
    rss = linear_fit(mps, [p["peak_rss_mb"] for p in points])
    seconds = linear_fit(mps, [p["seconds"] for p in points])
    wall = linear_fit(mps, [p["wall_s"] for p in points])
    table = [{k: p[k] for k in ("width", "height", "megapixels", "peak_rss_mb", "seconds",
                                "wall_s")} for p in points]
    if plot:
        plot_scaling(plot, table, rss, seconds, limit_mb, points[0]["model"])
    config = {"points": table, "rss_fit": rss, "seconds_fit": seconds, "wall_fit": wall,
              "bytes_per_pixel": rss["slope"] * 2**20 / 1e6, "model": points[0]["model"],
              "limit_mb": limit_mb, "plot": plot}
    return [row("memory/denoise_scaling", "MB/MP", rss["slope"], config),
            row("memory/denoise_scaling_time", "s/MP", seconds["slope"],
                {"points": table, "seconds_fit": seconds, "wall_fit": wall,
                 "model": points[0]["model"], "plot": plot})]


def plot_scaling(path: str, points: list[dict], rss: dict, seconds: dict,
                 limit_mb: float, model: str = "") -> None:
    """Writes time and peak RSS against megapixels, with their fitted lines, to `path` (PNG).

    Atomic (a temporary file renamed over `path`); uses the Agg canvas directly, so no
    pyplot backend is switched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mps = np.array([p["megapixels"] for p in points])
    line = np.linspace(0.0, max(mps.max(), 1.0) * 1.05, 50)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    for ax, key, fit, label, unit in (
        (fig.add_subplot(1, 2, 1), "seconds", seconds, "denoising time", "s"),
        (fig.add_subplot(1, 2, 2), "peak_rss_mb", rss, "peak RSS", "MB"),
    ):
        ax.plot(mps, [p[key] for p in points], "o", label="measured")
        ax.plot(line, fit["intercept"] + fit["slope"] * line, "-",
                label=f"{fit['intercept']:.3g} + {fit['slope']:.3g}·MP (R² {fit['r2']:.4f})")
        if key == "peak_rss_mb":
            ax.axhline(limit_mb, color="red", linestyle="--", label=f"limit {limit_mb:.0f} MB")
        ax.set_xlabel("image size (megapixels)")
        ax.set_ylabel(f"{label} ({unit})")
        ax.set_title(f"{label} of denoise-jax denoise")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if model:
        fig.suptitle(f"model: {model}", fontsize=9)
    fig.tight_layout()
    from denoise_jax.images import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


# ---------------------------------------------------------------------------------------
# Cases 2 and 4: the train step in a child process (its own device count)


def _child_env(devices: int) -> dict[str, str]:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


def train_child(spec: str, devices: int, *, overrides: dict[str, Any] | None = None,
                steps: int = 3, pipeline_batches: int = 0) -> dict[str, Any]:
    """Runs `_child_main` in a subprocess with `devices` fake CPU devices; -> its RESULT."""
    job = {"spec": spec, "overrides": overrides or {}, "steps": steps,
           "pipeline_batches": pipeline_batches}
    code = "from benchmarks.system import _child_main; _child_main()"
    result = run_measured([sys.executable, "-c", code, json.dumps(job)], env=_child_env(devices))
    if result["rc"] != 0:
        raise _fail(f"the train-step subprocess ({spec}, {devices} devices)", result)
    return _child_result(result["stdout"])


def _set(config, dotted: str, value: Any) -> None:
    *path, leaf = dotted.split(".")
    for part in path:
        config = config[part]
    config[leaf] = value


def _child_main() -> None:
    """Child side of `train_child`: train.py's setup, then timings, one RESULT line.

    Builds what `train.train_and_evaluate` builds (resolved config, mesh, pipeline, init,
    jitted step), times `steps` train steps after two warm-ups (median), then, on a fresh
    iterator, `pipeline_batches` batches of the input pipeline after a warm-up.
    """
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from denoise_jax import methods, optim, train
    from denoise_jax.data import pipeline

    job = json.loads(sys.argv[1])
    config = experiment_config(job["spec"])
    for key, value in job["overrides"].items():
        _set(config, key, value)
    config = pipeline.resolve(config)
    mesh = train.make_mesh()
    local_batch = train.check_batch(config.data.batch)
    train_data = pipeline.training_source(config.data.train, config.data.get("download", False),
                                          resize=config.data.get("resize"))
    shape = pipeline.check_shapes(train_data, config.data.get("patch"))

    def make_batches():
        return pipeline.batches(
            train_data, batch=local_batch, patch=config.data.get("patch"),
            augment=config.data.get("augment", True), seed=config.seed,
            num_threads=config.data.get("num_threads", 2),
            prefetch=config.data.get("prefetch", 8))

    model, from_logits = methods.build_model(config)
    total = train.num_steps(config, len(train_data))
    tx = optim.make_optimizer(config.optimizer, total)
    init_key, noise_key = jax.random.split(jax.random.PRNGKey(config.seed))
    state = train.make_init(config, model, tx, shape, mesh)(init_key)
    step_fn = train.make_train_step(config, model, from_logits, tx, total, mesh)
    noise_key = jax.device_put(noise_key, NamedSharding(mesh, P()))
    batch = train.to_global(next(make_batches()), NamedSharding(mesh, P("data")))
    times = []
    for i in range(2 + job["steps"]):
        start = time.perf_counter()
        state, metrics = step_fn(noise_key, state, batch)
        jax.block_until_ready((state, metrics))
        if i >= 2:
            times.append(time.perf_counter() - start)
    out = {"devices": jax.device_count(), "global_batch": int(config.data.batch),
           "shape": list(shape), "step_s": statistics.median(times), "step_times": times,
           "model": config.model.to_dict(), "data": config.data.train,
           "patch": config.data.get("patch"), "resize": config.data.get("resize"),
           "num_threads": config.data.get("num_threads"), "prefetch": config.data.get("prefetch")}
    if job["pipeline_batches"]:
        it = make_batches()
        for _ in range(3):
            next(it)
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(job["pipeline_batches"]):
                next(it)
            rates.append(job["pipeline_batches"] * local_batch / (time.perf_counter() - start))
        out["pipeline_images_per_s"] = statistics.median(rates)
        out["pipeline_rates"] = rates
    print("RESULT " + json.dumps(out), flush=True)


def data_throughput(spec: str, *, steps: int = 3, batches: int = 20) -> Row:
    """Images/s of the experiment's input pipeline against its train step's consumption."""
    r = train_child(spec, 1, steps=steps, pipeline_batches=batches)
    consumption = r["global_batch"] / r["step_s"]
    name = "data/" + spec.partition(":")[0]
    config = {"experiment": spec, "pipeline_images_per_s": r["pipeline_images_per_s"],
              "train_step_s": r["step_s"], "train_images_per_s": consumption,
              "batch": r["global_batch"], "image_shape": r["shape"], "model": r["model"],
              "data": r["data"], "num_threads": r["num_threads"], "prefetch": r["prefetch"],
              "batches_timed": batches, "steps_timed": steps,
              "note": "ratio = pipeline images/s ÷ train-step images/s (>1: the pipeline "
                      "keeps up); each measured alone on this machine"}
    return row(name, "images/s", r["pipeline_images_per_s"], config,
               peer="train step consumption", peer_value=consumption,
               ratio=r["pipeline_images_per_s"] / consumption)


def mesh_overhead(spec: str = FULL_MODEL, devices: int = 4, *, batch: int = 16,
                  steps: int = 5, overrides: dict[str, Any] | None = None) -> Row:
    """Seconds per train step on `devices` fake CPU devices against 1, same global batch."""
    overrides = {"data.batch": batch, **(overrides or {})}
    one = train_child(spec, 1, overrides=overrides, steps=steps)
    many = train_child(spec, devices, overrides=overrides, steps=steps)
    config = {"experiment": spec, "devices": devices, "global_batch": batch,
              "image_shape": one["shape"], "model": one["model"], "step_s_1dev": one["step_s"],
              f"step_s_{devices}dev": many["step_s"],
              "overhead_pct": 100.0 * (many["step_s"] / one["step_s"] - 1.0),
              "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count(),
              "how": "train.make_train_step on train.make_mesh(), subprocesses with "
                     "XLA_FLAGS=--xla_force_host_platform_device_count=N, same cores"}
    return row(f"mesh/{devices}dev", "s/step", many["step_s"], config, peer="1 device",
               peer_value=one["step_s"], ratio=one["step_s"] / many["step_s"])


# ---------------------------------------------------------------------------------------
# Case 3: SSIM


def ssim_speed(side: int, repeats: int = 5) -> Row:
    """MP/s of jitted `metrics.ssim` against scikit-image on a side×side RGB pair."""
    import jax
    from skimage.metrics import structural_similarity

    from denoise_jax import metrics

    rng = np.random.default_rng(0)
    clean = rng.random((side, side, 3), dtype=np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape).astype(np.float32), 0, 1)
    fn = jax.jit(metrics.ssim)
    a, b = jax.device_put(noisy), jax.device_put(clean)

    def ours() -> float:
        return float(fn(a, b).block_until_ready())

    def theirs() -> float:
        return float(structural_similarity(
            noisy, clean, gaussian_weights=True, sigma=metrics.SSIM_SIGMA,
            use_sample_covariance=False, data_range=1.0, channel_axis=-1,
            K1=metrics.SSIM_K1, K2=metrics.SSIM_K2))

    value_ours, value_theirs = ours(), theirs()  # warm-up (compiles ours)
    t_ours, t_theirs = _median_time(ours, repeats), _median_time(theirs, repeats)
    mp = side * side / 1e6
    config = {"side": side, "channels": 3, "dtype": "float32", "repeats": repeats,
              "seconds_ours": t_ours, "seconds_skimage": t_theirs, "ssim_ours": value_ours,
              "ssim_skimage": value_theirs, "abs_diff": abs(value_ours - value_theirs),
              "skimage_args": "gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
                              "data_range=1.0, channel_axis=-1"}
    return row(f"metrics/ssim_{side}", "MP/s", mp / t_ours, config,
               peer="skimage.metrics.structural_similarity", peer_value=mp / t_theirs,
               ratio=t_theirs / t_ours)


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    return common.measure(fn, warmup=0, repeats=repeats, budget_s=math.inf,
                          min_repeat_s=0.0)["seconds"]


# ---------------------------------------------------------------------------------------
# Registry and entry points


def _memory_24mp(quick: bool) -> list[Row]:
    if quick:
        return [memory_denoise(*size_for(4), spec=TINY_MODEL, prefer_shipped=False)]
    return [memory_denoise()]


def _scaling(quick: bool) -> list[Row]:
    if quick:
        return memory_scaling((1, 4), spec=TINY_MODEL, prefer_shipped=False)
    return memory_scaling()


CASES: dict[str, Callable[[bool], list[Row]]] = {
    # Scaling first: the full 24 MP case then reuses its 24 MP measurement.
    "memory/denoise_scaling": _scaling,
    "memory/denoise_24mp": _memory_24mp,
    "data/skimage_gauss": lambda quick: [data_throughput(
        "skimage_gauss:tiny" if quick else "skimage_gauss", steps=2 if quick else 3,
        batches=5 if quick else 20)],
    "data/realnoise_rednet": lambda quick: [data_throughput(
        "realnoise_rednet:tiny" if quick else "realnoise_rednet", steps=2 if quick else 3,
        batches=5 if quick else 20)],
    "metrics/ssim": lambda quick: [ssim_speed(s, 3 if quick else 5)
                                   for s in ((256, 512) if quick else (512, 2048))],
    "mesh/4dev": lambda quick: [mesh_overhead(
        TINY_MODEL if quick else FULL_MODEL, 4, batch=8 if quick else 16,
        steps=3 if quick else 5)],
}


def selected(patterns: str | None) -> list[str]:
    """Case names matching any of the comma-separated globs (all for None)."""
    return [name for name in CASES if case_list.matches(name, patterns)]


def run_all(quick: bool, cases: str | None = None) -> list[Row]:
    """Runs the cases (all, or those matching the globs `cases`) -> their rows.

    `quick`: small images, the `:tiny` models and few repeats (well under a minute).
    """
    rows = []
    for name in selected(cases):
        print(f"[system] {name} ...", file=sys.stderr, flush=True)
        rows.extend(CASES[name](quick))
    return rows


def markdown(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    def fmt(x: float | None) -> str:
        return "" if x is None else f"{x:.4g}"

    lines = ["| case | unit | ours (JAX) | peer | peer value | ratio |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['name']} | {r['unit']} | {fmt(r['jax'])} | {r['peer'] or ''} | "
              f"{fmt(r['peer_value'])} | {fmt(r['ratio'])} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.system [--quick] [--cases GLOB] [--json FILE]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.system",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, tiny models")
    parser.add_argument("--cases", metavar="GLOB", help="comma-separated globs of case names: "
                        + ", ".join(CASES))
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    args = parser.parse_args(argv)
    if not selected(args.cases):
        parser.error(f"--cases {args.cases!r} matches none of: {', '.join(CASES)}")
    rows = run_all(args.quick, args.cases)
    print(markdown(rows))
    text = json.dumps(rows, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
