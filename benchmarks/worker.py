"""A benchmark worker: one process per framework, driven by benchmarks/run.py.

    python -m benchmarks.worker jax|torch|peer --threads N

Pins itself to N cores before loading its framework (and sets PyTorch's/OpenCV's thread
counts to N), prints {"ready": {...versions...}} as one JSON line, then answers each JSON
case spec read from stdin with one JSON result line: the handler's dict, or {"error": "..."}.
Anything the libraries print goes to stderr, so stdout carries only these lines.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks import common

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _setup_jax() -> tuple[dict[str, Any], dict[str, Handler]]:
    import jax

    from benchmarks import jax_bench

    device = jax.devices()[0]
    info = {"jax": jax.__version__, "platform": device.platform,
            "device": str(device.device_kind), "conv_impl": jax_bench.conv_impl()}
    return info, jax_bench.HANDLERS


def _setup_torch(threads: int) -> tuple[dict[str, Any], dict[str, Handler]]:
    import torch

    from benchmarks import torch_bench

    torch.set_num_threads(threads)
    return {"torch": torch.__version__, "threads": torch.get_num_threads()}, torch_bench.HANDLERS


def _setup_peer(threads: int) -> tuple[dict[str, Any], dict[str, Handler]]:
    import cv2

    from benchmarks import baseline_bench

    cv2.setNumThreads(threads)
    return {"opencv": cv2.__version__, "threads": cv2.getNumThreads()}, baseline_bench.HANDLERS


def serve(kind: str, threads: int) -> int:
    cores = common.pin_threads(threads)
    # Keep the real stdout for results; send everything else printed to stdout to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if kind == "jax":
        info, handlers = _setup_jax()
    elif kind == "torch":
        info, handlers = _setup_torch(threads)
    else:
        info, handlers = _setup_peer(threads)
    info["cores"] = cores
    out.write(json.dumps({"ready": info}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        spec = json.loads(line)
        try:
            handler = handlers[spec["kind"]]
            result = handler(spec)
        except Exception as e:  # reported in the case's row, the run goes on
            traceback.print_exc()
            message = str(e).strip().splitlines()
            result = {"error": f"{type(e).__name__}: {message[0] if message else ''}"[:300]}
        out.write(json.dumps(result) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("jax", "torch", "peer"))
    parser.add_argument("--threads", type=int, default=common.available_cores())
    args = parser.parse_args(argv)
    return serve(args.kind, args.threads)


if __name__ == "__main__":
    sys.exit(main())
