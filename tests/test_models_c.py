"""DRUNet, FFDNet and NAFNet's attention options: sizes, identity start, tile consistency.

Sizes come from `summary.summarize` (shapes only). Forward checks run tiny widths with
variables filled from numpy (compiling the real initialisers is the slow part on CPU).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from denoise_jax import models
from denoise_jax.errors import UserError
from denoise_jax.models import summary
from denoise_jax.models.layers import depth_to_space, space_to_depth
from denoise_jax.models.nafnet import local_mean


def random_variables(model, shape: tuple[int, ...], scale: float = 1.0, seed: int = 0) -> dict:
    """The model's variable tree with every leaf N(0, scale²/fan-in)-ish random (nothing zero,
    so no branch starts switched off)."""
    abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x),
                              jax.ShapeDtypeStruct(shape, jnp.float32))
    rng = np.random.default_rng(seed)

    def fill(leaf):
        fan_in = max(1, int(np.prod(leaf.shape[:-1]))) if leaf.ndim > 1 else 1
        return jnp.asarray(rng.normal(0, scale / np.sqrt(fan_in), leaf.shape), leaf.dtype)

    return jax.tree.map(fill, abstract)


def param_names(variables: dict) -> set[str]:
    return {"/".join(str(k.key) for k in path)
            for path, _ in jax.tree_util.tree_flatten_with_path(variables["params"])[0]}


# --- pixel (un)shuffle ---------------------------------------------------------------------

def test_space_to_depth_order_and_inverse():
    x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
    y = space_to_depth(x, 2)
    assert y.shape == (2, 2, 3, 12)
    # Channel (i·2 + j)·C + c holds sub-pixel (i, j) of channel c.
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(y[:, :, :, (i * 2 + j) * 3:(i * 2 + j + 1) * 3],
                                          x[:, i::2, j::2, :])
    np.testing.assert_array_equal(depth_to_space(y, 2), x)


# --- DRUNet --------------------------------------------------------------------------------

def test_drunet_kair_size_and_pilot_default():
    kair = summary.summarize("drunet", (1, 64, 64, 3), features=(64, 128, 256, 512), blocks=4)
    assert kair["params"] == 32_640_384  # KAIR's DRUNet without its noise-map channel: 32.6M
    pilot = summary.summarize("drunet", (1, 256, 256, 3))
    assert pilot["params"] == 4_253_376 and abs(pilot["gmacs"] - 17.83) < 0.01


def test_drunet_sampling_options_have_equal_parameters_and_macs():
    infos = [summary.summarize("drunet", (1, 32, 32, 3), features=(4, 8, 16), down=d, up=u)
             for d in ("conv", "unshuffle") for u in ("shuffle", "transpose")]
    assert len({(i["params"], i["gmacs"]) for i in infos}) == 1


def test_drunet_is_bias_free_and_starts_as_identity():
    model = models.get_model("drunet", features=(4, 8), blocks=1)
    x = jax.random.uniform(jax.random.key(1), (1, 13, 10, 3))
    variables = model.init(jax.random.key(0), x)
    assert not any("bias" in name for name in param_names(variables))
    np.testing.assert_array_equal(model.apply(variables, x), x)


def test_drunet_noise_map_is_an_extra_input_channel():
    model = models.get_model("drunet", features=(4, 8), blocks=1, noise_map=True)
    x = jax.random.uniform(jax.random.key(1), (1, 12, 12, 3))
    variables = random_variables(model, (1, 12, 12, 4))
    outs = [model.apply(variables, jnp.concatenate([x, jnp.full((1, 12, 12, 1), s)], -1))
            for s in (0.05, 0.2)]
    assert outs[0].shape == x.shape
    assert float(jnp.abs(outs[0] - outs[1]).max()) > 1e-3


def test_drunet_rejects_unknown_sampling():
    with pytest.raises(UserError, match="down must be one of"):
        models.get_model("drunet", up="bilinear").init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


# --- FFDNet --------------------------------------------------------------------------------

def test_ffdnet_colour_size_matches_the_paper():
    info = summary.summarize("ffdnet", (1, 256, 256, 3))
    assert info["params"] == 851_244  # the paper's colour FFDNet: 0.85M
    # Every conv runs at quarter resolution: 12 × 96 costs 13.9 GMACs at 256².
    assert abs(info["gmacs"] - 13.93) < 0.01


def test_ffdnet_starts_as_identity_and_keeps_odd_sizes():
    model = models.get_model("ffdnet", depth=3, features=8)
    x = jax.random.uniform(jax.random.key(1), (2, 9, 7, 3))
    variables = model.init(jax.random.key(0), x)
    assert set(variables) == {"params"}
    np.testing.assert_array_equal(model.apply(variables, x), x)


# --- NAFNet attention ----------------------------------------------------------------------

def test_local_mean_averages_blocks_then_the_window_inside_the_image():
    y = np.random.default_rng(0).random((1, 8, 12, 2), dtype=np.float32)
    out = np.asarray(local_mean(jnp.asarray(y), cell=2, cells=3))
    grid = y.reshape(1, 4, 2, 6, 2, 2).mean(axis=(2, 4))
    assert out.shape == (1, 4, 6, 2)
    np.testing.assert_allclose(out[0, 1, 1], grid[0, 0:3, 0:3].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(out[0, 0, 5], grid[0, 0:2, 4:6].mean(axis=(0, 1)), rtol=1e-5)


@pytest.mark.parametrize("cell,cells", [(2, 3), (1, 4), (4, 5)])
def test_local_mean_is_the_same_by_matrices_and_by_one_window_per_axis(cell, cells, monkeypatch):
    from denoise_jax.models import nafnet

    y = jnp.asarray(np.random.default_rng(1).random((2, 16, 24, 3), dtype=np.float32))
    loss = lambda y: jnp.sum(jnp.sin(nafnet.local_mean(y, cell, cells)))  # noqa: E731
    by_matrices = nafnet.local_mean(y, cell, cells), jax.grad(loss)(y)
    monkeypatch.setattr(nafnet, "MATRIX_CELLS", 0)  # as for a whole photo, untiled
    by_windows = nafnet.local_mean(y, cell, cells), jax.grad(loss)(y)
    for a, b in zip(by_matrices, by_windows, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_nafnet_options_keep_the_shipped_parameter_names():
    x = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)

    def names(**kwargs):
        model = models.get_model("nafnet_tiny", width=4, **kwargs)
        return param_names(jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x))

    default = names()
    assert "enc0_0/sca/kernel" in default
    assert names(attention="local") == default  # a global checkpoint loads into local
    assert names(attention="none") == {n for n in default if "/sca/" not in n}
    with pytest.raises(UserError, match="attention must be one of"):
        models.get_model("nafnet_tiny", attention="tlc")


@pytest.mark.parametrize("attention", ["local", "none", "global"])
def test_nafnet_small_tile_equals_whole_image_away_from_borders(attention):
    """A crop (aligned to the 4-pixel grid of 2 levels) denoised alone gives the whole image's
    output away from its borders, unless the attention pools over the whole input."""
    model = models.get_model("nafnet_small", width=4, enc_blk_nums=(1, 1), middle_blk_num=1,
                             dec_blk_nums=(1, 1), window=8, attention=attention)
    # Noise on a ramp, so the tile's mean differs from the whole image's.
    ramp = jnp.broadcast_to(jnp.linspace(0, 1, 112)[None, :, None, None], (1, 112, 112, 3))
    image = 0.5 * jax.random.uniform(jax.random.key(2), (1, 112, 112, 3)) + 0.5 * ramp
    # beta and gamma random too: every block contributes.
    variables = random_variables(model, image.shape, scale=0.5)
    apply = jax.jit(lambda x: model.apply(variables, x))
    whole = apply(image)[:, 16:96, 24:104]
    tile = apply(image[:, 16:96, 24:104])
    gap = float(jnp.abs(whole - tile)[:, 32:-32, 32:-32].max())
    # Outputs are ~1; measured gaps: local and none 0, global 3e-4.
    if attention == "global":
        assert gap > 1e-4
    else:
        assert gap < 1e-6, gap
