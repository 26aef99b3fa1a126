"""The benchmark cases: plain dicts (JSON-serialisable specs the workers receive).

Kinds:
  train     one optimizer step (forward, loss, backward, update) on a fixed batch; s/step
  infer     denoise one noisy photo whole or through the project's tiling; MP/s
  baseline  a classical method of denoise_jax.baselines (and its peer); MP/s
  train_gpu a train case run by JAX on the GPU in float32 or bfloat16; images/s, TFLOP/s

Training configurations follow the experiment configs (batch, patch, loss, optimizer; the
`source` field says which), except where a step would take minutes on a 2-core CPU (then
`source` says what was reduced and why). The learning rate does not change a step's cost;
it is the config's for completeness.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
from typing import Any

Spec = dict[str, Any]

ADAM = {"name": "adam", "lr": 1e-3}

TRAIN: dict[str, Spec] = {
    "dncnn": {
        "model": "dncnn", "kwargs": {"depth": 17, "features": 64, "use_bn": True},
        "patch": 64, "batch": 16, "loss": "mse", "optimizer": ADAM,
        "source": "DnCNN-S as in the paper (17 layers, 64 ch, BN) at "
                  "experiments/skimage_gauss.py's patch 64 and batch 16; MSE, Adam",
    },
    "rednet": {
        "model": "rednet", "kwargs": {"depth": 5, "features": 64},
        "patch": 256, "batch": 4, "loss": "mse", "optimizer": {"name": "adam", "lr": 3e-5},
        "source": "experiments/realnoise_rednet.py (RED10, 256² whole images, batch 4, MSE, "
                  "Adam 3e-5)",
    },
    "mwcnn": {
        "model": "mwcnn", "kwargs": {}, "patch": 128, "batch": 4, "loss": "mse",
        "optimizer": {"name": "adam", "lr": 3e-5},
        "source": "the paper MWCNN (16.2M params) under experiments/realnoise_mwcnn.py's "
                  "protocol (batch 4, MSE, Adam 3e-5) at 128² instead of 256²: a 256² step "
                  "costs 1.4 TFLOP, about 10 s in JAX and far more in PyTorch on 2 cores",
    },
    "nafnet_tiny": {
        "model": "nafnet_tiny", "kwargs": {"width": 16}, "patch": 128, "batch": 8,
        "loss": "charbonnier",
        "optimizer": {"name": "adamw", "lr": 1e-3, "b1": 0.9, "b2": 0.9, "weight_decay": 1e-4},
        "source": "experiments/realnoise_nafnet.py (128² patches, batch 8, Charbonnier, AdamW "
                  "β 0.9/0.9, wd 1e-4)",
    },
    # Candidates for a shipped colour model, at their pilot sizes, under train/dncnn's
    # protocol (experiments/skimage_gauss.py's patch 64, batch 16; MSE, Adam).
    "drunet": {
        "model": "drunet", "kwargs": {"features": (32, 64, 128, 256), "blocks": 2},
        "patch": 64, "batch": 16, "loss": "mse", "optimizer": ADAM,
        "source": "pilot DRUNet (KAIR UNetRes, bias-free; widths 32-256, 2 ResBlocks per level "
                  "and side) under train/dncnn's protocol (patch 64, batch 16, MSE, Adam)",
    },
    "ffdnet": {
        "model": "ffdnet", "kwargs": {"depth": 12, "features": 96},
        "patch": 64, "batch": 16, "loss": "mse", "optimizer": ADAM,
        "source": "FFDNet's colour size (12 layers × 96, no BN, blind) under train/dncnn's "
                  "protocol (patch 64, batch 16, MSE, Adam)",
    },
    "nafnet_small": {
        "model": "nafnet_small", "kwargs": {}, "patch": 64, "batch": 16, "loss": "mse",
        "optimizer": ADAM,
        "source": "nafnet_small's defaults (width 32, local SCA) under train/dncnn's protocol "
                  "(patch 64, batch 16, MSE, Adam)",
    },
    "pridnet": {
        "model": "pridnet", "kwargs": {"features": 32, "unet_levels": 5}, "patch": 128,
        "batch": 4, "loss": "mse", "optimizer": {"name": "adam", "lr": 3e-5},
        "source": "the paper PRIDNet (74.2M params) under experiments/realnoise_pridnet.py's "
                  "protocol (batch 4, MSE, Adam 3e-5) at 128² instead of 256² (a 256² step "
                  "costs 0.76 TFLOP); without the comparison's weight decay",
    },
}

# Inference uses the train cases' models (BN in eval mode).
INFER_MODELS = ("dncnn", "rednet", "mwcnn", "nafnet_tiny", "pridnet", "drunet", "ffdnet",
                "nafnet_small")
SIZES = (512, 2048)
TILE = {512: 256, 2048: 512}  # the project's default tile (512), or half an image it fits
OVERLAP = 32  # the project's default overlap
BASELINES: dict[str, dict[str, Any]] = {
    # method -> peer (another implementation of the same method) and the sizes run
    "nlm": {"peer": "nlm_cv", "sizes": (512, 2048)},
    # BM3D takes ~65 s per 512² colour image on 2 cores; 2048² would take ~20 min.
    "bm3d": {"peer": None, "sizes": (512,)},
}

# Quick: a subset that runs in about two minutes on 2 cores.
QUICK = ("train/dncnn", "train/nafnet_tiny", "infer/dncnn/512/*", "infer/nafnet_tiny/512/*",
         "infer/nlm/512/*", "infer/pretrained-*/512/whole")

# Tiny (tests): every case shrinks to these sizes and models.
TINY_MODELS: dict[str, dict[str, Any]] = {
    "dncnn": {"depth": 3, "features": 8},
    "rednet": {"depth": 2, "features": 8},
    "mwcnn": {"widths": (8, 8, 8), "convs_per_level": 2},
    "nafnet_tiny": {"width": 4},
    "nafnet": {"width": 4, "enc_blk_nums": (1,), "middle_blk_num": 1, "dec_blk_nums": (1,)},
    "pridnet": {"features": 4, "unet_levels": 2},
    "drunet": {"features": (4, 8, 8), "blocks": 1},
    "ffdnet": {"depth": 3, "features": 8},
    "nafnet_small": {"width": 4, "window": 8},
}
TINY_SIZE, TINY_TILE, TINY_OVERLAP, TINY_PATCH, TINY_BATCH = 48, 32, 8, 16, 2


def train_cases() -> list[Spec]:
    return [{"name": f"train/{key}", "kind": "train", "channels": 3, **copy.deepcopy(spec)}
            for key, spec in TRAIN.items()]


def infer_spec(label: str, model: str, kwargs: dict[str, Any], size: int, tiled: bool,
               **extra: Any) -> Spec:
    """An infer case named infer/<label>/<size>/<whole|tiled>."""
    return {
        "name": f"infer/{label}/{size}/{'tiled' if tiled else 'whole'}", "kind": "infer",
        "model": model, "kwargs": copy.deepcopy(kwargs), "size": size, "channels": 3,
        "tile": TILE[size] if tiled else None, "overlap": OVERLAP if tiled else None, **extra,
    }


def infer_cases() -> list[Spec]:
    return [infer_spec(m, m, TRAIN[m]["kwargs"], size, tiled)
            for m in INFER_MODELS for size in SIZES for tiled in (False, True)]


def pretrained_cases(root: str | None = None) -> list[Spec]:
    """Infer cases for every shipped pretrained model (none when the package ships none).

    The model name and arguments come from the model's config.json, so the PyTorch side can
    build the twin without loading JAX.
    """
    from denoise_jax import pretrained

    specs = []
    for name in pretrained.names(root):
        path = os.path.join(pretrained.find(name, root), "config.json")
        try:
            with open(path, encoding="utf-8") as f:
                model = dict(json.load(f)["model"])
        except (OSError, ValueError, KeyError, TypeError):
            model = {"name": None}
        model_name = model.pop("name", None)
        for size in SIZES:
            for tiled in (False, True):
                specs.append(infer_spec(f"pretrained-{name}", model_name, model, size, tiled,
                                        pretrained=name))
    return specs


def baseline_cases() -> list[Spec]:
    return [{"name": f"infer/{method}/{size}/whole", "kind": "baseline", "method": method,
             "peer": info["peer"], "size": size, "channels": 3, "sigma": 25.0 / 255.0}
            for method, info in BASELINES.items() for size in info["sizes"]]


def gpu_cases() -> list[Spec]:
    """float32 and bfloat16 variants of every train case, for JAX on the GPU."""
    specs = []
    for spec in train_cases():
        for dtype in ("float32", "bfloat16"):
            specs.append({**copy.deepcopy(spec), "name": f"{spec['name']}/gpu-{dtype}",
                          "kind": "train_gpu", "dtype": dtype})
    return specs


def shrink(spec: Spec) -> Spec:
    """The tiny version of a case (same name; `config.tiny` says so): for tests."""
    spec = copy.deepcopy(spec)
    spec["tiny"] = True
    model = spec.get("model")
    if model in TINY_MODELS and not spec.get("pretrained"):
        spec["kwargs"] = {**spec.get("kwargs", {}), **copy.deepcopy(TINY_MODELS[model])}
    if "patch" in spec:
        spec["patch"], spec["batch"] = TINY_PATCH, TINY_BATCH
    if "size" in spec:
        spec["size"] = TINY_SIZE
        if spec.get("tile"):
            spec["tile"], spec["overlap"] = TINY_TILE, TINY_OVERLAP
    return spec


def matches(name: str, patterns: str | None) -> bool:
    """Whether `name` matches any of the comma-separated globs (None: everything)."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(name, p.strip()) for p in patterns.split(",") if p.strip())


def select(*, quick: bool = False, patterns: str | None = None, tiny: bool = False,
           gpu: bool = False, pretrained_root: str | None = None) -> list[Spec]:
    """The cases to run, in order: train, infer (models, pretrained, baselines), GPU."""
    specs = train_cases() + infer_cases() + pretrained_cases(pretrained_root) + baseline_cases()
    if gpu:
        specs += gpu_cases()
    if quick:
        specs = [s for s in specs if matches(s["name"], ",".join(QUICK))
                 or (s["kind"] == "train_gpu" and s["name"].startswith("train/dncnn/"))]
    specs = [s for s in specs if matches(s["name"], patterns)]
    return [shrink(s) for s in specs] if tiny else specs
