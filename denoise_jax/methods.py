"""Weights → denoiser: the one home of "a model plus its variables, as a method".

- `build_model(config)`: the config's Flax model (and whether it outputs logits).
- `eval_variables(state)`: the variables a denoiser uses (EMA parameters when kept).
- `predict(model, from_logits, variables, x)`: the one jitted eval-mode forward pass;
  `model_channels`, `colour_from_grey` and `adapt_channels`: a colour model on grey images
  and a grey model on colour ones (both `make_method` and `inference.Denoiser` adapt).
- `parse_spec("DIR" | "DIR@best|latest" | "pretrained:NAME[@...]")` and `load_run`: a
  training workdir or a shipped model (same layout) -> (model, variables, from_logits, step).
- `keeps_means(config)`: whether the run's denoiser ends with `local_means.keep_local_means`
  (config `keep_means`), and `ensemble_views(config, override)`: how many rotations/mirrors its
  self-ensemble averages (config `ensemble`, `denoise_jax/ensemble.py`); both
  `make_method` and `inference.Denoiser` honour them.
- `Method`: a denoiser `method(noisy [H, W, C] float32, sigma) -> [H, W, C]` with its traits
  as fields (name, blind, uses σ, compiles per shape, step), which is what `evaluate` scores.
- `resolve(name)`: a classical method by name, "shipped" (the best shipped model for each
  image's channels), or a workdir / shipped model spec.
- `export(workdir, dest)`: the evaluation weights of a run as a minimal workdir (how shipped
  models are made).

Checkpoint files themselves are `checkpoints`' business; scoring is `evaluate`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
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
SHIPPED = pretrained.SHIPPED
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


def model_channels(model: nn.Module, variables: Any, size: int = 64) -> int | None:
    """The channel count (1 or 3) the model's weights accept, by abstract evaluation.

    None when neither fits at `size`×`size` (e.g. a dense model tied to its training size).
    """
    fits = []
    for channels in (3, 1):
        shape = jax.ShapeDtypeStruct((1, size, size, channels), np.float32)
        try:
            jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, shape)
        except Exception:  # flax raises ScopeParamShapeError, TypeError, ... on a mismatch
            continue
        fits.append(channels)
    return fits[0] if len(fits) == 1 else None


def notes_once(name: str) -> Callable[[str, str], None]:
    """note(key, message): prints "note: NAME: message" on stderr the first time per key."""
    noted: set[str] = set()

    def note(key: str, message: str) -> None:
        if key not in noted:
            noted.add(key)
            print(f"note: {name}: {message}", file=sys.stderr, flush=True)

    return note


def colour_from_grey(noisy: np.ndarray, seed: int = 0) -> np.ndarray:
    """A noisy grey image [H, W, 1] as colour [H, W, 3] for a colour model: R = G = B plus
    noise that sums to zero over the channels, scaled so that each channel holds independent
    Gaussian noise of √3 times the grey's σ (estimated: models are blind). The mean of the
    three outputs is the grey result.

    Why: R = G = B alone carries the same noise in every channel, which a network trained on
    independent channel noise keeps as if it were detail (measured with gauss_rgb on
    scikit-image's grey photos, 256×256 crops at σ 25: 20.5 dB from 20.2; completed as here
    30.7, where gauss_gray gets 30.8). The grey's own noise is the (1, 1, 1) component of such
    noise; this adds the two orthogonal ones. Fixed `seed`: the same photo gives the same result.
    On 8-bit files with large clipped (black or white) areas the σ estimate reads low, and the
    result falls further behind a grey model (the camera photo: 0.2 dB whole, 1.4 dB on a
    96×96 crop that is half black coat).
    """
    sigma = baselines.estimate_sigma(noisy)
    extra = np.random.default_rng(seed).standard_normal(noisy.shape[:2] + (3,), np.float32)
    extra -= extra.mean(axis=-1, keepdims=True)
    return np.repeat(noisy, 3, axis=-1) + np.float32(np.sqrt(3.0) * sigma) * extra


GREY_ON_COLOUR_NOTE = ("a colour model on a grey image: denoising it as colour (R = G = B, "
                       "completed with independent channel noise) and averaging the three "
                       "outputs")


def adapt_channels(forward: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                   want: int | None, name: str,
                   note: Callable[[str, str], None]) -> np.ndarray:
    """forward(x) for x [B, h, w, C], where the weights take `want` channels (None: any).

    A grey model given colour denoises R, G and B as three grey images (not luma: per-channel
    keeps the chroma noise removal a luma-only pass would skip); `note` is told, once. A colour
    model given grey is adapted on the whole image (`colour_from_grey`), not here. Weights
    that fit neither: a one-line `UserError`.
    """
    b, h, w, c = x.shape
    try:
        if want is None or want == c:
            return forward(x)
        if want == 1 and c == 3:
            note("colour", "a grey model on a colour image: denoising R, G and B separately")
            planes = np.moveaxis(x, -1, 1).reshape(b * 3, h, w, 1)
            return np.moveaxis(forward(planes).reshape(b, 3, h, w), 1, -1)
    except flax.errors.ScopeParamShapeError as e:
        raise UserError(f"{name} cannot denoise a {h}×{w}×{c} input: its weights fit the "
                        "training images' size/channels only") from e
    raise UserError(f"{name} takes {want}-channel images, not {c}-channel ones")


def make_method(model: nn.Module, variables: dict[str, Any], from_logits: bool,
                name: str = "model", step: int | None = None,
                keep_means: bool = False, ensemble: int = 1) -> Method:
    """A blind whole-image `Method` for a model and its variables (`inference.Denoiser` adds
    tiling); `keep_means`: `local_means.keep_local_means` on its output, and
    `ensemble`: the views its self-ensemble averages (`ensemble.self_ensemble`), as the
    run's config says (`keeps_means`, `ensemble_views`). Grey and colour images are adapted
    to the weights (`colour_from_grey`, `adapt_channels`)."""
    views = check_views(ensemble)
    note = notes_once(name)
    # Worked out (abstract evaluation) only for grey inputs or a mismatch.
    channels = functools.cache(lambda: model_channels(model, variables))

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(predict(model, from_logits, variables, jnp.asarray(x)))

    def forward(x: np.ndarray) -> np.ndarray:
        try:
            return run(x)
        except flax.errors.ScopeParamShapeError:
            return adapt_channels(run, x, channels(), name, note)

    def denoise(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        noisy = np.asarray(noisy, np.float32)
        grey_on_colour = noisy.shape[-1] == 1 and channels() == 3
        if grey_on_colour:
            note("grey", GREY_ON_COLOUR_NOTE)
        x = colour_from_grey(noisy) if grey_on_colour else noisy
        out = self_ensemble(forward, x[None], views, axes=(1, 2))[0]
        if grey_on_colour:
            out = out.mean(axis=-1, keepdims=True)
        # The means are the grey input's (whose clipping `keep_local_means` can recognise).
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


def shipped(ensemble: int | None = None) -> Method:
    """The method called "shipped": for each image, the best shipped model for its channels
    (`pretrained.default_for`), as `denoise-jax denoise` uses by default; each loaded when
    first needed."""
    loaded: dict[int, Method] = {}

    def denoise(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
        channels = np.shape(noisy)[-1]
        if channels not in loaded:
            folder = pretrained.find(pretrained.default_for(channels))
            loaded[channels] = load_method(folder, ensemble=ensemble)
        return loaded[channels].fn(noisy, sigma)

    return Method(SHIPPED, denoise, blind=True, compiles_per_shape=True)


def resolve(name: str, ensemble: int | None = None) -> Method:
    """The method called `name`: a classical one, "shipped" (`shipped`), or a run spec (see
    `parse_spec`; with `ensemble` self-ensemble views instead of its config's)."""
    if name in baselines.names():
        return classical(name)
    if name == SHIPPED:
        return shipped(ensemble)
    if is_run_spec(name):
        return load_method(*parse_spec(name, "method"), ensemble=ensemble)
    raise UserError(
        f"unknown method {name!r}: use a classical method "
        f"({', '.join(baselines.names())}), {SHIPPED!r}, pretrained:NAME or a training workdir"
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
