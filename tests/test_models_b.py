"""Haar DWT/IWT, MWCNN and PRIDNet (the papers' and the real-noise comparison's variants).

Structure and parameter counts at the default sizes come from `jax.eval_shape` (nothing is
allocated). Forward and gradient checks run tiny widths with variables filled from numpy
(the real initialisers are traced by `eval_shape`; compiling them is the slow part on CPU).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import pywt
from skimage import data as skdata

from denoise_jax.errors import UserError
from denoise_jax.models import get_model, tiny_kwargs
from denoise_jax.models.haar import dwt, iwt

MODELS = ("mwcnn", "mwcnn_realnoise", "pridnet", "pridnet_realnoise")
# Test sizes, declared where each model is registered (`register(name, tiny=...)`).
TINY = tiny_kwargs()


def n_params(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def abstract_variables(model, shape):
    return jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))


def numpy_variables(model, x):
    """Variables of the right shapes: He-scaled normal kernels, zero biases, unit BN scale."""
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name == "kernel":
            fan_in = math.prod(leaf.shape[:-1])
            return jnp.asarray(rng.normal(0, math.sqrt(2 / fan_in), leaf.shape), jnp.float32)
        if name in ("scale", "var"):
            return jnp.ones(leaf.shape, jnp.float32)
        return jnp.zeros(leaf.shape, jnp.float32)

    return jax.tree_util.tree_map_with_path(fill, abstract_variables(model, x.shape))


def kernel_shapes(params) -> dict[str, tuple[int, ...]]:
    """'a/b/kernel' -> shape for every conv/dense kernel in a param tree."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {
        "/".join(p.key for p in path[:-1]): leaf.shape
        for path, leaf in flat
        if path[-1].key == "kernel"
    }


def astronaut(h: int = 64, w: int = 96) -> jnp.ndarray:
    image = skdata.astronaut()[200 : 200 + h, 180 : 180 + w] / 255.0
    return jnp.asarray(image[None], jnp.float32)


# ---------------------------------------------------------------- Haar


@pytest.mark.parametrize("scale", ["orthonormal", "unscaled"])
def test_iwt_inverts_dwt_exactly_on_random_and_real_images(scale):
    random = jax.random.uniform(jax.random.key(0), (2, 6, 10, 3))
    for x in (random, astronaut()):
        y = dwt(x, scale)
        assert y.shape == (x.shape[0], x.shape[1] // 2, x.shape[2] // 2, 4 * x.shape[3])
        assert float(jnp.abs(iwt(y, scale) - x).max()) < 1e-6
    # And the other way round: DWT ∘ IWT is the identity on sub-band tensors.
    y = jax.random.normal(jax.random.key(1), (1, 5, 7, 8))
    assert float(jnp.abs(dwt(iwt(y, scale), scale) - y).max()) < 1e-5


def test_orthonormal_dwt_preserves_energy_and_unscaled_quadruples_it():
    x = astronaut()
    energy = float(np.sum(np.asarray(x, np.float64) ** 2))
    assert float(jnp.sum(dwt(x, "orthonormal") ** 2)) == pytest.approx(energy, rel=1e-5)
    assert float(jnp.sum(dwt(x, "unscaled") ** 2)) == pytest.approx(4 * energy, rel=1e-5)


def test_dwt_agrees_with_pywavelets_haar_per_channel():
    x = np.asarray(astronaut(32, 48))
    c = x.shape[-1]
    ortho = np.asarray(dwt(jnp.asarray(x), "orthonormal"))
    unscaled = np.asarray(dwt(jnp.asarray(x), "unscaled"))
    for ch in range(c):
        ca, (ch_, cv, cd) = pywt.dwt2(x[0, :, :, ch].astype(np.float64), "haar")
        bands = [ortho[0, :, :, k * c + ch] for k in range(4)]  # LL, LH, HL, HH
        # Documented convention: PyWavelets' single-difference bands have the opposite sign.
        for ours, theirs in zip(bands, (ca, -ch_, -cv, cd), strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-6)
        np.testing.assert_allclose(unscaled[0, :, :, ch], 2 * ca, atol=1e-5)


def test_dwt_channel_layout_is_ll_lh_hl_hh_blocks():
    rows = (jnp.arange(4) % 2).astype(jnp.float32)[None, :, None, None]  # odd rows are 1
    x = jnp.concatenate([jnp.ones((1, 4, 4, 1)), jnp.broadcast_to(rows, (1, 4, 4, 1))], -1)
    y = dwt(x, "unscaled")  # C = 2: channels [LL0, LL1, LH0, LH1, HL0, HL1, HH0, HH1]
    np.testing.assert_allclose(y[0, 0, 0], [4, 2, 0, 2, 0, 0, 0, 0])
    cols = jnp.swapaxes(x, 1, 2)  # odd columns are 1 in channel 1
    np.testing.assert_allclose(dwt(cols, "unscaled")[0, 0, 0], [4, 2, 0, 0, 0, 2, 0, 0])


def test_haar_rejects_odd_sizes_and_unknown_scale():
    with pytest.raises(UserError):
        dwt(jnp.zeros((1, 5, 4, 1)))
    with pytest.raises(UserError):
        iwt(jnp.zeros((1, 2, 2, 3)))
    with pytest.raises(UserError):
        dwt(jnp.zeros((1, 4, 4, 1)), "haar")


# ---------------------------------------------------------------- all four models


@pytest.mark.parametrize("name", MODELS)
def test_odd_sizes_come_back_with_the_input_shape(name):
    model = get_model(name, **TINY[name])
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    for shape in [(1, 37, 53, 1), (2, 37, 53, 3)]:
        x = jax.random.uniform(jax.random.key(0), shape)
        out = apply(numpy_variables(model, x), x)
        assert out.shape == shape
        assert out.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("name", MODELS)
def test_jitted_gradients_are_finite_and_nonzero(name):
    model = get_model(name, **TINY[name])
    x = jax.random.uniform(jax.random.key(0), (2, 19, 24, 3))
    target = jnp.clip(x + 0.1, 0, 1)
    variables = numpy_variables(model, x)
    state = {k: v for k, v in variables.items() if k != "params"}

    @jax.jit
    def grads(params):
        def loss(p):
            out, _ = model.apply({"params": p, **state}, x, train=True, mutable=list(state))
            return jnp.mean((out - target) ** 2)

        return jax.value_and_grad(loss)(params)

    value, g = grads(variables["params"])
    leaves = jax.tree.leaves(g)
    assert np.isfinite(float(value))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert sum(float(jnp.abs(leaf).sum()) > 0 for leaf in leaves) > 0.9 * len(leaves)


def test_bad_sizes_raise_user_errors():
    x = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
    for name, kwargs in [("mwcnn", dict(widths=())), ("mwcnn_realnoise", dict(features=0)),
                         ("pridnet", dict(features=0)), ("pridnet_realnoise", dict(unet_levels=0))]:
        with pytest.raises(UserError):
            jax.eval_shape(get_model(name, **kwargs).init, jax.random.key(0), x)


# ---------------------------------------------------------------- MWCNN layouts


def test_mwcnn_paper_has_24_layers_with_widths_160_256_256():
    variables = abstract_variables(get_model("mwcnn"), (1, 16, 16, 1))
    kernels = kernel_shapes(variables["params"])
    assert len(kernels) == 24
    # DWT in front of each level: 4× the channels of the level above.
    assert kernels["down0_0/conv"] == (3, 3, 4, 160)
    assert kernels["down1_0/conv"] == (3, 3, 640, 256)
    assert kernels["down2_0/conv"] == (3, 3, 1024, 256)
    # The last layer of each expanding level widens 4× for the IWT.
    assert kernels["up2_3/conv"] == (3, 3, 256, 1024)
    assert kernels["up1_3/conv"] == (3, 3, 256, 640)
    assert kernels["tail"] == (3, 3, 160, 4)
    # Conv + BN + ReLU everywhere except the output conv.
    assert len(variables["batch_stats"]) == 23
    assert n_params(variables["params"]) == 16_152_260


def test_mwcnn_realnoise_blocks_are_64_128_256_512_512_512_with_4_dwt_levels():
    variables = abstract_variables(get_model("mwcnn_realnoise"), (1, 16, 16, 3))
    kernels = kernel_shapes(variables["params"])
    blocks = ["enc0", "enc1", "enc2", "enc3", "bottom0", "bottom1"]
    assert [kernels[f"{b}/conv0"][-1] for b in blocks] == [64, 128, 256, 512, 512, 512]
    assert all(f"{b}/conv2" in kernels and f"{b}/conv3" not in kernels for b in blocks)
    # A DWT sits wherever a block's input has 4× the previous block's output channels.
    dwts = [
        kernels[f"{b}/conv0"][2] == 4 * kernels[f"{a}/conv2"][-1]
        for a, b in zip(blocks, blocks[1:], strict=False)
    ]
    assert dwts == [True, True, True, True, False]
    assert set(variables["batch_stats"]) == {"bottom_bn"}
    assert [kernels[f"widen{i}"][-1] for i in (3, 2, 1, 0)] == [2048, 1024, 512, 256]
    assert kernels["last"] == (3, 3, 64, 128)
    assert kernels["out"] == (1, 1, 128, 3)
    assert n_params(variables["params"]) == 58_814_019


# ---------------------------------------------------------------- PRIDNet layouts


def test_pridnet_realnoise_has_about_291m_parameters_and_the_comparison_layout():
    variables = abstract_variables(get_model("pridnet_realnoise"), (1, 16, 16, 3))
    params = variables["params"]
    assert n_params(params) == 290_622_993
    branches = sorted(k for k in params if k.startswith("branch_pool"))
    assert branches == [f"branch_pool{p}" for p in (1, 16, 2, 4, 8)]
    kernels = kernel_shapes(params)
    assert kernels["attention/squeeze"] == (64, 2)
    assert kernels["attention/excite"] == (2, 64)
    assert kernels["fe_out"] == (3, 3, 64, 3)
    unet = kernel_shapes(params["branch_pool4"])
    assert n_params(params["branch_pool4"]) == 58_094_179
    assert unet["down0_0"] == (3, 3, 6, 64)  # input concatenated with the features: 2C
    assert [unet[f"down{i}_3"][-1] for i in range(5)] == [64, 128, 256, 512, 1024]
    assert [unet[f"upsample{i}"] for i in (3, 2, 1, 0)] == [
        (3, 3, 1024, 256), (3, 3, 512, 128), (3, 3, 256, 64), (3, 3, 128, 32)]
    assert unet["out"] == (1, 1, 64, 3)
    # Concatenation of 2C features and 5 branches of C: 21 channels for colour.
    for k in (3, 5, 7):
        assert kernels[f"kernel_select/conv{k}x{k}"] == (k, k, 21, 21)
        assert kernels[f"kernel_select/select{k}"] == (2, 21)
    assert kernels["kernel_select/squeeze"] == (21, 2)
    assert kernels["out"] == (3, 3, 21, 3)


def test_pridnet_paper_layout_at_default_width():
    params = abstract_variables(get_model("pridnet"), (1, 16, 16, 1))["params"]
    assert n_params(params) == 74_185_129
    kernels = kernel_shapes(params)
    assert kernels["attention/squeeze"] == (32, 2)  # C/16
    unet = kernel_shapes(params["branch_pool1"])
    assert [unet[f"down{i}_3"][-1] for i in range(5)] == [32, 64, 128, 256, 512]
    assert unet["upsample3"] == (2, 2, 512, 256)
    assert "bias" not in params["branch_pool1"]["upsample3"]
    assert kernels["kernel_select/conv7x7"] == (7, 7, 7, 7)
    assert kernels["kernel_select/squeeze"] == (7, 4)


@pytest.mark.parametrize("name", ["pridnet", "pridnet_realnoise"])
def test_pridnet_branches_pool_by_1_2_4_8_16(name):
    model = get_model(name, **TINY[name])
    x = jax.ShapeDtypeStruct((1, 64, 48, 3), jnp.float32)
    variables = abstract_variables(model, x.shape)
    _, state = jax.eval_shape(
        lambda v, x: model.apply(v, x, capture_intermediates=True, mutable=["intermediates"]),
        variables, x)
    inter = state["intermediates"]
    for p in (1, 2, 4, 8, 16):
        (out,) = inter[f"branch_pool{p}"]["__call__"]
        assert out.shape == (1, 64 // p, 48 // p, 3)
    (fused,) = inter["kernel_select"]["__call__"]
    assert fused.shape == (1, 64, 48, 21)
