"""Checkpoints: what is kept, fallback past damage, config.json, runs as evaluation methods."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from denoise_jax import checkpoints, evaluate, optim, train
from denoise_jax.errors import UserError

# A restore that orbax rejects (shape mismatch) leaves one of its read coroutines
# un-awaited; Python reports it later, from whichever test is running, as unraisable.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _tree(value: float) -> dict:
    return {"step": jnp.int32(value), "params": {"w": jnp.full((2, 3), value, jnp.float32)},
            "batch_stats": {}, "ema_params": None}


def _save_all(mngr, psnr_by_step: dict) -> None:
    for step, psnr in psnr_by_step.items():
        checkpoints.save(mngr, step, _tree(step), {"next_index": step}, psnr)
    mngr.wait_until_finished()


def test_keeps_the_newest_and_the_best(tmp_path):
    mngr = checkpoints.manager(str(tmp_path), keep=2)
    _save_all(mngr, {1: None, 2: 30.0, 3: None, 4: 25.0, 5: None, 6: None})
    assert mngr.all_steps() == [2, 5, 6]
    mngr.close()
    mngr = checkpoints.manager(str(tmp_path), keep=2)  # a later run: the best survives
    _save_all(mngr, {7: 29.0, 8: None})
    assert mngr.all_steps() == [2, 7, 8] and mngr.best_step() == 2
    step, state, data_state = checkpoints.restore(mngr, _tree(0))
    assert step == 8 and data_state == {"next_index": 8}
    assert float(state["params"]["w"][0, 0]) == 8.0
    mngr.close()


@pytest.mark.parametrize("damage", ["remove_state", "garble_files"])
def test_restore_falls_back_past_a_damaged_checkpoint(tmp_path, capsys, damage):
    mngr = checkpoints.manager(str(tmp_path), keep=3)
    _save_all(mngr, {1: None, 2: None})
    state_dir = tmp_path / "checkpoints" / "2" / "state"
    if damage == "remove_state":
        shutil.rmtree(state_dir)
    else:
        for root, _, files in os.walk(state_dir):
            for name in files:
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    step, state, _ = checkpoints.restore(mngr, _tree(0))
    assert step == 1 and float(state["params"]["w"][0, 0]) == 1.0
    err = capsys.readouterr().err
    assert "checkpoints/2 cannot be restored" in err and "previous" in err
    assert mngr.all_steps() == [1] and os.listdir(tmp_path / "checkpoints_damaged")
    _save_all(mngr, {2: None})  # the step can be written again
    mngr.close()


def test_a_changed_model_is_an_error_not_a_silent_restart(tmp_path):
    mngr = checkpoints.manager(str(tmp_path))
    _save_all(mngr, {1: None, 2: None})
    wider = _tree(0)
    wider["params"]["w"] = jnp.zeros((4, 3))
    with pytest.raises(UserError, match="none of the 2 checkpoints .* new --workdir"):
        checkpoints.restore(mngr, wider)
    assert mngr.all_steps() == [1, 2]  # nothing moved aside
    mngr.close()


def test_config_changes_are_reported(tmp_path, capsys):
    config = ConfigDict({"seed": 0, "optimizer": {"lr": 1e-3, "name": "adam"}})
    assert checkpoints.write_config(str(tmp_path), config) == []
    config.optimizer.lr = 5e-4
    config.seed = 1
    changes = checkpoints.write_config(str(tmp_path), config)
    assert changes == ["optimizer.lr: 0.001 -> 0.0005", "seed: 0 -> 1"]
    assert "differs from the last run" in capsys.readouterr().err
    assert json.loads((tmp_path / "config.json").read_text())["optimizer"]["lr"] == 5e-4
    assert checkpoints.load_config(str(tmp_path)).seed == 1


def _config() -> ConfigDict:
    return ConfigDict(dict(seed=0, model=dict(name="dncnn", depth=3, features=4), loss="mse",
                           noise="gaussian:25", ema=0.9,
                           optimizer=dict(name="adam", lr=1e-3, schedule="constant")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A workdir with two checkpoints: step 1 (EMA weights zero, best PSNR) and step 2."""
    workdir = tmp_path_factory.mktemp("run")
    config = _config()
    model, _ = train.build_model(config)
    tx = optim.make_optimizer(config.optimizer, 10)
    state = train.make_init(config, model, tx, (8, 8, 3), train.make_mesh())(
        jax.random.PRNGKey(0))
    checkpoints.write_config(str(workdir), config)
    mngr = checkpoints.manager(str(workdir))
    # DnCNN starts as the identity; shifted EMA weights make step 2 a real (non-identity) net.
    state = state.replace(ema_params=jax.tree.map(lambda p: p + 0.1, state.ema_params))
    zero_ema = state.replace(ema_params=jax.tree.map(jnp.zeros_like, state.ema_params))
    checkpoints.save(mngr, 1, zero_ema, {}, val_psnr=30.0)
    checkpoints.save(mngr, 2, state, {}, val_psnr=20.0)
    mngr.wait_until_finished()
    mngr.close()
    return workdir


def test_load_method_uses_ema_weights_of_the_best_or_latest_step(workdir):
    image = np.random.default_rng(0).random((12, 20, 3), dtype=np.float32)
    best = checkpoints.load_method(str(workdir))
    assert best.step == 1 and best.blind
    # All-zero EMA weights predict zero noise: the input comes back.
    np.testing.assert_allclose(best(image, None), image, atol=1e-6)
    latest = checkpoints.load_method(str(workdir), "latest")
    assert latest.step == 2
    out = latest(image[:9, :7], None)  # any size; compiled per shape
    assert out.shape == (9, 7, 3) and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, image[:9, :7], atol=1e-3)


def test_workdirs_resolve_as_method_names(workdir, tmp_path):
    assert evaluate.resolve_method(f"{workdir}@latest").step == 2
    with pytest.raises(UserError, match="unknown method"):
        evaluate.resolve_method(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text(json.dumps(_config().to_dict()))
    with pytest.raises(UserError, match="no checkpoints yet"):
        evaluate.resolve_method(str(tmp_path))
    with pytest.raises(UserError, match="'best' or 'latest'"):
        checkpoints.load_method(str(workdir), "newest")
