"""Losses and optimizers by name, as the experiment configs pick them.

`loss_fn(name)` returns `loss(output, clean, from_logits) -> scalar`; `make_optimizer(cfg,
num_steps)` returns an optax transformation (clipping, weight decay, schedule included).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

from denoise_jax.errors import UserError

LOSSES = ("mse", "l1", "charbonnier", "bce")
OPTIMIZERS = ("adam", "adamw", "adadelta", "sgd")
SCHEDULES = ("constant", "cosine", "step", "plateau")

Loss = Callable[[jax.Array, jax.Array, bool], jax.Array]

_CHARBONNIER_EPS = 1e-3  # as in the Charbonnier losses of MPRNet / NAFNet training code
_PROB_EPS = 1e-7  # Keras' epsilon: BCE on probabilities clips them away from 0 and 1


def _mse(out: jax.Array, clean: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(out - clean))


def _l1(out: jax.Array, clean: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(out - clean))


def _charbonnier(out: jax.Array, clean: jax.Array) -> jax.Array:
    return jnp.mean(jnp.sqrt(jnp.square(out - clean) + _CHARBONNIER_EPS**2))


def _bce(out: jax.Array, clean: jax.Array, from_logits: bool) -> jax.Array:
    if from_logits:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(out, clean))
    p = jnp.clip(out, _PROB_EPS, 1.0 - _PROB_EPS)
    return -jnp.mean(clean * jnp.log(p) + (1.0 - clean) * jnp.log1p(-p))


def loss_fn(name: str) -> Loss:
    """Returns `loss(output, clean, from_logits) -> scalar` for a loss name.

    output, clean: [B, H, W, C] float32. Only 'bce' uses `from_logits` (the model's
    pre-sigmoid output, for a numerically stable loss); the others need images.
    """
    if name not in LOSSES:
        raise UserError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    if name == "bce":
        return lambda out, clean, from_logits: _bce(
            out.astype(jnp.float32), clean.astype(jnp.float32), from_logits
        )
    pixel = {"mse": _mse, "l1": _l1, "charbonnier": _charbonnier}[name]

    def loss(out: jax.Array, clean: jax.Array, from_logits: bool) -> jax.Array:
        if from_logits:
            out = jax.nn.sigmoid(out)
        return pixel(out.astype(jnp.float32), clean.astype(jnp.float32))

    return loss


def learning_rate(cfg: ConfigDict, num_steps: int) -> optax.Schedule:
    """The learning-rate schedule of `cfg` (the config's `optimizer` block)."""
    lr, warmup = float(cfg.lr), int(cfg.get("warmup", 0) or 0)
    name = cfg.get("schedule", "constant")
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    if name == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, warmup, max(num_steps, warmup + 1),
            end_value=lr * (cfg.get("end_factor") or 0.0)
        )
    if name == "step":
        main = optax.exponential_decay(
            lr, int(cfg.get("step_every") or max(1, num_steps // 3)), cfg.get("step_factor", 0.1),
            staircase=True,
        )
    else:  # constant; 'plateau' scales a constant rate by `reduce_on_plateau`
        main = optax.constant_schedule(lr)
    if warmup:
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])
    return main


def make_optimizer(cfg: ConfigDict, num_steps: int) -> optax.GradientTransformationExtraArgs:
    """Builds the optimizer of `cfg` (the `optimizer` block of an experiment config).

    Fields: name (adam|adamw|adadelta|sgd), lr, schedule (constant|cosine|step|plateau),
    warmup (steps), clip_norm (global-norm clipping or None), weight_decay, and per
    optimizer: b1, b2 (adam), rho, eps (adadelta), momentum, nesterov (sgd); step_every,
    step_factor (step); plateau_factor, plateau_patience, plateau_steps (plateau).
    With schedule 'plateau' call `update(..., value=loss)`.
    """
    name = cfg.name
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    lr = learning_rate(cfg, num_steps)
    wd = float(cfg.get("weight_decay", 0.0) or 0.0)
    if name == "adam":
        opt = optax.adam(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999))
    elif name == "adamw":
        opt = optax.adamw(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999), weight_decay=wd)
    elif name == "adadelta":
        opt = optax.adadelta(lr, rho=cfg.get("rho", 0.95), eps=cfg.get("eps", 1e-7))
    else:
        opt = optax.sgd(lr, momentum=cfg.get("momentum", 0.9) or None,
                        nesterov=cfg.get("nesterov", False))
    parts = []
    if cfg.get("clip_norm"):
        parts.append(optax.clip_by_global_norm(float(cfg.clip_norm)))
    if wd and name != "adamw":
        parts.append(optax.add_decayed_weights(wd))
    parts.append(opt)
    if cfg.get("schedule") == "plateau":
        # Judged on the training loss averaged over `plateau_steps` steps (Keras'
        # ReduceLROnPlateau watched the per-epoch validation loss).
        parts.append(optax.contrib.reduce_on_plateau(
            factor=cfg.get("plateau_factor", 0.7), patience=cfg.get("plateau_patience", 3),
            accumulation_size=cfg.get("plateau_steps", 100)))
    return optax.chain(*parts)


def lr_at(cfg: ConfigDict, num_steps: int, step: jax.Array, opt_state) -> jax.Array:
    """The learning rate applied at `step` (plateau scale included), jittable, for logging."""
    lr = learning_rate(cfg, num_steps)(step)
    if cfg.get("schedule") == "plateau":
        lr = lr * opt_state[-1].scale  # reduce_on_plateau is the last link of the chain
    return jnp.asarray(lr, jnp.float32)
