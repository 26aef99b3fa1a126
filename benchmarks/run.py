"""Benchmark suite: the project's JAX models against PyTorch twins, measured in one run.

    python -m benchmarks.run [--quick] [--cases GLOB[,GLOB...]] [--out DIR] [--threads N]

Each framework runs in its own worker process (benchmarks/worker.py) pinned to the same N
cores (all by default): XLA sizes its thread pool from the affinity mask, PyTorch gets
torch.set_num_threads(N), OpenCV cv2.setNumThreads(N). Compilation and warm-up are never
timed; a value is the median of several repeats (cases.py lists the cases, common.measure
the timing rules). One progress line per case; at the end a markdown table is printed and
the results are written, atomically, to DIR/latest.json and DIR/<YYYY-MM-DD>-<device>.json
(`-quick` added for --quick runs, so a quick run never overwrites a full one).

Schema: {"machine": {"cpu", "cores", "threads", "device", "jax", "torch", ...}, "date",
"quick", "cases": [{"name", "unit", "jax", "torch", "ratio", "config", ...}]}. `ratio` > 1
means JAX is faster: torch/jax for times (s/step), jax/torch for throughputs (MP/s). A train
case's "torch" is the faster of PyTorch's two layouts; "torch_layout" names it ("nchw" or
"channels_last") and config.torch_layouts has both; a train case runs in rounds that
alternate JAX and its twin (--rounds, 9 by default), each side's value the median of its
rounds and "ratio" the median of the rounds' paired ratios (config.round_ratios). Cases
with another peer than PyTorch (OpenCV's NLM, scikit-image, one device) carry "peer" and
"peer_value" and, for the classical methods, ratio null. When JAX sees a GPU, the JAX-vs-
PyTorch cases still run on the CPU (JAX_PLATFORMS=cpu; the torch wheel is CPU-only) and
every train case also runs on the GPU in float32 and bfloat16 (images/s and TFLOP/s).

A full run takes over an hour on 2 shared cores (2048² images through the
74M-parameter PRIDNet, BM3D at 512²); --quick about two minutes on a quiet machine.

`benchmarks.system.run_all(quick)` (memory, data pipeline, metrics, mesh), when present, is
run after these cases and its rows merged (unless --cases only names train/ or infer/ cases).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks import cases as case_list
from benchmarks import common, report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
CASE_TIMEOUT_S = 1800
START_TIMEOUT_S = 300
# A train case alternates JAX and its twin this many times: a shared VM's speed jumps by
# up to 2× for tens of seconds at a time, and the median of many paired rounds shrugs off
# the rounds such a jump lands in (3 rounds of nafnet_small gave 0.96 and 0.92, 9 gave 1.04).
TRAIN_ROUNDS = 9

PEER_LABELS = {"nlm_cv": "OpenCV fastNlMeansDenoisingColored"}
METHOD_IMPLS = {"nlm": "scikit-image denoise_nl_means (fast mode, 1 thread)",
                "bm3d": "bm3d package (profile np)"}

Row = dict[str, Any]


# ---------------------------------------------------------------------------------------
# Worker processes


class Worker:
    """A benchmark worker process (`python -m benchmarks.worker KIND`), started on first use.

    `run(spec)` returns the worker's result dict, or {"error": ...} when the worker fails,
    dies (it is restarted for the next case) or exceeds the case's time limit.
    """

    def __init__(self, kind: str, threads: int, env: dict[str, str], log_dir: str,
                 label: str | None = None) -> None:
        self.kind, self.threads, self.env = kind, threads, env
        self.label = label or kind
        self.log_path = os.path.join(log_dir, f"{self.label}.log")
        self.proc: subprocess.Popen | None = None
        self.info: dict[str, Any] = {}

    def _start(self) -> dict[str, Any] | None:
        log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", self.kind, "--threads",
             str(self.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            cwd=REPO, env=self.env)
        log.close()
        reply = self._read(START_TIMEOUT_S)
        if "ready" not in reply:
            return reply
        self.info = reply["ready"]
        return None

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            return {"error": f"{self.label} worker: no answer within {timeout:.0f} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"error": f"{self.label} worker exited with code {code}: {self.log_tail()}"}
        return json.loads(line)

    def log_tail(self, lines: int = 3) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                tail = [t.strip() for t in f.read().splitlines() if t.strip()][-lines:]
        except OSError:
            return ""
        return " | ".join(tail)[-400:]

    def run(self, spec: dict[str, Any], timeout: float = CASE_TIMEOUT_S) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            failure = self._start()
            if failure is not None:
                return failure
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(spec) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.proc = None
            return {"error": f"{self.label} worker died: {self.log_tail()}"}
        return self._read(timeout)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the worker's loop ends at end of input
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def worker_env(threads: int, jax_platform: str | None) -> dict[str, str]:
    """The environment of a worker: thread caps, repo on the path, JAX's platform."""
    env = dict(os.environ)
    env.update(common.thread_env(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if jax_platform:
        env["JAX_PLATFORMS"] = jax_platform
    return env


def probe_jax(env: dict[str, str]) -> dict[str, Any]:
    """{"jax", "platform", "device"} of JAX's default device, asked in a subprocess (so this
    process never initialises a GPU); platform "none" when JAX cannot start."""
    code = ("import json, jax; d = jax.devices()[0]; print(json.dumps({'jax': jax.__version__,"
            " 'platform': d.platform, 'device': str(d.device_kind)}))")
    env = {**env, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=START_TIMEOUT_S, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {"jax": _version("jax"), "platform": "none", "device": "unknown"}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int, probe: dict[str, Any]) -> dict[str, Any]:
    gpu = probe.get("platform") == "gpu"
    return {
        "cpu": cpu_name(), "cores": os.cpu_count(), "threads": threads,
        "device": probe.get("device") if gpu else "cpu", "jax": probe.get("jax"),
        "torch": _version("torch"), "python": platform.python_version(),
        "os": platform.platform(),
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


# ---------------------------------------------------------------------------------------
# Turning worker results into rows (pure)


def _num(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _measurement(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if not result or "seconds" not in result:
        return None
    keys = ("seconds", "repeats", "calls_per_repeat", "spread", "warmup", "device", "rounds")
    return {k: _num(result[k]) if isinstance(result[k], float) else result[k]
            for k in keys if k in result}


def _config(spec: dict[str, Any], threads: int, results: dict[str, dict | None],
            jax_info: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in spec.items() if k not in ("name", "kind", "quick")}
    config["threads"] = threads
    if spec["kind"] in ("train", "infer", "train_gpu"):
        config["conv_impl"] = jax_info.get("conv_impl")
    if spec["kind"] == "baseline":
        config["impl"] = METHOD_IMPLS.get(spec["method"], spec["method"])
    config["measurement"] = {side: _measurement(r) for side, r in results.items()
                             if r is not None and "seconds" in r}
    errors = {side: r["error"] for side, r in results.items() if r and "error" in r}
    if errors:
        config["errors"] = errors
    return config


def build_rows(spec: dict[str, Any], jax_result: dict[str, Any] | None,
               other_result: dict[str, Any] | None, threads: int,
               jax_info: dict[str, Any] | None = None,
               other_name: str = "torch") -> list[Row]:
    """Schema rows for one case from the JAX worker's and the other side's results.

    `other_result` is PyTorch's (train, infer), the peer's (baseline) or None.
    """
    jax_info = jax_info or {}
    seconds = lambda r: r.get("seconds") if r else None  # noqa: E731
    js, os_ = seconds(jax_result), seconds(other_result)
    config = _config(spec, threads, {"jax": jax_result, other_name: other_result}, jax_info)
    kind, name = spec["kind"], spec["name"]
    if kind == "train":
        # PyTorch's value is its faster layout (NCHW or channels_last; torch_bench.train).
        ratio = os_ / js if js and os_ else None
        if jax_result and jax_result.get("round_ratios") and os_:
            ratio = statistics.median(jax_result["round_ratios"])
            config["round_ratios"] = [_num(r) for r in jax_result["round_ratios"]]
        row = {"name": name, "unit": "s/step", "jax": _num(js), "torch": _num(os_),
               "ratio": _num(ratio), "config": config}
        if other_result and other_result.get("layout"):
            row["torch_layout"] = other_result["layout"]
            config["torch_layouts"] = {k: _num(v) for k, v in other_result["layouts"].items()}
        return [row]
    if kind == "train_gpu":
        images = spec["batch"] / js if js else None
        gmacs = (jax_result or {}).get("gmacs_per_image")
        # Forward + backward ≈ 3 forward passes; a MAC is 2 flops.
        tflops = images * gmacs * 2 * 3 / 1e3 if images and gmacs else None
        config["gmacs_per_image"] = _num(gmacs)
        return [
            {"name": name, "unit": "images/s", "jax": _num(images), "torch": None,
             "ratio": None, "config": config},
            {"name": f"{name}/tflops", "unit": "TFLOP/s", "jax": _num(tflops), "torch": None,
             "ratio": None, "config": config},
        ]
    megapixels = spec["size"] ** 2 / 1e6
    rate = lambda s: megapixels / s if s else None  # noqa: E731
    if kind == "infer":
        jr, tr = rate(js), rate(os_)
        channels = (jax_result or {}).get("channels", spec["channels"])
        config["image"] = f"{spec['size']}×{spec['size']}×{channels}"
        return [{"name": name, "unit": "MP/s", "jax": _num(jr), "torch": _num(tr),
                 "ratio": _num(jr / tr if jr and tr else None), "config": config}]
    peer = spec.get("peer")
    return [{"name": name, "unit": "MP/s", "jax": _num(rate(js)), "torch": None,
             "peer": PEER_LABELS.get(peer, peer) if peer else None,
             "peer_value": _num(rate(os_)) if peer else None, "ratio": None,
             "config": config}]


# ---------------------------------------------------------------------------------------
# System benchmarks (another module; merged when present)


def system_rows(quick: bool, patterns: str | None) -> list[Row]:
    """Rows of `benchmarks.system.run_all(quick)` matching `patterns`; [] when absent."""
    if patterns and all(p.strip().startswith(("train/", "infer/"))
                        for p in patterns.split(",") if p.strip()):
        return []
    if importlib.util.find_spec("benchmarks.system") is None:
        return []
    print("system benchmarks (benchmarks.system.run_all) ...", flush=True)
    try:
        from benchmarks import system

        rows = list(system.run_all(quick, patterns))
    except Exception as e:  # their failure must not lose ours
        print(f"  system benchmarks failed: {type(e).__name__}: {e}", flush=True)
        return []
    out = []
    for row in rows:
        row = dict(row)
        for key in ("torch", "ratio"):
            row.setdefault(key, None)
        if case_list.matches(row.get("name", ""), patterns):
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------
# Output


def write_json_atomic(path: str, doc: Any) -> None:
    """Writes `doc` as JSON to `path` atomically (the project's `images.write_text`)."""
    from denoise_jax.images import write_text

    write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def _fmt(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:.4g}{' ' + unit if unit else ''}"


def progress_line(index: int, total: int, rows: list[Row], elapsed: float) -> str:
    row = rows[0]
    if "peer" in row:  # a classical method: its peer (or none)
        other = f"peer {row['peer'] or 'none'} {_fmt(row.get('peer_value'))}"
    else:
        other = f"torch {_fmt(row.get('torch'))}"
    errors = row["config"].get("errors")
    note = f"  [{'; '.join(f'{k}: {v}' for k, v in errors.items())}]" if errors else ""
    return (f"[{index}/{total}] {row['name']}: jax {_fmt(row.get('jax'), row['unit'])}, "
            f"{other}, ratio {_fmt(row.get('ratio'))} ({elapsed:.0f} s){note}")


# ---------------------------------------------------------------------------------------


def paired_rounds(workers: dict[str, Worker], spec: dict[str, Any], twin: dict[str, Any],
                  jax_first: dict[str, Any], torch_first: dict[str, Any],
                  timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs rounds 2.. of a train case, JAX then its twin each time (both keep their compiled
    step between rounds), and combines all rounds with `combine_rounds`."""
    jax_rounds, torch_rounds = [jax_first], [torch_first]
    for r in range(1, spec["rounds"]):
        if any("error" in x for x in (jax_rounds[-1], torch_rounds[-1])):
            break
        jax_rounds.append(workers["jax"].run(dict(spec, round=r), timeout))
        torch_rounds.append(workers["torch"].run(dict(twin, round=r), timeout))
    return combine_rounds(jax_rounds, torch_rounds)


def combine_rounds(jax_rounds: list[dict[str, Any]],
                   torch_rounds: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(JAX result, twin result) of a train case measured in alternating rounds.

    Each side's seconds are the median over its rounds (the twin's per layout, its faster
    layout then chosen on those medians); "round_ratios" (on the JAX result) pairs each
    round's twin, at that round's faster layout, with the JAX step measured just before it.
    A round that failed on either side is left out; all failed: the first error is returned.
    """
    pairs = [(j, t) for j, t in zip(jax_rounds, torch_rounds, strict=True)
             if "seconds" in j and "seconds" in t]
    if not pairs:
        return jax_rounds[0], torch_rounds[0]
    jax = dict(pairs[0][0], seconds=statistics.median(j["seconds"] for j, _ in pairs),
               rounds=[j["seconds"] for j, _ in pairs],
               round_ratios=[t["seconds"] / j["seconds"] for j, t in pairs])
    twin = dict(pairs[0][1], rounds=[t["seconds"] for _, t in pairs])
    if "layouts" in twin:
        layouts = {k: statistics.median(t["layouts"][k] for _, t in pairs)
                   for k in twin["layouts"]}
        best = min(layouts, key=layouts.get)
        twin.update(layouts=layouts, layout=best, seconds=layouts[best])
    else:
        twin["seconds"] = statistics.median(t["seconds"] for _, t in pairs)
    return jax, twin


def run_cases(specs: list[dict[str, Any]], threads: int, gpu: bool, log_dir: str,
              torch_available: bool) -> tuple[list[Row], dict[str, Any]]:
    """Runs every spec on its workers; returns (rows, JAX CPU worker info)."""
    workers = {
        "jax": Worker("jax", threads, worker_env(threads, "cpu"), log_dir),
        "torch": Worker("torch", threads, worker_env(threads, None), log_dir),
        "peer": Worker("peer", threads, worker_env(threads, None), log_dir),
    }
    if gpu:
        workers["jax-gpu"] = Worker("jax", threads, worker_env(threads, None), log_dir,
                                    label="jax-gpu")
    rows: list[Row] = []
    timeout = CASE_TIMEOUT_S
    try:
        for index, spec in enumerate(specs, 1):
            start = time.perf_counter()
            if spec["kind"] == "train_gpu":
                jax_result, other, other_name = workers["jax-gpu"].run(spec, timeout), None, "torch"
            else:
                jax_result = workers["jax"].run(spec, timeout)
                if spec["kind"] == "baseline":
                    other_name = "peer"
                    other = workers["peer"].run(spec, timeout) if spec.get("peer") else None
                else:
                    other_name = "torch"
                    if not torch_available:
                        other = {"error": "torch not installed (pip install -r "
                                          "requirements-bench.txt)"}
                    else:
                        twin = dict(spec, channels=(jax_result or {}).get("channels",
                                                                          spec["channels"]))
                        other = workers["torch"].run(twin, timeout)
                        if spec["kind"] == "train" and spec.get("rounds", 1) > 1:
                            jax_result, other = paired_rounds(workers, spec, twin, jax_result,
                                                              other, timeout)
            info = workers["jax-gpu" if spec["kind"] == "train_gpu" else "jax"].info
            new = build_rows(spec, jax_result, other, threads, info, other_name)
            print(progress_line(index, len(specs), new, time.perf_counter() - start),
                  flush=True)
            rows += new
    finally:
        for worker in workers.values():
            worker.close()
    return rows, workers["jax"].info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="JAX vs PyTorch (and classical peers) speed benchmarks.")
    parser.add_argument("--quick", action="store_true",
                        help="a subset that runs in about 2 minutes on 2 cores")
    parser.add_argument("--cases", metavar="GLOB[,GLOB...]",
                        help="only cases whose names match (e.g. 'train/*,infer/dncnn/*')")
    parser.add_argument("--out", default=RESULTS, metavar="DIR",
                        help=f"results folder (default {os.path.relpath(RESULTS)})")
    parser.add_argument("--threads", type=int, default=common.available_cores(),
                        help="cores for every framework (default: all available)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny models and images, one repeat (tests only)")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help=f"alternate JAX and its twin N times per train case; the ratio "
                             f"is the median of the paired rounds' (default {TRAIN_ROUNDS}, "
                             "1 with --quick or --tiny)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.threads <= common.available_cores():
        parser.error(f"--threads must be between 1 and the {common.available_cores()} "
                     "cores this process may use")

    probe = probe_jax(worker_env(args.threads, None))
    gpu = probe.get("platform") == "gpu"
    specs = case_list.select(quick=args.quick, patterns=args.cases, tiny=args.tiny, gpu=gpu)
    if args.list:
        print("\n".join(s["name"] for s in specs))
        return 0
    for spec in specs:
        spec["quick"] = args.quick
        if spec["kind"] == "train":
            spec["rounds"] = args.rounds or (1 if args.quick or args.tiny else TRAIN_ROUNDS)
    machine = machine_info(args.threads, probe)
    torch_available = importlib.util.find_spec("torch") is not None
    print(f"benchmarks: {len(specs)} cases on {machine['cpu']} ({args.threads} of "
          f"{machine['cores']} cores), device {machine['device']}, jax {machine['jax']}, "
          f"torch {machine['torch'] or 'not installed'}", flush=True)

    log_dir = tempfile.mkdtemp(prefix="denoise-bench-logs-")
    started = time.perf_counter()
    rows, jax_info = run_cases(specs, args.threads, gpu, log_dir, torch_available)
    if not args.tiny:
        rows += system_rows(args.quick, args.cases)
    failed = any(r.get("config", {}).get("errors") for r in rows)
    if failed:
        print(f"worker logs kept in {log_dir}", flush=True)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)

    machine["conv_impl"] = jax_info.get("conv_impl")
    now = datetime.datetime.now()
    doc = {
        "machine": machine,
        "date": now.isoformat(timespec="seconds"),
        "quick": args.quick,
        "tiny": args.tiny,
        "command": " ".join(["python -m benchmarks.run", *(argv if argv is not None
                                                           else sys.argv[1:])]),
        "seconds": round(time.perf_counter() - started, 1),
        "cases": rows,
    }
    suffix = "-tiny" if args.tiny else ("-quick" if args.quick else "")
    dated = os.path.join(args.out, f"{now:%Y-%m-%d}-{slug(machine['device'])}{suffix}.json")
    latest = os.path.join(args.out, "latest.json")
    write_json_atomic(dated, doc)
    write_json_atomic(latest, doc)
    print()
    print(report.render(doc))
    print(f"\nwrote {os.path.relpath(latest)} and {os.path.relpath(dated)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
