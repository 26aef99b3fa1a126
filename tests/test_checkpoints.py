"""Checkpoints: what is kept, fallback past damage, config.json, runs as evaluation methods."""

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from denoise_jax import checkpoints, evaluate, methods, optim, train
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
    mngr.close()
    step, state, data_state = checkpoints.restore(str(tmp_path), _tree(0))
    assert step == 8 and data_state == {"next_index": 8}
    assert float(state["params"]["w"][0, 0]) == 8.0
    assert checkpoints.restore(str(tmp_path), best=True, data_iter=False)[0] == 2


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garble":
        path.write_bytes(bytes(255 - b for b in data))
    else:
        path.unlink()


def _largest_file(folder):
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


# Each kind of file of a checkpoint, damaged as a failing disk or an interrupted copy leaves it.
DAMAGE = {
    "array data": (lambda c: _largest_file(c / "state" / "d"), "truncate"),
    "array metadata": (lambda c: c / "state" / "_METADATA", "garble"),
    "array manifest": (lambda c: c / "state" / "manifest.ocdbt", "delete"),
    "step metadata": (lambda c: c / "_CHECKPOINT_METADATA", "truncate"),
    "metrics": (lambda c: c / "metrics" / "metrics", "truncate"),
    "data iterator": (lambda c: c / "data_iter" / "metadata", "garble"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_file_of_the_newest_checkpoint_falls_back_to_the_previous(
        tmp_path, capsys, kind):
    mngr = checkpoints.manager(str(tmp_path), keep=3)
    _save_all(mngr, {1: 30.0, 2: 31.0})
    mngr.close()
    newest = tmp_path / "checkpoints" / "2"
    which, how = DAMAGE[kind]
    _damage(which(newest), how)

    # Evaluation is read-only: it skips the damage with one line and moves nothing. It
    # reads no pipeline position, so damage there is none of its business.
    step, state, _ = checkpoints.restore(str(tmp_path), data_iter=False, set_aside=False,
                                         best=True)
    fallback = 2 if kind == "data iterator" else 1
    assert step == fallback and float(state["params"]["w"][0, 0]) == fallback
    err = capsys.readouterr().err.strip().splitlines()
    if fallback == 1:
        assert len(err) == 1 and "checkpoints/2 cannot be restored" in err[0], err
        assert err[0].endswith("using step 1 (left in place)")
    assert newest.is_dir() and not (tmp_path / "checkpoints_damaged").exists()

    # Training sets it aside and resumes from the previous one, which orbax then lists.
    step, state, data_state = checkpoints.restore(str(tmp_path), _tree(0))
    assert step == 1 and data_state == {"next_index": 1}
    assert float(state["params"]["w"][0, 0]) == 1.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoints/2 cannot be restored" in err[0], err
    assert "moved it to" in err[0] and err[0].endswith("resuming from step 1")
    assert not newest.exists() and len(os.listdir(tmp_path / "checkpoints_damaged")) == 1
    mngr = checkpoints.manager(str(tmp_path), keep=3)
    assert mngr.all_steps() == [1]
    _save_all(mngr, {2: None})  # the step can be written again
    mngr.close()


def test_damaged_metrics_of_an_older_checkpoint_are_set_aside_too(tmp_path, capsys):
    mngr = checkpoints.manager(str(tmp_path), keep=3)
    _save_all(mngr, {1: 30.0, 2: None})
    mngr.close()
    _damage(tmp_path / "checkpoints" / "1" / "metrics" / "metrics", "garble")
    assert checkpoints.restore(str(tmp_path), _tree(0))[0] == 2
    assert "checkpoints/1 cannot be restored" in capsys.readouterr().err
    mngr = checkpoints.manager(str(tmp_path))  # orbax would fail to start on it
    assert mngr.all_steps() == [2]
    mngr.close()


def test_a_changed_model_is_an_error_not_a_silent_restart(tmp_path):
    mngr = checkpoints.manager(str(tmp_path))
    _save_all(mngr, {1: None, 2: None})
    mngr.close()
    wider = _tree(0)
    wider["params"]["w"] = jnp.zeros((4, 3))
    with pytest.raises(UserError, match="none of the 2 checkpoints .* new --workdir"):
        checkpoints.restore(str(tmp_path), wider)
    assert checkpoints.steps(str(tmp_path)) == [2, 1]  # nothing moved aside


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(
        tmp_path, full_disk, monkeypatch):
    mngr = checkpoints.manager(str(tmp_path), keep=1)
    _save_all(mngr, {1: None})
    # A disk without room for another checkpoint: refused before anything is written.
    with monkeypatch.context() as m:
        m.setattr(checkpoints.shutil, "disk_usage",
                  lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
        with pytest.raises(UserError, match=r"the disk is full \(0.0 MB free, a checkpoint "):
            checkpoints.save(mngr, 2, _tree(2), {"next_index": 2})
    assert os.listdir(tmp_path / "checkpoints") == ["1"]

    # A disk that fills up during the save.
    full_disk(os.sep + "2" + ".orbax-checkpoint-tmp")
    with pytest.raises(UserError) as info:
        checkpoints.save(mngr, 2, _tree(2), {"next_index": 2})
        checkpoints.finish(mngr)  # the failure may only surface when the save is awaited
    checkpoints.close_quietly(mngr)
    message = str(info.value)
    assert "\n" not in message and f"cannot save a checkpoint in {tmp_path}" in message
    assert "the disk is full" in message and "(step 1) is intact" in message
    assert "free some space" in message and "re-run the same command" in message
    # Step 2's half-written folder is removed (some of orbax's writers may outlive the
    # save and recreate it; the next run removes that too); it is never taken for step 2.
    assert checkpoints.steps(str(tmp_path)) == [1]
    assert checkpoints.restore(str(tmp_path), _tree(0))[0] == 1


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
    model, _ = methods.build_model(config)
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
    best = methods.load_method(str(workdir))
    assert best.step == 1 and best.blind
    # All-zero EMA weights predict zero noise: the input comes back.
    np.testing.assert_allclose(best(image, None), image, atol=1e-6)
    latest = methods.load_method(str(workdir), "latest")
    assert latest.step == 2
    out = latest(image[:9, :7], None)  # any size; compiled per shape
    assert out.shape == (9, 7, 3) and out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out, image[:9, :7], atol=1e-3)


def test_loading_a_run_skips_a_damaged_checkpoint_read_only(workdir, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    _damage(copy / "checkpoints" / "2" / "state" / "_METADATA", "truncate")
    assert methods.load_method(str(copy), "latest").step == 1
    err = capsys.readouterr().err
    assert "checkpoints/2 cannot be restored" in err and "using step 1 (left in place)" in err
    assert checkpoints.steps(str(copy)) == [2, 1]  # nothing moved: it may be training
    _damage(copy / "checkpoints" / "1" / "state" / "_METADATA", "delete")
    with pytest.raises(UserError, match="none of the 2 checkpoints"):
        methods.load_method(str(copy))


def test_workdirs_resolve_as_method_names(workdir, tmp_path):
    assert evaluate.resolve_method(f"{workdir}@latest").step == 2
    with pytest.raises(UserError, match="unknown method"):
        evaluate.resolve_method(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text(json.dumps(_config().to_dict()))
    with pytest.raises(UserError, match="no checkpoints yet"):
        evaluate.resolve_method(str(tmp_path))
    with pytest.raises(UserError, match="'best' or 'latest'"):
        methods.load_method(str(workdir), "newest")
