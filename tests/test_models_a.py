"""Architecture facts of the autoencoders, RED-Net, DnCNN and NAFNet, and the summary tool.

Sizes of the full models come from `summary.summarize` (shapes only, nothing allocated).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from denoise_jax import models
from denoise_jax.errors import UserError
from denoise_jax.models import summary
from denoise_jax.models.nafnet import NAFBlock, pixel_shuffle


def layer_types(model: nn.Module, x: jnp.ndarray) -> list[str]:
    """Class names of the conv / dense layers `model` calls on x, in call order."""
    seen = []

    def record(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and isinstance(
            context.module, nn.Conv | nn.ConvTranspose | nn.Dense
        ):
            seen.append(type(context.module).__name__)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    return seen


def with_leaf(variables: dict, path: tuple[str, ...], value: jnp.ndarray) -> dict:
    """A copy of nested `variables` with the leaf at `path` replaced by `value`."""
    if not path:
        return value
    return {**variables, path[0]: with_leaf(variables[path[0]], path[1:], value)}


# --- DnCNN ---------------------------------------------------------------------------------

def test_dncnn_parameter_counts_match_the_paper():
    colour17 = summary.summarize("dncnn", (1, 256, 256, 3))["params"]
    grey17 = summary.summarize("dncnn", (1, 256, 256, 1))["params"]
    colour20 = summary.summarize("dncnn", (1, 256, 256, 3), depth=20)["params"]
    # 17 layers: the paper's "about 0.56M" (docs/reference.md#published-numbers); BN
    # scale/offset counted, stats not.
    assert colour17 == 558_403 and grey17 == 556_097
    assert abs(colour17 - 0.56e6) < 0.01 * 0.56e6
    # The 20-layer blind colour model has three more 64→64 layers: 0.67M, not 0.56M.
    assert colour20 == colour17 + 3 * (3 * 3 * 64 * 64 + 2 * 64)


def test_dncnn_gmacs_at_256_match_design():
    info = summary.summarize("dncnn", (1, 256, 256, 3))
    assert abs(info["gmacs"] - 36.0) < 2.0  # docs/reference.md#published-numbers: 36 GMACs
    # XLA's own count (flops = 2 MACs, plus elementwise ops, minus padding) agrees within 2%.
    assert abs(info["xla_gflops"] / 2 - info["gmacs"]) < 0.02 * info["gmacs"]


def test_dncnn_predicts_the_noise_and_subtracts_it():
    model = models.get_model("dncnn", depth=3, features=4)
    x = jax.random.uniform(jax.random.key(1), (1, 9, 11, 3))
    variables = model.init(jax.random.key(0), x)
    assert set(variables) == {"params", "batch_stats"}
    bias = jnp.array([0.1, -0.2, 0.3])
    variables = with_leaf(variables, ("params", "conv2", "kernel"),
                          jnp.zeros_like(variables["params"]["conv2"]["kernel"]))
    variables = with_leaf(variables, ("params", "conv2", "bias"), bias)
    np.testing.assert_allclose(model.apply(variables, x), x - bias, atol=1e-6)


def test_dncnn_without_bn_has_no_batch_stats_and_biased_middle_convs():
    model = models.get_model("dncnn", depth=4, features=4, use_bn=False)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1))))
    assert set(variables) == {"params"}
    assert all("bias" in variables["params"][f"conv{i}"] for i in range(4))


def test_dncnn_rejects_a_depth_below_two():
    with pytest.raises(UserError):
        models.get_model("dncnn", depth=1).init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


# --- NAFNet --------------------------------------------------------------------------------

def test_nafnet_sidd_width32_size_and_cost():
    info = summary.summarize("nafnet", (1, 256, 256, 3))
    assert info["params"] == 29_159_715  # docs/reference.md#published-numbers: 29M
    assert abs(info["gmacs"] - 16.0) < 1.0  # docs/reference.md#published-numbers: 16 GMACs


def test_nafnet_tiny_is_small():
    assert summary.summarize("nafnet_tiny", (1, 64, 64, 3))["params"] == 288_691


def test_pixel_shuffle_follows_pytorch_channel_order():
    r, c = 2, 3
    x = jnp.arange(1 * 2 * 2 * c * r * r, dtype=jnp.float32).reshape(1, 2, 2, c * r * r)
    y = pixel_shuffle(x, r)
    assert y.shape == (1, 4, 4, c)
    for h in range(2):
        for w in range(2):
            for ch in range(c):
                for i in range(r):
                    for j in range(r):
                        assert y[0, h * r + i, w * r + j, ch] == x[0, h, w, ch * r * r + i * r + j]


def test_nafblock_starts_as_identity():
    block = NAFBlock()
    x = jax.random.normal(jax.random.key(1), (1, 6, 6, 4))
    variables = block.init(jax.random.key(0), x)
    assert not np.any(variables["params"]["beta"]) and not np.any(variables["params"]["gamma"])
    np.testing.assert_allclose(block.apply(variables, x), x)


def test_nafnet_rejects_unmatched_encoder_and_decoder():
    with pytest.raises(UserError, match="same length"):
        models.get_model("nafnet", enc_blk_nums=(1, 1), dec_blk_nums=(1,))


# --- RED-Net -------------------------------------------------------------------------------

def test_red10_has_five_convs_then_five_deconvs():
    x = jnp.zeros((1, 16, 16, 3))
    assert layer_types(models.get_model("rednet"), x) == ["Conv"] * 5 + ["ConvTranspose"] * 5
    red30 = layer_types(models.get_model("rednet", depth=15, features=4), x)
    assert red30 == ["Conv"] * 15 + ["ConvTranspose"] * 15
    variables = jax.eval_shape(lambda: models.get_model("rednet").init(jax.random.key(0), x))
    kernels = {name: layer["kernel"].shape for name, layer in variables["params"].items()}
    assert kernels["conv1"] == (3, 3, 3, 64) and kernels["conv5"] == (3, 3, 64, 64)
    assert kernels["deconv5"] == (3, 3, 64, 3)


def test_rednet_output_is_input_plus_last_deconv():
    model = models.get_model("rednet", depth=2, features=4)
    x = jax.random.uniform(jax.random.key(1), (1, 7, 9, 1))
    variables = model.init(jax.random.key(0), x)
    last = variables["params"]["deconv2"]
    zero_kernel, bias = jnp.zeros_like(last["kernel"]), jnp.full_like(last["bias"], 0.25)
    variables = with_leaf(variables, ("params", "deconv2", "kernel"), zero_kernel)
    variables = with_leaf(variables, ("params", "deconv2", "bias"), bias)
    np.testing.assert_allclose(model.apply(variables, x), x + 0.25, atol=1e-6)


# --- Autoencoders ----------------------------------------------------------------------------

def test_dae_dense_is_the_keras_mnist_network():
    model = models.get_model("dae_dense")
    x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
    variables = model.init(jax.random.key(0), x)
    shapes = jax.tree.map(jnp.shape, variables["params"])
    assert shapes == {"encoder": {"kernel": (784, 32), "bias": (32,)},
                      "decoder": {"kernel": (32, 784), "bias": (784,)}}
    p = variables["params"]
    flat = x.reshape(2, 784)
    logits = jax.nn.relu(flat @ p["encoder"]["kernel"] + p["encoder"]["bias"])
    logits = logits @ p["decoder"]["kernel"] + p["decoder"]["bias"]
    out = model.apply(variables, x)
    np.testing.assert_allclose(out.reshape(2, 784), jax.nn.sigmoid(logits), atol=1e-5)
    raw = models.get_model("dae_dense", return_logits=True).apply(variables, x)
    np.testing.assert_allclose(raw.reshape(2, 784), logits, atol=1e-5)


def test_dae_conv_has_the_keras_blog_layers():
    model = models.get_model("dae_conv")
    x = jnp.zeros((1, 28, 28, 1))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    kernels = {name: layer["kernel"].shape for name, layer in variables["params"].items()}
    assert kernels == {"enc1": (3, 3, 1, 32), "enc2": (3, 3, 32, 32), "dec1": (3, 3, 32, 32),
                       "dec2": (3, 3, 32, 32), "out": (3, 3, 32, 1)}


# --- summary -------------------------------------------------------------------------------

def test_summary_counts_conv_and_transposed_conv_macs_exactly():
    # One 3×3 conv 1→2 and one 3×3 deconv 2→1 on 8×8: 64 positions × 18 MACs each.
    info = summary.summarize("rednet", (1, 8, 8, 1), depth=1, features=2)
    assert info["gmacs"] * 1e9 == 2 * 64 * 18
    assert info["params"] == (18 + 2) + (18 + 1)


def test_table_lists_models_with_size_cost_and_description():
    text = summary.table(["dncnn", "dae_dense", "nafnet_tiny"])
    lines = text.splitlines()
    assert lines[0].startswith("| model | params (M) | GMACs @256×256×3")
    assert len(lines) == 5
    assert lines[2].startswith("| dncnn | 0.558 | 36.4")
    assert "(@28×28×1)" in lines[3] and "Keras MNIST autoencoder" in lines[3]
    assert "NAFNet, tiny" in lines[4]


def test_dncnn_starts_as_the_identity():
    # A zero-initialised last layer: training starts from "no denoising", not from noise.
    model = models.get_model("dncnn", depth=4, features=8)
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3))
    variables = model.init(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(model.apply(variables, x), x, atol=1e-6)
