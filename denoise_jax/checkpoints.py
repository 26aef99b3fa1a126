"""Checkpoints of a training workdir: save, restore, config.json (nothing else).

Layout: `WORKDIR/config.json` (the config of the latest run) and `WORKDIR/checkpoints/<step>/`
with two items, `state` (the `TrainState` pytree) and `data_iter` (the input pipeline's
position, JSON), plus orbax's `metrics` (validation PSNR). Kept: the last `keep` steps plus
the best by validation PSNR. A checkpoint that does not read back is skipped with a one-line
warning (training moves it to `WORKDIR/checkpoints_damaged/`); a save that fails for lack of
room or permission is a one-line `UserError` that leaves the previous checkpoints as they were.

Turning a checkpoint into a denoiser (and `DIR@best|latest`, `pretrained:NAME`) is
`denoise_jax.methods`' job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

from ml_collections import ConfigDict

from denoise_jax.errors import UserError
from denoise_jax.images import place_error, write_text

# jax, orbax and etils are imported inside the functions that use them: the CLI imports this
# module (`models`), and `import denoise_jax.cli` loads none of them.

CHECKPOINTS = "checkpoints"
CONFIG = "config.json"
_ITEMS = ("state", "data_iter")


_EXPECTED_ORBAX_WARNINGS = (
    # orbax warns on every save without metrics once best_fn is set; most saves have none.
    "did not provide metrics",
    # Loading a run for evaluation opens its checkpoints read-only, on purpose.
    "read_only=True",
    "is read only",
    # Training reports a preemption itself, in one line, when it stops for it.
    "Reached preemption sync point",
)


def _drop_teardown_noise(unraisable: Any) -> None:
    """sys.unraisablehook: drops the "Event loop is closed" errors tensorstore reports when
    reads or writes finish after orbax gave up on a failed restore or save (each failure
    is reported in one line by this module); passes everything else on."""
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook
sys.unraisablehook = _drop_teardown_noise


def _drop_expected_warnings(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    if any(text in message for text in _EXPECTED_ORBAX_WARNINGS):
        return False
    # A save that failed for lack of room or permission is reported as one line by `save` /
    # `finish`; orbax's own tracebacks of it (hundreds of lines) would bury that line, and
    # so would its writers that outlive the failure and find their folder removed.
    error = record.exc_info[1] if record.exc_info else None
    if _failed_save and (_TMP in message or _TMP in str(error)):
        return False
    return _place_errno(error) is None and _place_errno(message) is None


_failed_save = False  # set once a save of this process failed (see `_save_errors`)


logging.getLogger("absl").addFilter(_drop_expected_warnings)
logging.getLogger("asyncio").addFilter(_drop_expected_warnings)  # orbax's orphaned writes


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
    """Saves `state` and the pipeline position at `step` (asynchronously), with its PSNR.

    A disk without room for it, or a failed write of this save or of the previous one still
    in flight, is a one-line `UserError` (see `finish`); the complete checkpoints stay.
    """
    ocp = _ocp()
    _check_room(str(mngr.directory), state)
    with _save_errors(mngr):
        mngr.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    data_iter=ocp.args.JsonSave(data_state)),
            metrics={"val_psnr": float(val_psnr)} if _finite(val_psnr) else None,
        )


def finish(mngr) -> None:
    """Waits for the save in flight, then closes `mngr`; a failed write is a `UserError`."""
    with _save_errors(mngr):
        mngr.wait_until_finished()
    mngr.close()


def close_quietly(mngr) -> None:
    """Closes `mngr` on the way out of a failed run, without raising a second error, and
    removes what a failed save left half-written."""
    with contextlib.suppress(Exception):
        mngr.wait_until_finished()
    with contextlib.suppress(Exception):
        mngr.close()
    _remove_partial(str(mngr.directory))


def _remove_partial(directory: str) -> None:
    """Removes the temporary folders of unfinished saves (orbax also does when it starts)."""
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if _TMP in name:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


_TMP = ".orbax-checkpoint-tmp"  # orbax writes <step><_TMP>... and renames it when complete


def steps(workdir: str) -> list[int]:
    """The steps of the complete checkpoints in `workdir`, newest first."""
    folder = os.path.join(workdir, CHECKPOINTS)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(n) for n in names if n.isdigit()
                   and os.path.isdir(os.path.join(folder, n))), reverse=True)


def _val_psnr(step_dir: str) -> float | None:
    """The validation PSNR saved with a checkpoint (None if none); OSError or ValueError when
    its step metadata or metrics file is missing or unreadable.

    Read here, before orbax: its CheckpointManager reads every checkpoint's metrics when it
    starts and fails on a damaged one before any fallback could run.
    """
    _json_object(step_dir, "_CHECKPOINT_METADATA")
    try:
        metrics = _json_object(step_dir, os.path.join("metrics", "metrics"))
    except FileNotFoundError:
        return None
    value = metrics.get("val_psnr")
    return None if value is None else float(value)


def _json_object(step_dir: str, name: str) -> dict:
    """The JSON object in `step_dir/name`; a ValueError naming the file when it is not one."""
    with open(os.path.join(step_dir, name), "rb") as f:
        try:
            value = json.loads(f.read())
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name}: not a JSON object")
    return value


def restore(workdir: str, target: Any = None, *, data_iter: bool = True, best: bool = False,
            set_aside: bool = True) -> tuple[int, Any, dict | None] | None:
    """(step, state, data_state) from the newest checkpoint that reads back; None if none exist.

    Args:
      target: the state's structure, dtypes and shardings; None restores it as saved.
      data_iter: also restore the pipeline position (else data_state is None).
      best: try the checkpoint with the best validation PSNR first.
      set_aside: training: move checkpoints that do not read back (a file truncated,
        garbled or missing) to `checkpoints_damaged/`, so orbax can list the rest and the
        steps can be saved again. False (evaluation): touch nothing.
    Each skipped checkpoint gets one warning line. Call it before `manager`. If none
    restores (e.g. the model changed), nothing is moved and a `UserError` says so.
    """
    ocp = _ocp()
    folder = os.path.join(os.path.abspath(workdir), CHECKPOINTS)
    order, psnr, failed = steps(workdir), {}, {}
    if not order:
        return None
    for step in order:
        try:
            psnr[step] = _val_psnr(os.path.join(folder, str(step)))
        except (OSError, ValueError) as e:
            failed[step] = e
    scored = [s for s in order if _finite(psnr.get(s))]
    if best and scored:
        top = max(scored, key=psnr.get)
        order = [top] + [s for s in order if s != top]
    checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
    restored = None
    try:
        for step in (s for s in order if s not in failed):
            step_dir = os.path.join(folder, str(step))
            try:
                items = {"state": ocp.args.StandardRestore(
                    _here(step_dir) if target is None else target)}
                if data_iter:
                    items["data_iter"] = ocp.args.JsonRestore()
                restored = checkpointer.restore(step_dir, args=ocp.args.Composite(**items))
                break
            except Exception as e:  # orbax raises ValueError/KeyError/OSError/... by damage
                failed[step] = e
    finally:
        checkpointer.close()
    # A checkpoint that vanished while we read (a run training there deleted it) is no damage.
    failed = {s: e for s, e in failed.items() if os.path.isdir(os.path.join(folder, str(s)))}
    if restored is None:
        if not failed:
            return None
        newest = order[0]
        raise UserError(
            f"none of the {len(failed)} checkpoints in {folder} can be restored (newest, step "
            f"{newest}: {_describe(failed[newest])}); if the model or optimizer changed, "
            f"train in a new --workdir, else their files are damaged: restore them from a "
            f"backup, or remove {folder} to start over")
    # Training sets aside every damaged one, older ones too: orbax cannot even list a run
    # with damaged metrics.
    damaged = sorted(failed, reverse=True)
    moved = _set_aside(folder, damaged) if set_aside else {}
    for bad in damaged:
        then = (f"moved it to {moved[bad]}; resuming from step {step}" if set_aside else
                f"using step {step} (left in place)")
        _warn(f"checkpoint {folder}/{bad} cannot be restored ({_describe(failed[bad])}); {then}")
    return step, restored["state"], restored.get("data_iter") if data_iter else None


def _here(step_dir: str) -> Any:
    """A restore target for a checkpoint's state as saved, on this process's first device
    (orbax restores "as saved" only on the device topology it was saved from)."""
    import jax
    from etils import epath

    saved = _ocp().StandardCheckpointHandler().metadata(epath.Path(step_dir) / "state").tree
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), saved)


def _set_aside(folder: str, bad_steps: list[int]) -> dict[int, str]:
    """Moves checkpoints to `checkpoints_damaged/` (process 0; every process waits for it)."""
    import jax

    _sync("checkpoints read")  # no process still reads what is about to move
    damaged = os.path.join(os.path.dirname(folder), "checkpoints_damaged")
    moved = {step: os.path.join(damaged, f"{step}-{int(time.time())}") for step in bad_steps}
    if jax.process_index() == 0:
        for step, target in moved.items():
            os.makedirs(damaged, exist_ok=True)
            os.replace(os.path.join(folder, str(step)), target)
    _sync("checkpoints set aside")
    return moved


def _sync(name: str) -> None:
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _describe(e: Exception) -> str:
    return f"{type(e).__name__}: {_first_line(e)}"


def _place_errno(error: BaseException | str | None) -> int | None:
    """The errno of a write that failed because of where it went (see `images.place_error`):
    from an OSError in the exception chain, or from tensorstore's text in orbax's errors."""
    for _ in range(8):  # the error, then what caused it
        if error is None:
            return None
        if isinstance(error, OSError) and place_error(error.errno):
            return error.errno
        found = re.search(r"os_error_code='?(\d+)|\[Errno (\d+)\]", str(error))
        if found and place_error(int(found.group(1) or found.group(2))):
            return int(found.group(1) or found.group(2))
        error = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
    return None


@contextlib.contextmanager
def _save_errors(mngr) -> Iterator[None]:
    """Turns a save that failed for lack of room or permission into one `UserError` line,
    after removing its half-written folder."""
    try:
        yield
    except Exception as e:
        code = _place_errno(e)
        if code is None:
            raise
        global _failed_save
        _failed_save = True
        # The half-written folder goes once its writers stop: here, and in `close_quietly`
        # for writes still in flight (tensorstore's, which orbax does not wait for).
        with contextlib.suppress(Exception):
            mngr.wait_until_finished()
        _remove_partial(str(mngr.directory))
        raise _cannot_save(str(mngr.directory), *place_error(code)) from None


def _cannot_save(directory: str, reason: str, todo: str) -> UserError:
    done = steps(os.path.dirname(directory))
    kept = (f"the newest complete checkpoint (step {done[0]}) is intact" if done else
            "no checkpoint was complete yet")
    return UserError(f"cannot save a checkpoint in {directory}: {reason}; {kept}; {todo}, then "
                     "re-run the same command to resume")


def _check_room(directory: str, state: Any) -> None:
    """Refuses a save that cannot fit before orbax starts writing it (one process only:
    processes sharing a disk could see different free space and disagree)."""
    import jax

    if jax.process_count() > 1 or not os.path.isdir(directory):
        return
    done = steps(os.path.dirname(directory))
    if done:  # the last checkpoint's size on disk, small files' blocks included
        newest = os.path.join(directory, str(done[0]))
        need = sum(os.lstat(os.path.join(d, f)).st_blocks * 512
                   for d, _, files in os.walk(newest) for f in files)
    else:
        need = sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state))
    free = shutil.disk_usage(directory).free
    if free < need:
        raise _cannot_save(directory, f"the disk is full ({free / 1e6:.1f} MB free, a checkpoint "
                           f"takes {need / 1e6:.1f} MB)", place_error(errno.ENOSPC)[1])


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


def config_json(config: ConfigDict) -> str:
    """The config as config.json holds it: sorted keys, indented, a final newline."""
    return json.dumps(json.loads(config.to_json_best_effort()), indent=2, sort_keys=True) + "\n"


def write_config(workdir: str, config: ConfigDict, announce: bool = True) -> list[str]:
    """Writes `workdir/config.json`; returns (and warns about) the keys changed since the last run.

    Only process 0 writes; `announce=False` on the other processes.
    """
    text = config_json(config)
    new = json.loads(text)
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
        os.makedirs(workdir, exist_ok=True)
        write_text(path, text)
    return changes


# ---------------------------------------------------------------------------------------------
# What a folder is.


def is_workdir(path: str) -> bool:
    """True for a directory that holds a training run (config.json or checkpoints/)."""
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, CONFIG))
                                    or os.path.isdir(os.path.join(path, CHECKPOINTS)))
