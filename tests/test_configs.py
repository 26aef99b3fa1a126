"""The one config loader and its `:ARG` parser; every experiment's `:tiny` builds its model."""

import jax
import numpy as np
import pytest

from denoise_jax import configs, methods
from denoise_jax.errors import UserError


@pytest.mark.parametrize("spec", configs.smoke_specs(), ids=lambda s: s.rsplit("/", 1)[-1])
def test_every_experiment_loads_tiny_and_builds_its_model(spec):
    config = configs.load(spec)
    assert config.num_steps <= 10 and config.data.batch <= 8  # tiny really is tiny
    model, _ = methods.build_model(config)
    shape = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                              np.zeros((1, 32, 32, 3), np.float32)))
    assert jax.tree.leaves(shape)


def test_load_takes_bare_names_paths_and_overrides():
    by_name = configs.load("skimage_gauss:tiny", {"optimizer.lr": 0.5})
    by_path = configs.load(str(configs.EXPERIMENTS / "skimage_gauss.py:tiny"),
                           ["optimizer.lr=0.5", "num_steps=3"])
    assert by_name.optimizer.lr == by_path.optimizer.lr == 0.5 and by_path.num_steps == 3
    with pytest.raises(UserError, match="no such config field: optimizer.nope"):
        configs.load("skimage_gauss:tiny", {"optimizer.nope": 1})
    with pytest.raises(UserError, match="nope.py"):
        configs.load("nope:tiny")


def test_parse_arg_reads_variant_flags_and_values():
    arg = configs.parse_arg("b,tiny,x,n=3", "exp", variants=("a", "b"), default="a",
                            flags=("x",), keys=("n",))
    assert (arg.variant, arg.flags, arg.values, arg.tiny) == ("b", {"tiny", "x"}, {"n": "3"}, True)
    assert configs.parse_arg(None, "exp", variants=("a",), default="a").variant == "a"
    with pytest.raises(ValueError, match="exp: unknown arg 'y'"):
        configs.parse_arg("y", "exp", flags=("x",))
    with pytest.raises(ValueError, match="one of a, b first"):
        configs.parse_arg("tiny", "exp", variants=("a", "b"))
