"""One writer for all training metrics: TensorBoard event files plus `metrics.jsonl`.

`metrics.jsonl` holds one JSON object per log event: `{"step": 100, "split": "train",
"cpu_hours": 0.02, "loss": 0.01, ...}`. `cpu_hours` is the CPU time this process and every
earlier chunk of the run used so far (all threads, input pipeline and evaluation included),
so curves of runs on different or busy machines compare per unit of compute. TensorBoard
tags are `<split>/<name>`. Only process 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import numpy as np

# tensorboardX is imported only when a writer is enabled (a run's lead process).


class MetricWriter:
    """Writes scalars and images under `workdir` (TensorBoard events + metrics.jsonl).

    `resume_step`: drop records after this step (they came from a run that was killed
    before its next checkpoint, and the resumed run writes them again).
    """

    def __init__(self, workdir: str, resume_step: int | None = None, enabled: bool = True):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if not enabled:
            return
        from tensorboardX import SummaryWriter

        os.makedirs(workdir, exist_ok=True)
        if resume_step is not None:
            _truncate_jsonl(self.path, resume_step)
        earlier = [r.get("cpu_hours") or 0.0 for r in read_metrics(workdir)[-1:]]
        self._cpu_offset = (earlier[0] if earlier else 0.0) - time.process_time() / 3600
        purge = None if resume_step is None else resume_step + 1
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge,
                                 flush_secs=30)
        self._jsonl = open(self.path, "a", encoding="utf-8")

    def write_scalars(self, step: int, split: str, scalars: Mapping[str, float]) -> None:
        """Logs {name: value} for `split` ('train', 'val', ...) at `step`."""
        if not self.enabled:
            return
        values = {k: float(v) for k, v in scalars.items()}
        for name, value in values.items():
            self._tb.add_scalar(f"{split}/{name}", value, step)
        record = {"step": int(step), "split": split,
                  "cpu_hours": round(self._cpu_offset + time.process_time() / 3600, 6)}
        record.update({k: (v if math.isfinite(v) else None) for k, v in values.items()})
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """Logs {tag: [H, W, C] float in [0, 1]} images at `step` (C in {1, 3})."""
        if not self.enabled:
            return
        for tag, image in images.items():
            image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
            self._tb.add_image(tag, image, step, dataformats="HWC")

    def flush(self) -> None:
        if self.enabled:
            self._tb.flush()
            self._jsonl.flush()

    def close(self) -> None:
        if self.enabled:
            self._tb.close()
            self._jsonl.close()
            self.enabled = False


def _truncate_jsonl(path: str, last_step: int) -> None:
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(kept)


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
    """The records of `workdir/metrics.jsonl` (optionally one split), oldest first."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if split is None or r["split"] == split]
