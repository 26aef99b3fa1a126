"""Pieces every benchmark worker shares: thread pinning, input images, and the timer.

Imports only numpy (and scikit-image for the test photo), so a PyTorch worker never loads
JAX and a JAX worker never loads PyTorch.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SIGMA = 25.0 / 255.0  # the noise of every input image (AWGN, [0, 1] scale)

# Thread-count variables the numeric libraries read at start-up (OpenMP, MKL, OpenBLAS).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pin_threads(threads: int) -> list[int]:
    """Restricts this process to `threads` of its allowed cores; returns their ids.

    XLA sizes its CPU thread pool from the affinity mask (it has no thread-count flag), so
    pinning is how a JAX process and a PyTorch process get the same number of cores.
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return []
    cores = allowed[: max(1, threads)]
    os.sched_setaffinity(0, cores)
    return cores


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap OpenMP/BLAS pools at `threads`."""
    return {name: str(threads) for name in THREAD_VARS}


def photo(size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A noisy test photo: [size, size, channels] float32, clipped to [0, 1].

    scikit-image's astronaut (512×512 RGB), mirrored to fill larger sizes, grey as the
    channel mean, plus AWGN of `SIGMA`. Content matters to NLM and BM3D, not to networks.
    """
    from skimage import data

    clean = data.astronaut().astype(np.float32) / 255.0
    reps = -(-size // clean.shape[0])
    tiles = [np.flip(clean, axis=0) if i % 2 else clean for i in range(reps)]
    column = np.concatenate(tiles, axis=0)
    tiles = [np.flip(column, axis=1) if i % 2 else column for i in range(reps)]
    image = np.concatenate(tiles, axis=1)[:size, :size]
    if channels == 1:
        image = image.mean(axis=-1, keepdims=True)
    rng = np.random.default_rng(seed)
    noisy = image + SIGMA * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def train_batch(batch: int, patch: int, channels: int = 3,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean): [batch, patch, patch, channels] float32 random crops with AWGN."""
    rng = np.random.default_rng(seed)
    source = photo(max(512, patch), channels, seed)
    ys = rng.integers(0, source.shape[0] - patch + 1, batch)
    xs = rng.integers(0, source.shape[1] - patch + 1, batch)
    clean = np.stack([source[y : y + patch, x : x + patch] for y, x in zip(ys, xs, strict=True)])
    noisy = clean + SIGMA * rng.standard_normal(clean.shape, dtype=np.float32)
    return noisy.astype(np.float32), clean.astype(np.float32)


def spec_key(spec: dict[str, Any]) -> str:
    """A case spec as a stable string (its round number left out), for per-case caches."""
    return json.dumps({k: v for k, v in spec.items() if k != "round"}, sort_keys=True)


def kept(cache: dict, key: Any, keep: int, build: Callable[[], Any]) -> Any:
    """`cache[key]`, built by `build()` on a miss; holds at most `keep` entries, the oldest
    dropped first (a worker keeps one case's models, not every case's)."""
    if key not in cache:
        if len(cache) >= keep:
            cache.pop(next(iter(cache)))
        cache[key] = build()
    return cache[key]


def budget(spec: dict[str, Any]) -> dict[str, Any]:
    """`measure`'s repeats and time budget for a case: 5 repeats within 30 s; --quick 3
    within 10 s; tiny (tests) 1."""
    if spec.get("tiny"):
        return {"repeats": 1, "budget_s": 1.0}
    if spec.get("quick"):
        return {"repeats": 3, "budget_s": 10.0}
    return {"repeats": 5, "budget_s": 30.0}


def measure(call: Callable[[], Any], *, warmup: int, repeats: int, budget_s: float,
            min_repeat_s: float = 0.2) -> dict[str, Any]:
    """Times `call` (which must return only when its work is done).

    Runs `warmup` untimed calls, then up to `repeats` timed repeats, stopping early once
    `budget_s` seconds of timed repeats have passed (at least one repeat always runs). A call
    much shorter than `min_repeat_s` (judged by the last warm-up) is looped inside a repeat
    so timer and dispatch noise stay small.

    Returns {"seconds": median seconds per call, "repeats", "calls_per_repeat", "warmup",
    "spread": (max - min) / median over the repeats}.
    """
    last = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        call()
        last = time.perf_counter() - start
    inner = max(1, math.ceil(min_repeat_s / last)) if last > 0 else 1
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < max(1, repeats):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        times.append((time.perf_counter() - start) / inner)
        if time.perf_counter() - begin >= budget_s:
            break
    median = statistics.median(times)
    return {
        "seconds": median,
        "repeats": len(times),
        "calls_per_repeat": inner,
        "warmup": warmup,
        "spread": (max(times) - min(times)) / median if median > 0 else 0.0,
    }
