"""The model contract, checked on every registered model at tiny sizes.

Any H, W in and the same shape out; finite gradients under `jax.jit`; bfloat16 compute with
float32 output; a few Adam steps lower the loss. A model registered without `tiny=` sizes
fails (no silent skip).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from denoise_jax import models

# Small kwargs per model so each test compiles and runs in seconds on 2 CPU cores: declared
# where each model is registered (`register(name, tiny=...)`).
TINY = models.tiny_kwargs()

# The dense autoencoder learns slowly at 2e-3 (the Keras MNIST tutorial used Adadelta at lr 1.0).
LEARNING_RATE = {"dae_dense": 1e-2}

# Models whose variables fit one input size only.
FIXED_SHAPE = {"dae_dense": (2, 28, 28, 1)}

NAMES = sorted(set(TINY) | set(models.names()))


def build(name: str, **overrides):
    if name not in models.names():
        pytest.skip(f"model {name!r} is not registered yet")
    assert name in TINY, f"registered model {name!r} needs an entry in TINY"
    return models.get_model(name, **{**TINY[name], **overrides})


@functools.cache
def variables_for(name: str, channels: int) -> dict:
    """Variables of the TINY model for `channels`-channel input, built once per session.

    The variable tree comes from the model's own `init`, traced with `jax.eval_shape`; the
    values are filled here with numpy (kernels N(0, 1/fan_in); "scale" and "var" ones;
    everything else, biases, BN means, NAFNet's beta/gamma, zeros). Compiling the real
    initialisers costs 5 to 25 s per model on 2 CPU cores, more than all the checks below.
    Conv parameters do not depend on H, W, so one tree serves every image size.
    """
    shape = FIXED_SHAPE.get(name, (1, 32, 32, channels))
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    abstract = jax.eval_shape(lambda x: build(name).init(jax.random.key(0), x), x)
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        key = getattr(path[-1], "key", "")
        if key == "kernel":
            std = 1.0 / np.sqrt(max(1, int(np.prod(leaf.shape[:-1]))))
            return jnp.asarray(rng.normal(0.0, std, leaf.shape), leaf.dtype)
        if key in ("scale", "var"):
            return jnp.ones(leaf.shape, leaf.dtype)
        return jnp.zeros(leaf.shape, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


@functools.cache
def apply_fn(name: str, dtype=jnp.float32):
    """The jitted eval-mode forward of the TINY model (cached so compilations are reused)."""
    model = build(name, dtype=dtype)
    return jax.jit(lambda v, x: model.apply(v, x, train=False))


def images(shape: tuple[int, ...], seed: int = 0) -> tuple[jnp.ndarray, jnp.ndarray]:
    """A smooth clean batch of `shape` and its noisy version (σ = 0.1, clipped), both in [0, 1]."""
    b, h, w, c = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    phase = np.arange(b * c).reshape(b, 1, 1, c)
    clean = 0.5 + 0.4 * np.sin(3 * xx[None, :, :, None] + 2 * yy[None, :, :, None] + phase)
    noise = np.random.default_rng(seed).normal(0, 0.1, shape)
    noisy = np.clip(clean + noise, 0, 1)
    return jnp.asarray(clean, jnp.float32), jnp.asarray(noisy, jnp.float32)


def shapes_for(name: str) -> list[tuple[int, ...]]:
    """Odd sizes (the models pad and crop), grey and colour; the last one is colour."""
    if name in FIXED_SHAPE:
        return [FIXED_SHAPE[name]]
    return [(1, 37, 53, 1), (2, 37, 53, 3)]


def loss_fn(model, params, state, noisy, clean):
    """MSE of the train-mode output; returns (loss, updated batch_stats if any)."""
    variables = {"params": params, **state}
    if state:
        out, new_state = model.apply(variables, noisy, train=True, mutable=list(state))
    else:
        out, new_state = model.apply(variables, noisy, train=True), {}
    return jnp.mean((out - clean) ** 2), new_state


def test_every_registered_model_has_tiny_kwargs():
    missing = sorted(set(models.names()) - set(TINY))
    assert not missing, f"add TINY entries for {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_equals_input_shape(name):
    for shape in shapes_for(name):
        _, noisy = images(shape)
        out = apply_fn(name)(variables_for(name, shape[-1]), noisy)
        assert out.shape == noisy.shape
        assert out.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_compute_matches_float32(name):
    shape = shapes_for(name)[-1]
    _, noisy = images(shape)
    variables = variables_for(name, shape[-1])
    # The same float32 variables serve both: param_dtype stays float32.
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    out32 = apply_fn(name)(variables, noisy)
    out16 = apply_fn(name, jnp.bfloat16)(variables, noisy)
    assert out16.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out16)))
    scale = float(jnp.abs(out32).mean()) + 1e-3
    assert float(jnp.abs(out16 - out32).mean()) < 0.05 * scale


@pytest.mark.parametrize("name", NAMES)
def test_jitted_adam_steps_have_finite_gradients_and_lower_the_loss(name):
    model = build(name)
    shape = FIXED_SHAPE.get(name, (2, 32, 32, 3))
    clean, noisy = images(shape)
    variables = variables_for(name, shape[-1])
    params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    optimizer = optax.adam(LEARNING_RATE.get(name, 2e-3))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, state, opt_state):
        (loss, state), grads = jax.value_and_grad(
            lambda p: loss_fn(model, p, state, noisy, clean), has_aux=True
        )(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss, grads

    losses = []
    for i in range(20):
        params, state, opt_state, loss, grads = step(params, state, opt_state)
        losses.append(float(loss))
        if i == 0:
            leaves = jax.tree.leaves(grads)
            assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
            assert any(float(jnp.abs(g).max()) > 0 for g in leaves)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
