"""The PyTorch side of the train and infer cases (runs inside a PyTorch worker process).

The twins (torch_models.py) run eagerly in float32 with PyTorch's defaults (no
torch.compile): what a PyTorch user gets out of the box. A train step is timed in both of
PyTorch's CPU layouts, NCHW and channels_last (`model.to(memory_format=torch.channels_last)`
and the inputs likewise; often faster for convolutions on CPU), and the faster one is the
result (`layout` names it, `layouts` has both). Inference runs NCHW. The timed work mirrors
jax_bench.py call for call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import common

CHARBONNIER_EPS = 1e-3  # as denoise_jax.optim


def _loss(name: str):
    import torch
    import torch.nn.functional as F

    if name == "mse":
        return F.mse_loss
    if name == "charbonnier":
        return lambda out, clean: torch.sqrt((out - clean) ** 2 + CHARBONNIER_EPS**2).mean()
    raise ValueError(f"benchmark loss must be mse or charbonnier, not {name!r}")


def _optimizer(cfg: dict[str, Any], params):
    import torch

    betas = (cfg.get("b1", 0.9), cfg.get("b2", 0.999))
    if cfg["name"] == "adam":
        return torch.optim.Adam(params, lr=cfg["lr"], betas=betas)
    if cfg["name"] == "adamw":
        return torch.optim.AdamW(params, lr=cfg["lr"], betas=betas,
                                 weight_decay=cfg.get("weight_decay", 0.0))
    raise ValueError(f"benchmark optimizer must be adam or adamw, not {cfg['name']!r}")


def _nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


LAYOUTS = ("nchw", "channels_last")


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """The faster layout's `train_in` result, with "layout" (its name) and "layouts"
    ({layout: seconds per step} for both)."""
    results = {layout: train_in(spec, layout) for layout in LAYOUTS}
    best = min(LAYOUTS, key=lambda layout: results[layout]["seconds"])
    return {**results[best], "layout": best,
            "layouts": {layout: r["seconds"] for layout, r in results.items()}}


def train_in(spec: dict[str, Any], layout: str = "nchw") -> dict[str, Any]:
    """Seconds per optimizer step of the twin on the same fixed batch (2 warm-up steps), with
    model and batch in `layout` ("nchw" or "channels_last"). Model and optimizer are kept per
    spec and layout, as JAX keeps its compiled step, for later rounds of the case."""
    key = (common.spec_key(spec), layout)
    call = common.kept(_TRAIN_CALLS, key, _KEEP, lambda: _train_call(spec, layout))
    return common.measure(call, warmup=2, **common.budget(spec))


_TRAIN_CALLS: dict[tuple[str, str], Any] = {}
_KEEP = 2  # both layouts of one case


def _train_call(spec: dict[str, Any], layout: str):
    """One optimizer step of the twin in `layout` on the case's fixed batch."""
    import torch

    from benchmarks import torch_models

    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = torch_models.build(spec["model"], spec["channels"], **spec.get("kwargs", {}))
    model.to(memory_format=fmt).train()
    noisy, clean = common.train_batch(spec["batch"], spec["patch"], spec["channels"])
    x, y = (_nchw(a).contiguous(memory_format=fmt) for a in (noisy, clean))
    opt = _optimizer(spec["optimizer"], model.parameters())
    loss_fn = _loss(spec["loss"])

    def call():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return call


def infer(spec: dict[str, Any]) -> dict[str, Any]:
    """Seconds to denoise the same photo through the same `inference.tiled` as JAX."""
    import torch

    from benchmarks import torch_models
    from denoise_jax import inference

    channels = spec["channels"]
    model = torch_models.build(spec["model"], channels, **spec.get("kwargs", {})).eval()

    def apply_fn(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(_nchw(x)).clamp_(0.0, 1.0)
        return out.permute(0, 2, 3, 1).numpy()

    size = spec["size"]
    tile = spec.get("tile") or size
    overlap = spec.get("overlap") or 0
    image = common.photo(size, channels)
    side = min(tile, size, 512)
    inference.tiled(apply_fn, image[:side, :side], tile, overlap)
    result = common.measure(lambda: inference.tiled(apply_fn, image, tile, overlap),
                            warmup=0, **common.budget(spec))
    result.update(channels=channels, warmup=f"1 call on {side}²")
    return result


HANDLERS = {"train": train, "infer": infer}
