"""Training: `train_and_evaluate(config, workdir)` (the command line is `train_cmd`).

    config = configs.load("experiments/skimage_gauss.py:tiny", {"num_steps": 2})
    train_and_evaluate(config, "runs/x")

Data parallel over every device (`jax.make_mesh` 'data' axis): batches sharded along it,
parameters and optimizer state replicated; several hosts join through
`jax.distributed.initialize()`. The noise is drawn inside the jitted step from
`fold_in(noise_key, step)` and the input pipeline's position is checkpointed, so a resumed
run computes exactly what an uninterrupted one would. Re-running the same command resumes.

What long runs meet: SIGTERM (preemption) or Ctrl-C saves the step the run is at and exits
128 + the signal; checkpoints are also saved every `checkpoint_every_minutes`; a damaged
checkpoint is set aside for the previous one; a full disk is one line; `workdir/train.lock`
keeps a second run off the workdir. `init_from` warm-starts a new run from another one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import ConfigDict
from tqdm.auto import tqdm

from denoise_jax import checkpoints, evaluate, methods, noise, optim, writers
from denoise_jax.data import pipeline
from denoise_jax.errors import Interrupted, UserError
from denoise_jax.images import place_error, write_error, write_text
from denoise_jax.methods import build_model, eval_variables  # noqa: F401  (re-exported)
from denoise_jax.models import layers

# The clock of time-based checkpoints (a module attribute, so tests can fake it).
_clock = time.monotonic


@flax.struct.dataclass
class TrainState:
    """Everything a step changes; a pytree (replicated over the mesh, saved by orbax)."""

    step: jax.Array  # [] int32: updates done
    params: Any
    batch_stats: Any  # {} for models without batch norm
    opt_state: Any
    ema_params: Any = None  # exponential moving average of params, or None


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# Pure pieces: state and step (the model and its evaluation method: `methods`).


def create_state(key: jax.Array, model: nn.Module, tx: optax.GradientTransformation,
                 shape: tuple[int, int, int], ema: bool) -> TrainState:
    """A fresh state for inputs of `shape` ([H, W, C]); params from `key`."""
    variables = model.init(key, jnp.zeros((1, *shape), jnp.float32), train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        ema_params=jax.tree.map(jnp.copy, params) if ema else None,
    )


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
    """EMA decay at `step`, warmed up as TF's ExponentialMovingAverage(num_updates=step):
    min(decay, (1 + step) / (10 + step)), so the average is not anchored to the random
    initialisation for the first ~1 / (1 - decay) steps of a run."""
    t = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def train_step(
    key: jax.Array,
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: optim.Loss,
    noise_model: Callable[[jax.Array, jax.Array], jax.Array] | None,
    from_logits: bool,
    ema_decay: float | None,
    lr_fn: Callable[[jax.Array, Any], jax.Array],
    plateau: bool,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update on a batch.

    Args:
      key: the run's noise key; this step draws its noise from `fold_in(key, state.step)`.
      batch: {"clean": [B, H, W, C] float32 in [0, 1]} plus "noisy" for real pairs (then
        no noise is drawn).
    Returns:
      (new state, {"loss", "grad_norm", "lr"} scalars).
    """
    clean = batch["clean"]
    if "noisy" in batch:
        noisy = batch["noisy"]
    else:
        noisy = noise_model(jax.random.fold_in(key, state.step), clean)
    has_bn = bool(jax.tree.leaves(state.batch_stats))

    def loss_of(params):
        variables = {"params": params}
        if has_bn:
            variables["batch_stats"] = state.batch_stats
            out, updates = model.apply(variables, noisy, train=True, mutable=["batch_stats"])
        else:
            out, updates = model.apply(variables, noisy, train=True), {}
        return loss_fn(out, clean, from_logits), updates

    (loss, updates), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    extra = {"value": loss} if plateau else {}
    steps, opt_state = tx.update(grads, state.opt_state, state.params, **extra)
    params = optax.apply_updates(state.params, steps)
    ema = state.ema_params
    if ema is not None:
        decay = ema_decay_at(state.step, ema_decay)
        ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema,
        batch_stats=updates.get("batch_stats", state.batch_stats),
    )
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
               "lr": lr_fn(state.step, state.opt_state)}
    return new_state, metrics


# ---------------------------------------------------------------------------------------------
# Setup helpers (host side).


def maybe_initialize_distributed(config: ConfigDict) -> None:
    """Joins a multi-host run when `config.distributed` or `JAX_COORDINATOR_ADDRESS` asks.

    Process count and id come from the config, from `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID`,
    or from JAX's cluster auto-detection (SLURM, Open MPI, Cloud TPU, ...).
    """
    wanted = config.get("distributed", False) or "JAX_COORDINATOR_ADDRESS" in os.environ
    if not wanted or jax.distributed.is_initialized():
        return
    env = os.environ

    def pick(field: str, var: str) -> Any:
        value = config.get(field)
        if value is None and var in env:
            value = env[var] if field == "coordinator_address" else int(env[var])
        return value

    jax.distributed.initialize(
        coordinator_address=pick("coordinator_address", "JAX_COORDINATOR_ADDRESS"),
        num_processes=pick("num_processes", "JAX_NUM_PROCESSES"),
        process_id=pick("process_id", "JAX_PROCESS_ID"),
        initialization_timeout=int(config.get("distributed_timeout", 300) or 300),
    )


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D 'data' mesh over every device of every process."""
    return jax.make_mesh((jax.device_count(),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))


def check_batch(global_batch: int) -> int:
    """The per-process batch; a UserError if `global_batch` does not split over devices."""
    devices, processes = jax.device_count(), jax.process_count()
    if global_batch % devices:
        raise UserError(f"batch size {global_batch} does not divide over {devices} devices: set "
                        f"--config.data.batch to a multiple of {devices}")
    return global_batch // processes


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """This process's share of a batch -> global arrays sharded along the batch axis."""
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


def local_copy(tree: Any) -> Any:
    """Replicated global arrays -> arrays on this process's first device (for evaluation)."""
    return jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)


def num_steps(config: ConfigDict, num_train: int) -> int:
    """`num_epochs` (when set) over `num_train` images at the global batch, else `num_steps`."""
    if config.get("num_epochs"):
        return int(np.ceil(config.num_epochs * num_train / config.data.batch))
    return int(config.num_steps)


def validation_set(config: ConfigDict):
    """The (possibly truncated) validation data set, or None when eval is off."""
    spec = config.eval.get("data")
    if not spec:
        return None
    dataset = pipeline.training_source(spec, config.data.get("download", False),
                                       resize=config.eval.get("resize"))
    limit = config.eval.get("max_images")
    return dataset[:limit] if limit else dataset  # data.Dataset slices to a Dataset


def run_evaluation(model, state, from_logits, config, dataset, workdir, step, writer,
                   samples: bool) -> float:
    """Validation PSNR/SSIM through the shared `evaluate` module; writes samples when asked."""
    name = config.model.name
    # No self-ensemble here (config `ensemble` is the shipped denoiser's): the curve stays
    # comparable between runs and validation costs one pass.
    method = methods.make_method(model, local_copy(eval_variables(state)), from_logits, name,
                                 keep_means=methods.keeps_means(config))
    noise_spec = config.eval.get("noise") or None
    report = evaluate.evaluate(
        {name: method}, dataset, None if noise_spec == "real" else noise_spec, config.seed,
        crop=config.eval.get("crop") or None, progress=False, data_name=config.eval.data,
        keep_samples=config.eval.get("samples", 0) if samples else 0,
    )
    result = report.methods[name]
    writer.write_scalars(step, "val", {"psnr": result.psnr, "ssim": result.ssim})
    if samples and report.samples and jax.process_index() == 0:
        os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
        evaluate.figure(report, os.path.join(workdir, "samples", f"step_{step}.png"))
        writer.write_images(step, {
            f"samples/{img}": np.concatenate([noisy, out[name], clean], axis=1)
            for img, clean, noisy, out in report.samples})
    return result.psnr


DIVERGENCE_FACTOR = 100.0  # a logged mean loss this far above the run's lowest: diverged


def _last_good(mngr, workdir: str) -> str:
    mngr.wait_until_finished()
    good = mngr.latest_step()
    return (f"last good checkpoint is step {good} in {workdir}/checkpoints"
            if good is not None else "no checkpoint was saved before it")


RETRY = ("lower the learning rate (--config.optimizer.lr) or set "
         "--config.optimizer.clip_norm=1.0, then re-run to resume from it")


def check_finite(pending: list[tuple[int, dict]], mngr, workdir: str,
                 lowest: float = np.inf) -> tuple[dict[str, float], float]:
    """Fetches the step metrics since the last check; stops the run at a non-finite loss,
    or at a window mean loss `DIVERGENCE_FACTOR`× above the run's `lowest` (a blown-up run
    stays finite for a while, and a save then would keep only ruined weights).

    Returns the window's mean metrics and the new lowest mean loss. Raises `NonFiniteLoss`
    naming the first bad step and the last good checkpoint (saves are only made after this
    check passes).
    """
    fetched = jax.device_get([m for _, m in pending])
    for (step, _), m in zip(pending, fetched, strict=True):
        if not np.isfinite(m["loss"]):
            raise NonFiniteLoss(f"loss became {float(m['loss'])} at step {step}; "
                                f"{_last_good(mngr, workdir)}; {RETRY}")
    means = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    return means, check_divergence(pending[-1][0], means["loss"], lowest, mngr, workdir)


def check_divergence(step: int, loss: float, lowest: float, mngr, workdir: str) -> float:
    """Raises `NonFiniteLoss` when `loss` is `DIVERGENCE_FACTOR`× above `lowest`; returns
    the new lowest."""
    if 0 < lowest < np.inf and loss > DIVERGENCE_FACTOR * lowest:
        raise NonFiniteLoss(
            f"training diverged: the mean loss rose to {loss:.3g} by step {step}, "
            f"{loss / lowest:,.0f}× its lowest ({lowest:.3g}); {_last_good(mngr, workdir)}; "
            f"{RETRY}")
    return min(lowest, loss)


def tree_is_finite(tree: Any) -> bool:
    """True when every float leaf of a (replicated) pytree is finite; checked on the host."""
    leaves = jax.device_get(jax.tree.leaves(local_copy(tree)))
    return all(np.isfinite(x).all() for x in leaves if np.issubdtype(x.dtype, np.floating))


def make_init(config: ConfigDict, model: nn.Module, tx: optax.GradientTransformation,
              shape: tuple[int, int, int], mesh: jax.sharding.Mesh) -> Callable:
    """Jitted `init(key) -> TrainState`, replicated over `mesh`."""
    return jax.jit(functools.partial(create_state, model=model, tx=tx, shape=shape,
                                     ema=bool(config.get("ema"))),
                   out_shardings=NamedSharding(mesh, P()))


def make_train_step(config: ConfigDict, model: nn.Module, from_logits: bool,
                    tx: optax.GradientTransformation, total_steps: int,
                    mesh: jax.sharding.Mesh) -> Callable:
    """Jitted `step(key, state, batch) -> (state, metrics)` for `mesh` (state donated).

    The batch is sharded along the mesh's 'data' axis; state and metrics come back
    replicated, so XLA inserts the gradient all-reduce.
    """
    noise_model = None
    if config.get("noise") and config.noise != "real":
        noise_model = noise.parse(config.noise)
        if config.get("noise_8bit_share"):  # some inputs as 8-bit photo files hold them
            noise_model = noise.with_8bit_share(noise_model, float(config.noise_8bit_share))
    replicated = NamedSharding(mesh, P())
    step = functools.partial(
        train_step, model=model, tx=tx, loss_fn=optim.loss_fn(config.loss),
        noise_model=noise_model, from_logits=from_logits, ema_decay=config.get("ema") or None,
        lr_fn=functools.partial(optim.lr_at, config.optimizer, total_steps),
        plateau=config.optimizer.get("schedule") == "plateau")
    return jax.jit(step, out_shardings=(replicated, replicated), donate_argnums=(1,))


# ---------------------------------------------------------------------------------------------
# What long runs meet: signals, a second run on the workdir, a warm start.


class StopSignals:
    """SIGTERM / SIGINT while training: finish the step, save it, then stop (`poll`).

    A second signal exits at once (128 + signal) without waiting for the save in flight:
    orbax renames a checkpoint's folder into place only once it is complete, so the
    previous checkpoints stay intact. Handlers are only installed from the main thread.
    With `jax.distributed` and its preemption service, JAX owns SIGTERM and orbax's
    `reached_preemption` names the same step on every process; SIGINT (and the time-based
    save) are agreed over processes every `sync_every` steps.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.jax_sigterm = (jax.distributed.is_initialized()
                            and bool(jax.config.jax_enable_preemption_service))
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        """Handles the signals from now on (until `restore`)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT,) + (() if self.jax_sigterm else (signal.SIGTERM,)):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        """Puts the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            return
        # os.write, not print: a handler may interrupt a print to the same stream.
        os.write(2, f"\nsecond {signal.Signals(signum).name}: stopped without waiting for the "
                    "save; re-run the same command to resume from the last complete "
                    "checkpoint\n".encode())
        os._exit(128 + signum)

    def poll(self, step: int, mngr, overdue: bool, sync_every: int) -> tuple[int | None, bool]:
        """(the signal to stop on at `step` or None, whether a time-based save is due there),
        the same on every process."""
        if self.jax_sigterm and mngr.reached_preemption(step):
            return signal.SIGTERM, True
        if jax.process_count() == 1:
            return self.signum, overdue
        if step % sync_every:
            return None, False
        votes = multihost_utils.process_allgather(np.array([self.signum or 0, overdue], np.int32))
        return int(votes[:, 0].max()) or None, bool(votes[:, 1].any())


LOCK = "train.lock"


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
    """Holds `workdir/train.lock` while a run trains there; a `UserError` if another run does.

    The lock is an `fcntl.flock`, which the kernel drops when its process ends, however it
    ends; the file says who holds it ({"pid", "host", "started"}) and is emptied on release.
    A non-empty file whose lock is free was left by a run that died: it is taken over with
    a one-line note. Process 0 locks for a multi-host run and tells the others how it went.
    """
    path = os.path.join(workdir, LOCK)
    fd, error = None, None
    if jax.process_index() == 0:
        try:
            fd = _lock(path)
        except UserError as e:
            error = e
    if jax.process_count() > 1:
        if multihost_utils.broadcast_one_to_all(np.int32(error is not None)) and error is None:
            error = UserError(f"workdir {workdir} is in use (process 0 could not lock it)")
    if error is not None:
        raise error
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # releases the flock


def _lock(path: str) -> int:
    """Locks `path` (created if needed) and writes this process into it; returns its fd."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise UserError(
            f"workdir {os.path.dirname(path)} is in use by process {holder.get('pid', '?')} on "
            f"host {holder.get('host', '?')} since {holder.get('started', '?')}; wait for it to "
            "finish or stop it, or train in another --workdir") from None
    except OSError as e:  # a file system without locks (some network mounts)
        print(f"warning: cannot lock {path} ({e.strerror}); make sure no other run trains in "
              "this workdir", file=sys.stderr, flush=True)
        return fd
    left = _lock_holder(fd)
    if left:
        print(f"note: taking over {path}, left by process {left.get('pid', '?')} on host "
              f"{left.get('host', '?')} (started {left.get('started', '?')}), which is no longer "
              "running", file=sys.stderr, flush=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    except OSError as e:
        os.close(fd)
        raise write_error(path, e) from None
    return fd


def _lock_holder(fd: int) -> dict:
    """What a lock file says about its holder ({} when empty or unreadable)."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {"pid": "?"}  # garbled: someone held it
    return holder if isinstance(holder, dict) else {"pid": "?"}


INIT_FROM = "init_from.txt"  # what a warm-started run started from, as it said at the start


def init_from(spec: str, state: TrainState) -> tuple[TrainState, str]:
    """`state` with the parameters of the run or shipped model `spec` (and its EMA and batch
    statistics when both models keep them); step and optimizer state stay fresh.

    `spec`: `pretrained:NAME` or a workdir path, optionally `@best` (default) or `@latest`.
    Returns (state, a line saying what it started from). A model that does not match this
    config is a one-line `UserError`.
    """
    path, which = methods.parse_spec(spec, "config.init_from")
    if not checkpoints.is_workdir(path):
        raise UserError(f"config.init_from={spec!r} is neither pretrained:NAME nor a training "
                        "workdir")
    found = checkpoints.restore(path, data_iter=False, best=which != "latest", set_aside=False)
    if found is None:
        raise UserError(f"config.init_from={spec!r}: {path} has no checkpoint yet")
    step, source, _ = found
    fit = functools.partial(_fit, spec)
    copied = ["parameters"]
    params = fit("params", state.params, source["params"])
    ema = state.ema_params
    if ema is not None:
        ema = fit("ema_params", ema, source.get("ema_params") or source["params"])
        copied.append("EMA" if source.get("ema_params") else "EMA (from its parameters)")
    stats = state.batch_stats
    if jax.tree.leaves(stats):
        stats = fit("batch_stats", stats, source.get("batch_stats") or {})
        copied.append("batch statistics")
    shapes = lambda tree: {k: np.shape(v) for k, v in
                           flax.traverse_util.flatten_dict(dict(tree), sep="/").items()}
    if shapes(source["params"]) != shapes(state.params):
        copied[0] = ("parameters (colour to grey: the first layer's inputs summed, the last's "
                     "outputs averaged)")
    line = (f"starting from {spec} (its step {step}): {', '.join(copied)} copied; step 0, "
            "fresh optimizer")
    return state.replace(params=params, ema_params=ema, batch_stats=stats), line


def colour_to_grey(value: Any, shape: tuple[int, ...]) -> Any:
    """A colour model's image-facing leaf made to fit a grey model (`shape`), or `value`
    unchanged: a conv kernel's 3 input channels are summed and its 3 outputs (or a bias's)
    averaged, so the grey model starts as the colour one run on the grey image copied into
    R, G and B with its three outputs averaged (exactly, for nets that are linear at the
    ends, as every registered one is)."""
    have = np.shape(value)
    if len(have) != len(shape):
        return value
    pairs = list(zip(have, shape, strict=True))
    if (3, 1) not in pairs or any(a != b and (a, b) != (3, 1) for a, b in pairs):
        return value
    value = np.asarray(value)
    if len(have) == 4 and have[2] == 3 and shape[2] == 1:  # HWIO: the input channels
        value = value.sum(axis=2, keepdims=True)
    if have[-1] == 3 and shape[-1] == 1:  # the outputs (a kernel's O axis, or a bias)
        value = value.mean(axis=-1, keepdims=True)
    return value


def _fit(spec: str, name: str, fresh: Any, loaded: Any) -> Any:
    """`loaded` with `fresh`'s dtypes and shardings; a `UserError` at the first leaf whose
    path or shape differs."""
    flat_fresh = flax.traverse_util.flatten_dict(fresh, sep="/")
    flat_loaded = flax.traverse_util.flatten_dict(dict(loaded), sep="/")
    for key in set(flat_fresh) & set(flat_loaded):
        flat_loaded[key] = colour_to_grey(flat_loaded[key], np.shape(flat_fresh[key]))
    for key in sorted(set(flat_fresh) | set(flat_loaded)):
        want = np.shape(flat_fresh[key]) if key in flat_fresh else "absent"
        got = np.shape(flat_loaded[key]) if key in flat_loaded else "absent"
        if want != got:
            raise UserError(f"config.init_from={spec!r} does not fit this model: {name}/{key} is "
                            f"{got} there and {want} here; use the same --config.model or "
                            "leave init_from empty")
    placed = {}
    for k, v in flat_fresh.items():
        value = np.asarray(flat_loaded[k], v.dtype)  # every process holds all of it
        placed[k] = jax.make_array_from_callback(v.shape, v.sharding, lambda i, x=value: x[i])
    return flax.traverse_util.unflatten_dict(placed, sep="/")


# ---------------------------------------------------------------------------------------------
# The loop.


def _due(every: int | None, step: int, last: int) -> bool:
    """Whether a periodic action (every `every` steps, and at the last step) runs at `step`."""
    return bool(every) and (step % every == 0 or step == last)


def train_and_evaluate(config: ConfigDict, workdir: str) -> TrainState:
    """Trains `config` in `workdir` (resuming from its newest good checkpoint); returns the state.

    Writes workdir/config.json, checkpoints/ (last `keep` + the best by validation PSNR, and
    one every `checkpoint_every_minutes`), metrics.jsonl, tensorboard/ and
    samples/step_N.png. With `early_stop_patience` N, stops after N evaluations without a
    better validation PSNR and writes workdir/early_stopped.json (a re-run then stops at
    once; delete the file to train on). Holds workdir/train.lock while it runs. SIGTERM or
    SIGINT: saves the step it is at, then raises `Interrupted`.
    """
    maybe_initialize_distributed(config)
    config = pipeline.resolve(config)  # data.name -> data specs; noise "real" for pairs
    conv = config.get("conv", "auto")
    if conv not in layers.CONV_IMPLS:
        raise UserError(f"config.conv must be one of {', '.join(layers.CONV_IMPLS)}, not {conv!r}")
    layers.set_conv_impl(conv)  # read when the step is traced
    workdir = os.path.abspath(os.path.expanduser(workdir))
    with workdir_lock(workdir):
        return _train(config, workdir)


def _train(config: ConfigDict, workdir: str) -> TrainState:
    """`train_and_evaluate` once the workdir is locked."""
    lead = jax.process_index() == 0
    mesh = make_mesh()
    replicated, batch_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    local_batch = check_batch(config.data.batch)

    train_data = pipeline.training_source(config.data.train, config.data.get("download", False),
                                          resize=config.data.get("resize"))
    if train_data[0].noisy is None and config.get("noise") in (None, "", "real"):
        raise UserError(f"{config.data.train} holds clean images only and noise is "
                        f"{config.get('noise')!r}: set --config.noise (e.g. camera) or train on "
                        "real pairs (--config.data.name=NAME or --config.data.train=pairs:PATH)")
    shape = pipeline.check_shapes(train_data, config.data.get("patch"))
    total_steps = num_steps(config, len(train_data))
    batches = pipeline.batches(
        train_data, batch=local_batch, patch=config.data.get("patch"),
        augment=config.data.get("augment", True), seed=config.seed,
        num_threads=config.data.get("num_threads", 2), prefetch=config.data.get("prefetch", 8),
        permute_channels=config.data.get("permute_channels", False))
    val_data = validation_set(config)

    model, from_logits = build_model(config)
    tx = optim.make_optimizer(config.optimizer, total_steps)
    init_key, noise_key = jax.random.split(jax.random.PRNGKey(config.seed))
    init = make_init(config, model, tx, shape, mesh)
    state = init(init_key)

    checkpoints.write_config(workdir, config, announce=lead)
    restored = checkpoints.restore(workdir, state)  # before the manager: it sets damage aside
    start = 0
    if restored is not None:
        start, state, data_state = restored
        batches.set_state(data_state)
        if lead:
            print(f"resuming {workdir} from step {start}", flush=True)
    elif config.get("init_from"):  # a warm start for a new run only: resuming always wins
        state, line = init_from(config.init_from, state)
        if lead:
            print(line, flush=True)
            write_text(os.path.join(workdir, INIT_FROM), line + "\n")  # for the model card
    mngr = checkpoints.manager(workdir, keep=config.get("keep", 3))
    stopped = _early_stop_record(workdir)
    if stopped and start >= stopped["step"]:
        if lead:
            print(f"{workdir} stopped early at step {stopped['step']} (no better validation "
                  f"PSNR in {stopped['patience']} evaluations); delete {EARLY_STOPPED} to train "
                  "on", flush=True)
        mngr.close()
        return state

    step_fn = make_train_step(config, model, from_logits, tx, total_steps, mesh)
    noise_key = jax.device_put(noise_key, replicated)

    writer = writers.MetricWriter(workdir, resume_step=start if start else None, enabled=lead)
    if lead and start == 0:
        n_params = sum(x.size for x in jax.tree.leaves(state.params))
        print(f"training {config.model.name} ({n_params:,} parameters) for {total_steps} steps "
              f"on {jax.device_count()} device(s), batch {config.data.batch}; workdir {workdir}",
              flush=True)
    patience, best_psnr, stale = config.get("early_stop_patience") or 0, -np.inf, 0
    if lead and start >= total_steps:
        knob = "num_epochs" if config.get("num_epochs") else "num_steps"
        print(f"{workdir} is already trained to step {start} of {total_steps}; "
              f"raise --config.{knob} to train further", flush=True)
    bar = tqdm(total=total_steps, initial=start, unit="step", dynamic_ncols=True,
               disable=None if lead else True)
    every_s = 60.0 * float(config.get("checkpoint_every_minutes") or 0)
    pending, tick, last_save, lowest_loss = [], time.perf_counter(), _clock(), np.inf
    signals = StopSignals().install()
    try:
        for step in range(start + 1, total_steps + 1):
            batch = to_global(next(batches), batch_sharding)
            state, metrics = step_fn(noise_key, state, batch)
            pending.append((step, metrics))
            bar.update()
            # Processes must agree on when to stop and save: `poll` sees to it.
            signum, overdue = signals.poll(step, mngr, 0 < every_s <= _clock() - last_save,
                                           sync_every=config.log_every or 100)
            save = _due(config.checkpoint_every, step, total_steps) or overdue or bool(signum)
            if _due(config.log_every, step, total_steps) or save:
                means, lowest_loss = check_finite(pending, mngr, workdir, lowest_loss)
                seconds = time.perf_counter() - tick
                means.update(steps_per_sec=len(pending) / seconds,
                             images_per_sec=len(pending) * config.data.batch / seconds)
                writer.write_scalars(step, "train", means)
                bar.set_postfix(loss=f"{means['loss']:.4g}", lr=f"{means['lr']:.3g}")
                pending = []
            val_psnr, stop = None, False
            if (val_data is not None and _due(config.eval_every, step, total_steps)
                    and not signum):  # a stopping run saves first: time may be short
                val_psnr = run_evaluation(
                    model, state, from_logits, config, val_data, workdir, step, writer,
                    samples=_due(config.get("sample_every"), step, total_steps))
                if lead:
                    bar.write(f"step {step}: val PSNR {val_psnr:.2f} dB")
                best_psnr, stale = ((val_psnr, 0) if val_psnr > best_psnr
                                    else (best_psnr, stale + 1))
                stop = bool(patience) and stale >= patience and step < total_steps
            if save or stop:
                if pending:  # a stop between log steps: check and log the steps since
                    means, lowest_loss = check_finite(pending, mngr, workdir, lowest_loss)
                    writer.write_scalars(step, "train", means)
                    pending = []
                if not tree_is_finite(state.params):
                    raise NonFiniteLoss(
                        f"the parameters became NaN/inf at step {step}; last good checkpoint "
                        f"is step {mngr.latest_step()}; lower the learning rate")
                checkpoints.save(mngr, step, state, batches.get_state(), val_psnr)
                last_save = _clock()
            if signum:
                checkpoints.finish(mngr)  # a second signal while waiting exits at once
                raise Interrupted(f"stopped at step {step} ({signal.Signals(signum).name}); "
                                  "re-run the same command to resume", signum)
            if stop:
                _record_early_stop(workdir, step, patience, best_psnr, lead)
                bar.write(f"step {step}: stopping early, no better validation PSNR than "
                          f"{best_psnr:.2f} dB in {patience} evaluations")
                break
            if not pending:
                tick = time.perf_counter()  # steps/s leaves out logging, evaluation, saving
        checkpoints.finish(mngr)
        writer.close()
    except OSError as e:  # our own writes (metrics.jsonl, TensorBoard) on a full disk
        if not place_error(e.errno):
            raise
        reason, todo = place_error(e.errno)
        raise UserError(f"cannot write in {workdir}: {reason}; {todo}, then re-run the same "
                        "command to resume from its last checkpoint") from None
    finally:
        signals.restore()
        bar.close()
        checkpoints.close_quietly(mngr)  # after `finish`, or on the way out of a failure
        with contextlib.suppress(OSError):
            writer.close()
    return state


EARLY_STOPPED = "early_stopped.json"


def _early_stop_record(workdir: str) -> dict | None:
    """The workdir's early-stopping record ({"step", "patience", "best_val_psnr"}) or None."""
    try:
        with open(os.path.join(workdir, EARLY_STOPPED), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _record_early_stop(workdir: str, step: int, patience: int, best: float, lead: bool) -> None:
    if lead:
        with open(os.path.join(workdir, EARLY_STOPPED), "w", encoding="utf-8") as f:
            json.dump({"step": step, "patience": patience, "best_val_psnr": best}, f)
