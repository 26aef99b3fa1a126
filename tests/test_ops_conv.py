"""The oneDNN convolution custom calls (`denoise_jax.ops.conv`) and the `Conv` layer using them.

Checks values and gradients (input, kernel, bias) against `lax.conv_general_dilated` under
`jit`, on one device and (in a subprocess) on 4 fake CPU devices with the batch sharded;
that a model gives the same outputs with impl "xla" and "onednn"; and that everything falls
back to XLA when the library is missing. oneDNN-specific tests skip, with the reason, only
when the library cannot be built here.
"""

import os
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from denoise_jax.models import layers
from denoise_jax.ops import build, conv

_DIMS = ("NHWC", "HWIO", "NHWC")

# name -> (x shape, Conv keyword arguments)
CASES = {
    "3x3": ((2, 9, 7, 5), dict(features=6, kernel_size=(3, 3), padding="SAME")),
    "1x1_nobias": ((2, 8, 8, 8), dict(features=16, kernel_size=(1, 1), use_bias=False)),
    "depthwise": ((2, 8, 8, 8), dict(features=8, kernel_size=(3, 3), feature_group_count=8)),
    "2x2_stride2": ((2, 8, 10, 4), dict(features=8, kernel_size=(2, 2), strides=(2, 2),
                                        padding="VALID")),
    # groups, dilation, unequal strides and asymmetric padding at once
    "mixed": ((2, 13, 11, 4), dict(features=6, kernel_size=(5, 3), feature_group_count=2,
                                   kernel_dilation=(2, 1), strides=(2, 1),
                                   padding=((3, 1), (0, 2)))),
}

def _reference(params: dict, x: jax.Array, kw: dict) -> jax.Array:
    """The same convolution written directly with lax (flax's padding rules)."""
    kernel = params["kernel"]
    module = nn.Conv(**kw)
    strides = kw.get("strides", (1, 1))
    dilation = kw.get("kernel_dilation", (1, 1))
    y = lax.conv_general_dilated(x, kernel, strides, module.padding, rhs_dilation=dilation,
                                 dimension_numbers=_DIMS,
                                 feature_group_count=kw.get("feature_group_count", 1))
    return y + params["bias"] if "bias" in params else y


def _outputs(apply, params, x):
    """jit of (y, loss, (d loss / d params, d loss / d x)) for a scalar loss of y."""

    def loss(p, x):
        y = apply(p, x)
        return jnp.sum(jnp.sin(y) * jnp.arange(y.size).reshape(y.shape) / y.size), y

    def run(p, x):
        (value, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(p, x)
        return y, value, grads

    return jax.jit(run)(params, x)


def _close(a, b, rtol=2e-5):
    """Equal up to float32 rounding, relative to the largest magnitude of b."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=rtol * max(1.0, float(np.abs(b).max())), rtol=rtol)


@pytest.fixture(scope="module")
def onednn():
    """Builds the library when missing (idempotent); skips when it cannot be built/loaded."""
    if not conv.available():
        ok, message = build.build()
        conv._state.clear()  # forget the failed load so the new library is tried
        if not ok or not conv.available():
            pytest.skip(f"oneDNN conv unavailable: {conv.unavailable_reason() or message}")
    yield
    layers.set_conv_impl("xla")


def _has_custom_call(fn, *args) -> bool:
    return "dj_onednn" in str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("case", sorted(CASES))
def test_module_matches_lax_values_and_grads(onednn, case):
    shape, kw = CASES[case]
    x = jax.random.normal(jax.random.key(0), shape)
    module = layers.Conv(**kw)
    params = module.init(jax.random.key(1), x)["params"]
    if "bias" in params:  # non-zero, so the bias actually shows in the outputs
        params = {**params, "bias": jnp.linspace(-1.0, 1.0, params["bias"].size)}

    def apply(p, x):
        return module.apply({"params": p}, x)

    with layers.conv_impl("onednn"):
        assert _has_custom_call(apply, params, x)
        y, value, (g_params, g_x) = _outputs(apply, params, x)
    ref_y, ref_value, (ref_params, ref_x) = _outputs(lambda p, x: _reference(p, x, kw), params, x)

    _close(y, ref_y)
    _close(value, ref_value)
    _close(g_x, ref_x)
    for name in params:
        _close(g_params[name], ref_params[name])


def test_parameters_are_flax_conv_parameters():
    x = jnp.ones((1, 6, 6, 3))
    kw = dict(features=8, kernel_size=(3, 3), feature_group_count=1)
    ours = layers.Conv(**kw).init(jax.random.key(3), x)
    theirs = nn.Conv(**kw).init(jax.random.key(3), x)
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        np.testing.assert_array_equal(a, b)
    assert isinstance(layers.Conv(**kw), nn.Conv)


def test_dncnn_same_outputs_and_grads_xla_vs_onednn(onednn):
    from denoise_jax.models.dncnn import DnCNN

    model = DnCNN(depth=3, features=8, use_bn=False)
    x = jax.random.uniform(jax.random.key(0), (2, 12, 12, 3))
    params = model.init(jax.random.key(1), x)["params"]
    # The last conv starts at zero; perturb it so its gradients reach the earlier layers.
    params = jax.tree.map(lambda p: p + 0.05, params)

    def run(impl):
        with layers.conv_impl(impl):
            return _outputs(lambda p, x: model.apply({"params": p}, x), params, x)

    for a, b in zip(jax.tree.leaves(run("onednn")), jax.tree.leaves(run("xla")), strict=True):
        _close(a, b)


def test_unsupported_cases_fall_back_to_xla(onednn):
    x = jax.random.normal(jax.random.key(0), (1, 6, 6, 4))
    cases = [
        (layers.Conv(4, (3, 3), dtype=jnp.bfloat16), x),  # bfloat16 compute
        (layers.Conv(4, (3, 3), input_dilation=(2, 2), padding=((1, 1), (1, 1))), x),
        (layers.Conv(4, (3,)), x[0]),  # 1-D convolution
    ]
    for module, inp in cases:
        params = module.init(jax.random.key(1), inp)
        with layers.conv_impl("onednn"):
            assert not _has_custom_call(module.apply, params, inp)
            y = jax.jit(module.apply)(params, inp)
        np.testing.assert_array_equal(y, jax.jit(module.apply)(params, inp))


def test_auto_and_xla_selection(onednn):
    x = jax.random.normal(jax.random.key(0), (1, 6, 6, 4))
    module = layers.Conv(4, (3, 3))
    params = module.init(jax.random.key(1), x)
    with layers.conv_impl("auto"):
        assert _has_custom_call(module.apply, params, x)
        with layers.conv_impl("xla"):
            assert layers.get_conv_impl() == "xla"
            assert not _has_custom_call(module.apply, params, x)
        assert layers.get_conv_impl() == "auto"
    with pytest.raises(ValueError, match="conv impl"):
        layers.set_conv_impl("cudnn")


def test_fallback_when_library_absent(monkeypatch, tmp_path):
    monkeypatch.setattr(build, "LIBRARY", tmp_path / "missing.so")
    assert "not built" in conv._try_load()

    monkeypatch.setattr(conv, "_state", {"error": "library not built (simulated)"})
    assert not conv.available()
    assert conv.unavailable_reason() == "library not built (simulated)"
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    module = layers.Conv(4, (3, 3))
    params = module.init(jax.random.key(1), x)
    with layers.conv_impl("onednn"):
        assert not _has_custom_call(module.apply, params, x)
        y = jax.jit(module.apply)(params, x)
        grads = jax.grad(lambda p: jnp.sum(module.apply(p, x) ** 2))(params)
    with layers.conv_impl("xla"):
        np.testing.assert_array_equal(y, jax.jit(module.apply)(params, x))
        ref = jax.grad(lambda p: jnp.sum(module.apply(p, x) ** 2))(params)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)


def test_build_is_idempotent(onednn, capsys):
    assert build.main([]) == 0  # builds only if the library is stale
    assert build.main([]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "up to date" in lines[1]


_SHARDED_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    from denoise_jax.models import layers
    from denoise_jax.models.dncnn import DnCNN
    from denoise_jax.ops import conv

    assert jax.device_count() == 4 and conv.available(), conv.unavailable_reason()
    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    batch, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    model = DnCNN(depth=3, features=8, use_bn=False)
    x = jax.random.uniform(jax.random.key(0), (8, 12, 12, 3))
    params = jax.tree.map(lambda p: p + 0.05, model.init(jax.random.key(1), x)["params"])

    def loss(p, x):
        return jnp.mean((model.apply({"params": p}, x) - 0.5) ** 2)

    def run(impl):
        with layers.conv_impl(impl):
            step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)),
                           out_shardings=(replicated, (replicated, batch)))
            args = jax.device_put(params, replicated), jax.device_put(x, batch)
            hlo = step.lower(*args).compile().as_text()
            return step(*args), hlo

    (ref, _), (out, hlo) = run("xla"), run("onednn")
    assert "dj_onednn_bwd_weights" in hlo, "custom calls missing"
    assert "all-gather" not in hlo, "the batch was gathered instead of kept sharded"
    # each device convolves its own quarter of the batch
    assert "f32[2,12,12,3]" in hlo
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(np.abs(b).max()))
    assert out[1][1].sharding.spec == P("data")
    print("SHARDED-OK")
""")


def test_four_devices_batch_sharded(onednn):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=300)
    assert "SHARDED-OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
