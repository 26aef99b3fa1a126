"""Checkpoints of a training workdir, and trained runs as evaluation methods.

Layout: `WORKDIR/config.json` (the config of the latest run) and `WORKDIR/checkpoints/<step>/`
with two items, `state` (the `TrainState` pytree) and `data_iter` (the input pipeline's
position, JSON). Kept: the last `keep` steps plus the best by validation PSNR.

Importing this module registers a resolver with `denoise_jax.evaluate`, so a workdir
path (optionally `DIR@best` or `DIR@latest`) or a shipped model (`pretrained:NAME`) works as
a method name: `evaluate.evaluate(["noisy", "runs/x", "pretrained:gauss_rgb"], ...)`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from typing import Any

from ml_collections import ConfigDict

from denoise_jax import evaluate
from denoise_jax.errors import UserError

CHECKPOINTS = "checkpoints"
CONFIG = "config.json"
_ITEMS = ("state", "data_iter")


_EXPECTED_ORBAX_WARNINGS = (
    # orbax warns on every save without metrics once best_fn is set; most saves have none.
    "did not provide metrics",
    # Loading a run for evaluation opens its checkpoints read-only, on purpose.
    "read_only=True",
    "is read only",
)


def _drop_expected_warnings(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(text in message for text in _EXPECTED_ORBAX_WARNINGS)


logging.getLogger("absl").addFilter(_drop_expected_warnings)


def _ocp():
    # orbax takes ~1 s to import; only pay it when a checkpoint is touched.
    import orbax.checkpoint as ocp

    return ocp


def manager(workdir: str, keep: int = 3, *, read_only: bool = False):
    """The orbax `CheckpointManager` of `workdir/checkpoints`.

    Keeps the newest `keep` checkpoints and the one with the best `val_psnr` metric;
    removes half-written (`*.orbax-checkpoint-tmp`) directories left by a killed run.
    """
    ocp = _ocp()
    from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

    policy = pp.AnyPreservationPolicy([
        pp.LatestN(max(1, int(keep))),
        pp.BestN(get_metric_fn=_psnr_of, reverse=False, n=1,
                 keep_checkpoints_without_metrics=False),
    ])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, best_fn=_psnr_of, best_mode="max",
        cleanup_tmp_directories=not read_only, read_only=read_only, create=not read_only,
    )
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), CHECKPOINTS),
                                 options=options, item_names=_ITEMS)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _psnr_of(metrics: dict[str, Any]) -> float:
    return float(metrics["val_psnr"])


def save(mngr, step: int, state: Any, data_state: dict, val_psnr: float | None = None) -> None:
    """Saves `state` and the pipeline position at `step` (asynchronously), with its PSNR."""
    ocp = _ocp()
    mngr.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data_iter=ocp.args.JsonSave(data_state)),
        metrics={"val_psnr": float(val_psnr)} if _finite(val_psnr) else None,
    )


def restore(mngr, target: Any, *, set_aside: bool = True) -> tuple[int, Any, dict] | None:
    """(step, state, data_state) from the newest checkpoint that reads back; None if none exist.

    `target` gives the structure, dtypes and shardings. A checkpoint that fails to restore
    (damaged) is reported on stderr and the previous one is tried; once one restores, the
    failed newer ones are moved to `checkpoints_damaged/` (with `set_aside`) so the run can
    save those steps again. If none restores (e.g. the model changed), nothing is moved
    and a `UserError` says so.
    """
    ocp = _ocp()
    failed = []
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            restored = mngr.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), data_iter=ocp.args.JsonRestore()))
        except Exception as e:  # orbax raises ValueError/KeyError/FileNotFoundError/... by damage
            _warn(f"checkpoint {mngr.directory}/{step} cannot be restored "
                  f"({type(e).__name__}: {_first_line(e)}); trying the previous one")
            failed.append((step, e))
            continue
        for bad, _ in failed:
            if set_aside:
                _warn(f"moved the damaged checkpoint {bad} to {_set_aside(mngr, bad)}")
        return step, restored["state"], restored["data_iter"]
    if failed:
        step, e = failed[0]
        raise UserError(
            f"none of the {len(failed)} checkpoints in {mngr.directory} can be restored with this "
            f"config (newest, step {step}: {type(e).__name__}: {_first_line(e)}); if the model "
            "or optimizer changed, train in a new --workdir")
    return None


def _set_aside(mngr, step: int) -> str:
    import jax

    folder = os.path.join(os.path.dirname(str(mngr.directory)), "checkpoints_damaged")
    target = os.path.join(folder, f"{step}-{int(time.time())}")
    if jax.process_index() == 0:
        os.makedirs(folder, exist_ok=True)
        os.replace(os.path.join(str(mngr.directory), str(step)), target)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    mngr.reload()
    return target


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return (text.splitlines() or [""])[0][:200]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# config.json


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def config_changes(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every leaf that differs between two config dicts."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "<unset>") != b.get(k, "<unset>")]


def load_config(workdir: str) -> ConfigDict:
    """The config saved in `workdir/config.json`."""
    path = os.path.join(workdir, CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            return ConfigDict(json.load(f))
    except FileNotFoundError:
        raise UserError(f"{workdir} has no {CONFIG}: is it a training workdir?") from None
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}); restore it or start a new workdir"
                        ) from None


def write_config(workdir: str, config: ConfigDict, announce: bool = True) -> list[str]:
    """Writes `workdir/config.json`; returns (and warns about) the keys changed since the last run.

    Only process 0 writes; `announce=False` on the other processes.
    """
    new = json.loads(config.to_json_best_effort())
    path = os.path.join(workdir, CONFIG)
    changes = []
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                changes = config_changes(json.load(f), new)
        except ValueError:
            changes = ["<config.json was unreadable>"]
        if changes and announce:
            _warn(f"the config differs from the last run in {workdir} (resuming anyway): "
                  + "; ".join(changes))
    if announce:
        from denoise_jax.images import write_text

        os.makedirs(workdir, exist_ok=True)
        write_text(path, json.dumps(new, indent=2, sort_keys=True) + "\n")
    return changes


# ---------------------------------------------------------------------------------------------
# Trained runs as evaluation methods.


def is_workdir(path: str) -> bool:
    """True for a directory that holds a training run (config.json or checkpoints/)."""
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, CONFIG))
                                    or os.path.isdir(os.path.join(path, CHECKPOINTS)))


def load_run(workdir: str, which: str = "best") -> tuple[Any, dict, bool, int]:
    """(model, variables, from_logits, step) of the training run in `workdir`.

    `which`: "best" (highest validation PSNR; the newest when none was evaluated) or
    "latest". Uses the EMA parameters when the run kept them. A checkpoint that does not
    read back is skipped with a warning in favour of the next newest. Never touches the
    network.
    """
    from denoise_jax import train

    if which not in ("best", "latest"):
        raise UserError(f"which checkpoint: 'best' or 'latest', not {which!r}")
    if not os.path.isdir(workdir):
        raise UserError(f"no such workdir: {workdir!r}")
    config = load_config(workdir)
    folder = os.path.join(workdir, CHECKPOINTS)
    if not os.path.isdir(folder):
        raise UserError(f"{workdir} has no checkpoints yet: train it first "
                        f"(denoise-jax train --config ... --workdir {workdir})")
    mngr = manager(workdir, read_only=True)
    try:
        steps = sorted(mngr.all_steps(), reverse=True)
        if not steps:
            raise UserError(f"{workdir} has no finished checkpoint: train it longer")
        if which == "best":
            best = mngr.best_step()
            if best is not None:
                steps = [best] + [s for s in steps if s != best]
        state = None
        for step in steps:
            try:
                state = mngr.restore(step, args=_ocp().args.Composite(
                    state=_ocp().args.StandardRestore()))["state"]
                break
            except Exception as e:  # damaged: fall back to the next newest
                _warn(f"checkpoint {folder}/{step} cannot be restored ({type(e).__name__}: "
                      f"{_first_line(e)}); trying another")
    finally:
        mngr.close()
    if state is None:
        raise UserError(f"no checkpoint in {folder} can be restored")
    model, from_logits = train.build_model(config)
    params = state.get("ema_params") or state["params"]
    variables = {"params": params}
    if state.get("batch_stats"):
        variables["batch_stats"] = state["batch_stats"]
    return model, variables, from_logits, int(step)


def load_method(workdir: str, which: str = "best") -> evaluate.Method:
    """The run in `workdir` as a blind denoiser `denoise(noisy [H, W, C], sigma) -> [H, W, C]`
    (whole-image; `inference.Denoiser` adds tiling and self-ensembling)."""
    from denoise_jax import train

    model, variables, from_logits, step = load_run(workdir, which)
    name = os.path.basename(os.path.normpath(workdir))
    method = train.make_method(model, variables, from_logits, name)
    method.step = step
    return method


def export(workdir: str, dest: str, which: str = "latest") -> int:
    """Writes the weights `load_run(workdir, which)` evaluates with to `dest`; returns the step.

    `dest` becomes a minimal workdir (config.json and one checkpoint holding only the
    evaluation parameters — EMA when kept — and batch statistics: no optimizer state, no
    pipeline position), which every loader reads like the run itself: how shipped
    pretrained models are made. `dest` must not exist yet.
    """
    if os.path.exists(dest):
        raise UserError(f"{dest} already exists: export to a new folder")
    _, variables, _, step = load_run(workdir, which)
    write_config(dest, load_config(workdir), announce=True)
    mngr = manager(dest, keep=1)
    try:
        save(mngr, step, variables, {})
        mngr.wait_until_finished()
    finally:
        mngr.close()
    return step


PRETRAINED_PREFIX = "pretrained:"


def _resolve(name: str) -> evaluate.Method | None:
    path, _, which = name.partition("@")
    if path.startswith(PRETRAINED_PREFIX):
        from denoise_jax import pretrained

        path = pretrained.find(path[len(PRETRAINED_PREFIX):])
    path = os.path.expanduser(path)
    if not is_workdir(path):
        return None
    return load_method(path, which or "best")


evaluate.register_resolver(_resolve)
