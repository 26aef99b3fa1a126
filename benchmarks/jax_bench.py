"""The JAX side of every case (runs inside a JAX worker process; see worker.py).

Each function takes a case spec (cases.py) and returns {"seconds": median seconds per call,
…measure() details, …case facts}. Compilation is always outside the timed region.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from benchmarks import baseline_bench, common


def conv_impl() -> str:
    """Selects the "auto" convolution when the project offers a switch; names what runs."""
    from denoise_jax.models import layers

    setter = getattr(layers, "set_conv_impl", None)
    if setter is None:
        return "xla (flax nn.Conv; no set_conv_impl)"
    setter("auto")
    getter = getattr(layers, "get_conv_impl", None)
    resolved = getter() if callable(getter) else None
    return "auto" if resolved in (None, "auto") else f"auto ({resolved})"


def _model(spec: dict[str, Any], dtype: str = "float32"):
    import jax.numpy as jnp

    from denoise_jax.models import get_model

    model = get_model(spec["model"], **spec.get("kwargs", {}))
    return model.clone(dtype=jnp.bfloat16) if dtype == "bfloat16" else model


def _optimizer(cfg: dict[str, Any]):
    import optax

    if cfg["name"] == "adam":
        return optax.adam(cfg["lr"], b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999))
    if cfg["name"] == "adamw":
        return optax.adamw(cfg["lr"], b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                           weight_decay=cfg.get("weight_decay", 0.0))
    raise ValueError(f"benchmark optimizer must be adam or adamw, not {cfg['name']!r}")


def _train_step(model, tx, loss):
    """step((params, batch_stats, opt_state), noisy, clean) -> (new state, loss), jitted."""
    import jax
    import optax

    def step(state, noisy, clean):
        params, stats, opt_state = state

        def loss_of(p):
            if stats:
                out, updates = model.apply({"params": p, "batch_stats": stats}, noisy,
                                           train=True, mutable=["batch_stats"])
                return loss(out, clean, False), updates["batch_stats"]
            return loss(model.apply({"params": p}, noisy, train=True), clean, False), stats

        (value, stats), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), value

    return jax.jit(step, donate_argnums=0)


def train(spec: dict[str, Any], dtype: str = "float32") -> dict[str, Any]:
    """Seconds per optimizer step on a fixed batch (2 untimed warm-up steps compile it).

    The compiled step and its state are kept per spec, so a later round of the same case
    (run.py pairs rounds with the twin's) times the same step without recompiling."""
    import jax

    key = (common.spec_key(spec), dtype)
    call = common.kept(_TRAIN_CALLS, key, _KEEP, lambda: _train_call(spec, dtype))
    result = common.measure(call, warmup=2, **common.budget(spec))
    result["device"] = str(jax.devices()[0].device_kind)
    return result


_TRAIN_CALLS: dict[tuple[str, str], Any] = {}
_KEEP = 1


def _train_call(spec: dict[str, Any], dtype: str):
    """One optimizer step of the case's model on its fixed batch, as a blocking call."""
    import jax

    from denoise_jax import optim

    model = _model(spec, dtype)
    noisy, clean = common.train_batch(spec["batch"], spec["patch"], spec["channels"])
    variables = jax.jit(functools.partial(model.init, train=False))(
        jax.random.key(0), noisy[:1])
    tx = _optimizer(spec["optimizer"])
    params = variables["params"]
    state = [(params, variables.get("batch_stats", {}), tx.init(params))]
    step = _train_step(model, tx, optim.loss_fn(spec["loss"]))
    x, y = jax.device_put(noisy), jax.device_put(clean)

    def call():
        state[0], value = step(state[0], x, y)
        jax.block_until_ready((state[0], value))

    return call


def train_gpu(spec: dict[str, Any]) -> dict[str, Any]:
    """`train` in the spec's dtype plus the forward MACs of one image (for TFLOP/s)."""
    from denoise_jax.models import summary

    result = train(spec, spec.get("dtype", "float32"))
    shape = (1, spec["patch"], spec["patch"], spec["channels"])
    result["gmacs_per_image"] = summary.summarize(spec["model"], shape,
                                                  **spec.get("kwargs", {}))["gmacs"]
    return result


def _load(spec: dict[str, Any]):
    """(model, variables, from_logits, channels) for an infer case."""
    import jax
    import jax.numpy as jnp

    if spec.get("pretrained"):
        from denoise_jax import methods

        run = methods.load_run(*methods.parse_spec(f"pretrained:{spec['pretrained']}"))
        channels = methods.model_channels(run.model, run.variables) or 3
        return run.model, run.variables, run.from_logits, channels
    model = _model(spec)
    x = jnp.zeros((1, 32, 32, spec["channels"]), jnp.float32)
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), x)
    return model, variables, False, spec["channels"]


def infer(spec: dict[str, Any]) -> dict[str, Any]:
    """Seconds to denoise one size² photo, whole or tiled by `inference.tiled`.

    The model call is jitted as the project's Denoiser does (eval mode, clipped to [0, 1])
    and compiled ahead of time for the shape it will see; one untimed warm-up call on a
    single tile (or the whole image up to 512²) precedes the timed repeats.
    """
    import jax
    import jax.numpy as jnp

    from denoise_jax import inference

    model, variables, from_logits, channels = _load(spec)

    @jax.jit
    def predict(v, x):
        out = model.apply(v, x, train=False)
        out = jax.nn.sigmoid(out) if from_logits else out
        return jnp.clip(out.astype(jnp.float32), 0.0, 1.0)

    size = spec["size"]
    tile = spec.get("tile") or size
    overlap = spec.get("overlap") or 0
    side = min(tile, size)
    predict.lower(variables, jax.ShapeDtypeStruct((1, side, side, channels), jnp.float32)).compile()
    image = common.photo(size, channels)
    apply_fn = lambda x: np.asarray(predict(variables, x))  # noqa: E731
    warm = image[: min(side, 512), : min(side, 512)]
    warm_call = lambda: inference.tiled(apply_fn, warm, tile, overlap)  # noqa: E731
    warm_call()
    result = common.measure(lambda: inference.tiled(apply_fn, image, tile, overlap),
                            warmup=0, **common.budget(spec))
    result.update(channels=channels, warmup=f"compiled {side}² + 1 call on {warm.shape[0]}²")
    return result


HANDLERS = {"train": train, "train_gpu": train_gpu, "infer": infer,
            "baseline": lambda spec: baseline_bench.measure_method(spec["method"], spec)}
