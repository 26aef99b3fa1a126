"""Weights → denoiser: the one home of "a model plus its variables, as a method".

- `build_model(config)`: the config's Flax model (and whether it outputs logits).
- `eval_variables(state)`: the variables a denoiser uses (EMA parameters when kept).
- `predict(model, from_logits, variables, x)`: the one jitted eval-mode forward pass.
- `parse_spec("DIR" | "DIR@best|latest" | "pretrained:NAME[@...]")` and `load_run`: a
  training workdir or a shipped model (same layout) -> (model, variables, from_logits, step).
- `keeps_means(config)`: whether the run's denoiser ends with `local_means.keep_local_means`
  (config `keep_means`), and `ensemble_views(config, override)`: how many rotations/mirrors its
  self-ensemble averages (config `ensemble`, `denoise_jax/ensemble.py`); both
  `make_method` and `inference.Denoiser` honour them.
- `Method`: a denoiser `method(noisy [H, W, C] float32, sigma) -> [H, W, C]` with its traits
  as fields (name, blind, uses σ, compiles per shape, step), which is what `evaluate` scores.
- `resolve(name)`: a classical method by name, or a workdir / shipped model spec.
- `export(workdir, dest)`: the evaluation weights of a run as a minimal workdir (how shipped
  models are made).

Checkpoint files themselves are `checkpoints`' business; scoring is `evaluate`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from denoise_jax import baselines, checkpoints, local_means, models, pretrained
from denoise_jax.ensemble import check_views, self_ensemble
from denoise_jax.errors import UserError

PRETRAINED_PREFIX = "pretrained:"
WHICH = ("best", "latest")

DenoiseFn = Callable[[np.ndarray, float | None], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Method:
    """A denoiser `method(noisy [H, W, C] float32, sigma) -> [H, W, C] float32` and its traits.

    Fields:
      name: shown in tables and messages.
      fn: the denoising function itself.
      blind: ignores `sigma` (a learned model); the table's σ column says "blind".
      uses_sigma: False when σ means nothing to it (e.g. "noisy"); the column shows "-".
      compiles_per_shape: compiles on the first call per image shape; `evaluate` makes that
        call untimed, so s/MP is the steady state.
      step: the training step of the weights, for learned methods.
    """

    name: str
    fn: DenoiseFn
    blind: bool = False
    uses_sigma: bool = True
    compiles_per_shape: bool = False
    step: int | None = None

    def __call__(self, noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        return self.fn(noisy, sigma)


def as_method(name: str, method: Method | DenoiseFn) -> Method:
    """`method` as a `Method`: kept when it is one, else a plain function with default traits
    (not blind, uses σ, timed from its first call)."""
    return method if isinstance(method, Method) else Method(name, method)


def classical(name: str) -> Method:
    """The classical method `name` (see `baselines.names()`)."""
    return Method(name, baselines.get_baseline(name), uses_sigma=name != "noisy")


# ---------------------------------------------------------------------------------------------
# Model, variables, prediction.


def build_model(config: ConfigDict) -> tuple[nn.Module, bool]:
    """(model, from_logits): the config's model; BCE models output logits when they can."""
    kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    model = models.get_model(config.model.name, **kwargs)
    fields = {f.name for f in dataclasses.fields(model)}
    from_logits = config.loss == "bce" and "return_logits" in fields
    if from_logits:
        model = model.clone(return_logits=True)
    return model, from_logits


def eval_variables(state: Any) -> dict[str, Any]:
    """The variables a denoiser uses: EMA params when kept, else the current params, plus
    batch statistics when the model has them.

    `state`: a `train.TrainState`, or a checkpoint's state as restored (a dict).
    """
    if not isinstance(state, Mapping):
        state = flax.serialization.to_state_dict(state)
    ema = state.get("ema_params")
    variables = {"params": ema if jax.tree.leaves(ema) else state["params"]}
    if jax.tree.leaves(state.get("batch_stats")):
        variables["batch_stats"] = state["batch_stats"]
    return variables


@functools.partial(jax.jit, static_argnums=(0, 1))
def predict(model: nn.Module, from_logits: bool, variables: dict, x: jax.Array) -> jax.Array:
    """x: [B, H, W, C] -> denoised [B, H, W, C] float32 in [0, 1] (eval mode).

    Compiled once per model and input shape (the variables are an argument, not constants).
    """
    out = model.apply(variables, x, train=False)
    if from_logits:
        out = jax.nn.sigmoid(out)
    return jnp.clip(out.astype(jnp.float32), 0.0, 1.0)


def make_method(model: nn.Module, variables: dict[str, Any], from_logits: bool,
                name: str = "model", step: int | None = None,
                keep_means: bool = False, ensemble: int = 1) -> Method:
    """A blind whole-image `Method` for a model and its variables (`inference.Denoiser` adds
    tiling); `keep_means`: `local_means.keep_local_means` on its output, and
    `ensemble`: the views its self-ensemble averages (`ensemble.self_ensemble`), as the
    run's config says (`keeps_means`, `ensemble_views`)."""
    views = check_views(ensemble)

    def forward(x: np.ndarray) -> np.ndarray:
        try:
            return np.asarray(predict(model, from_logits, variables, jnp.asarray(x)))
        except flax.errors.ScopeParamShapeError as e:
            raise UserError(f"{name} cannot denoise an image of shape {tuple(x.shape[1:])}: "
                            "its weights fit the training images' size/channels only") from e

    def denoise(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        x = np.asarray(noisy, np.float32)[None]
        out = self_ensemble(forward, x, views, axes=(1, 2))[0]
        return local_means.keep_local_means(noisy, out) if keep_means else out

    return Method(name, denoise, blind=True, compiles_per_shape=True, step=step)


# ---------------------------------------------------------------------------------------------
# Trained runs and shipped models.


def parse_spec(spec: str, what: str = "workdir") -> tuple[str, str]:
    """(folder, which) of "DIR", "DIR@best", "DIR@latest" or "pretrained:NAME[@...]".

    `which` defaults to "best"; `~` is expanded; a shipped model's name must exist. `what`
    names the spec in the error for a bad `@` suffix.
    """
    path, at, which = spec.partition("@")
    if at and which not in WHICH:
        raise UserError(f"{what} {spec!r}: end it with @best or @latest, not @{which}")
    if path.startswith(PRETRAINED_PREFIX):
        path = pretrained.find(path[len(PRETRAINED_PREFIX):])
    return os.path.expanduser(path), which or "best"


def is_run_spec(spec: str) -> bool:
    """True for `pretrained:NAME[@...]` or a path (optionally `@which`) to a training workdir."""
    path = spec.partition("@")[0]
    return (path.startswith(PRETRAINED_PREFIX)
            or checkpoints.is_workdir(os.path.expanduser(path)))


class Run(NamedTuple):
    """A training run (or shipped model) read back for evaluation."""
    model: nn.Module
    variables: dict
    from_logits: bool
    step: int
    config: ConfigDict


def load_run(workdir: str, which: str = "best") -> Run:
    """The model, evaluation variables, step and config of the training run in `workdir`.

    `which`: "best" (highest validation PSNR; the newest when none was evaluated) or
    "latest". Uses the EMA parameters when the run kept them. A checkpoint that does not
    read back is skipped with a one-line warning in favour of the next; nothing in the
    workdir is moved or written (it may be training right now). Never touches the network.
    """
    if which not in WHICH:
        raise UserError(f"which checkpoint: 'best' or 'latest', not {which!r}")
    if not os.path.isdir(workdir):
        raise UserError(f"no such workdir: {workdir!r}")
    config = checkpoints.load_config(workdir)
    if not os.path.isdir(os.path.join(workdir, checkpoints.CHECKPOINTS)):
        raise UserError(f"{workdir} has no checkpoints yet: train it first "
                        f"(denoise-jax train --config ... --workdir {workdir})")
    found = checkpoints.restore(workdir, data_iter=False, best=which == "best", set_aside=False)
    if found is None:
        raise UserError(f"{workdir} has no finished checkpoint: train it longer")
    step, state, _ = found
    model, from_logits = build_model(config)
    return Run(model, eval_variables(state), from_logits, int(step), config)


def keeps_means(config: ConfigDict) -> bool:
    """Whether a run's denoiser keeps the noisy input's local means (config `keep_means`,
    off for configs that predate it)."""
    return bool(config.get("keep_means", False))


def ensemble_views(config: ConfigDict, override: int | None = None) -> int:
    """How many rotations/mirrors a run's denoiser averages: `override` when given, else
    config `ensemble` (1, none, for configs without it)."""
    return check_views(int(config.get("ensemble", 1)) if override is None else override)


def load_method(workdir: str, which: str = "best", ensemble: int | None = None) -> Method:
    """The run in `workdir` as a blind whole-image `Method` (named after its folder);
    `ensemble`: self-ensemble views instead of the run's own (`ensemble_views`)."""
    run = load_run(workdir, which)
    name = os.path.basename(os.path.normpath(workdir))
    return make_method(run.model, run.variables, run.from_logits, name, run.step,
                       keep_means=keeps_means(run.config),
                       ensemble=ensemble_views(run.config, ensemble))


def resolve(name: str, ensemble: int | None = None) -> Method:
    """The method called `name`: a classical one, or a run spec (see `parse_spec`; with
    `ensemble` self-ensemble views instead of its config's)."""
    if name in baselines.names():
        return classical(name)
    if is_run_spec(name):
        return load_method(*parse_spec(name, "method"), ensemble=ensemble)
    raise UserError(
        f"unknown method {name!r}: use a classical method "
        f"({', '.join(baselines.names())}) or a training workdir"
    )


def export(workdir: str, dest: str, which: str = "latest") -> int:
    """Writes the weights `load_run(workdir, which)` evaluates with to `dest`; returns the step.

    `dest` becomes a minimal workdir (config.json and one checkpoint holding only the
    evaluation parameters — EMA when kept — and batch statistics: no optimizer state, no
    pipeline position), which every loader reads like the run itself: how shipped
    pretrained models are made. `dest` must not exist yet.
    """
    if os.path.exists(dest):
        raise UserError(f"{dest} already exists: export to a new folder")
    run = load_run(workdir, which)
    checkpoints.write_config(dest, run.config, announce=True)
    mngr = checkpoints.manager(dest, keep=1)
    try:
        checkpoints.save(mngr, run.step, run.variables, {})
        mngr.wait_until_finished()
    finally:
        mngr.close()
    return run.step
