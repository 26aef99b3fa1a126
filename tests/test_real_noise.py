"""Real noisy/clean pairs in training, `data.name`, the real-noise comparison and experiments.

The must-show flow runs end to end on a generated fixture folder:
`denoise-jax data build paired_folder --manual-dir DIR`, then
`denoise-jax train --config experiments/realnoise_nafnet.py:tiny --config.data.name=paired_folder`.
Training runs go through the real command in subprocesses, two at a time, with XLA's
optimiser off (tiny models: compiling dominates); the pipeline checks run in-process.
"""

import json
import os
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from denoise_jax import configs, data, optim, train
from denoise_jax.data import build, fixtures, pipeline, tfds_builders, tfds_load
from denoise_jax.errors import UserError
from denoise_jax.images import read_image

# ml_collections loads config files with the deprecated `load_module()`.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_PAIRS = 6
SHORT = ("--config.num_steps=2", "--config.checkpoint_every=2", "--config.eval_every=2",
         "--config.sample_every=0")


def _config(experiment: str, arg: str | None = None, **overrides) -> ConfigDict:
    path = os.path.join(ROOT, "experiments", experiment)
    return configs.load(f"{path}:{arg}" if arg else path, overrides)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(pairs folder, tfds data dir) after `denoise-jax data build paired_folder`."""
    root = tmp_path_factory.mktemp("real")
    pairs = fixtures.make_pairs(str(root / "pairs"), N_PAIRS)
    data_dir = str(root / "tfds")
    assert build.main(["build", "paired_folder", "--manual-dir", pairs,
                       "--data-dir", data_dir]) == 0
    return pairs, data_dir


@pytest.fixture(scope="module")
def runs(built, tmp_path_factory):
    """Every training run of this file, launched together (two at a time): name -> result."""
    _, data_dir = built
    root = tmp_path_factory.mktemp("runs")
    env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               XLA_FLAGS="--xla_backend_optimization_level=0")
    no_eval = "--config.eval_every=0"  # the big models' evaluation compiles are not needed
    jobs = {  # slowest first
        "pridnet": ("realnoise_pridnet.py:tiny", *SHORT, no_eval),
        # The must-show flow; the data folder comes from $TFDS_DATA_DIR.
        "nafnet_pairs": ("realnoise_nafnet.py:tiny", "--config.data.name=paired_folder", *SHORT),
        "mwcnn": ("realnoise_mwcnn.py:tiny", *SHORT, no_eval),
        "rednet": ("realnoise_rednet.py:tiny", *SHORT),
        # lr 0: the validation PSNR cannot improve, so patience 1 stops at the 2nd evaluation.
        "early": ("realnoise_rednet.py:tiny", "--config.optimizer.lr=0", "--config.eval_every=1",
                  "--config.early_stop_patience=1", "--config.num_steps=6",
                  "--config.sample_every=0"),
    }
    results, running, waiting = {}, {}, list(jobs.items())

    def start(args, workdir, log):
        command = [sys.executable, "-m", "denoise_jax", "train", "--config",
                   f"experiments/{args[0]}", "--workdir", str(workdir), *args[1:]]
        with open(log, "w") as out:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def finish(proc, log) -> str:
        proc.wait(timeout=240)
        out = log.read_text()
        assert proc.returncode == 0, f"{log.stem}:\n{out[-3000:]}"
        return out

    deadline = time.monotonic() + 300
    while waiting or running:
        while waiting and len(running) < 2:
            name, args = waiting.pop(0)
            running[name] = start(args, root / name, root / f"{name}.log")
        done = [name for name, proc in running.items() if proc.poll() is not None]
        for name in done:
            out = finish(running.pop(name), root / f"{name}.log")
            results[name] = {"workdir": root / name, "out": out}
        assert time.monotonic() < deadline, f"training runs still going: {list(running)}"
        time.sleep(0.2)
    # Re-running an early-stopped run stops at once instead of training on.
    proc = start(jobs["early"], root / "early", root / "rerun.log")
    results["early"]["rerun"] = finish(proc, root / "rerun.log")
    return results


def _saved(workdir) -> dict:
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def _steps(workdir) -> list[int]:
    return sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())


# ---------------------------------------------------------------------------------------------
# The must-show flow and the experiments (subprocess runs).


def test_paired_folder_build_then_train_with_data_name(runs, built):
    _, data_dir = built
    workdir = runs["nafnet_pairs"]["workdir"]
    saved = _saved(workdir)
    assert saved["data"]["train"] == f"tfds:paired_folder:train@{data_dir}"
    assert saved["eval"]["data"] == f"tfds:paired_folder:test@{data_dir}"
    assert saved["noise"] == "real" and saved["eval"]["noise"] == "real"
    assert _steps(workdir) == [2]
    assert "val PSNR" in runs["nafnet_pairs"]["out"]


@pytest.mark.parametrize("name,model", [("rednet", "rednet"), ("mwcnn", "mwcnn_realnoise"),
                                        ("pridnet", "pridnet_realnoise")])
def test_realnoise_tiny_trains_with_camera_noise_recorded(runs, name, model):
    workdir = runs[name]["workdir"]
    saved = _saved(workdir)
    assert saved["model"]["name"] == model
    assert saved["noise"] == "camera" and saved["eval"]["noise"] == "camera"
    assert saved["data"]["train"] == "skimage:train:rgb"
    assert saved["data"]["resize"] == 32 and saved["data"]["patch"] is None
    assert saved["optimizer"]["schedule"] == "plateau" and saved["early_stop_patience"] == 10
    assert _steps(workdir) == [2]


def test_early_stopping_stops_and_a_rerun_does_not_train_on(runs):
    run = runs["early"]
    with open(os.path.join(run["workdir"], train.EARLY_STOPPED), encoding="utf-8") as f:
        record = json.load(f)
    assert record["step"] == 2 and record["patience"] == 1
    assert "stopping early" in run["out"]
    assert _steps(run["workdir"])[-1] == 2  # saved where it stopped, not at step 6
    assert "stopped early at step 2" in run["rerun"] and "resuming" in run["rerun"]


# ---------------------------------------------------------------------------------------------
# The pipeline (in-process).


def _dihedral(image: np.ndarray) -> list[np.ndarray]:
    flips = (image, np.flip(image, axis=1))
    return [np.rot90(x, k, axes=(0, 1)) for x in flips for k in range(4)]


def _find(patch_clean: np.ndarray, patch_noisy: np.ndarray, pairs: list) -> bool:
    """Whether both patches are the same window of one fixture pair (same transform)."""
    p = patch_clean.shape[0]
    for clean, noisy in pairs:
        for c, n in zip(_dihedral(clean), _dihedral(noisy), strict=True):
            if c.shape[0] < p or c.shape[1] < p:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(c, (p, p), axis=(0, 1))
            hits = np.argwhere((windows == patch_clean.transpose(2, 0, 1)).all(axis=(2, 3, 4)))
            for top, left in hits:
                if np.array_equal(n[top:top + p, left:left + p], patch_noisy):
                    return True
    return False


def test_pair_batches_are_aligned_crops_of_the_fixture_pairs(built):
    pairs_dir, data_dir = built
    config = pipeline.resolve(_config("realnoise_nafnet.py", "tiny", **{
        "data.name": "paired_folder", "data.data_dir": data_dir}))
    source = pipeline.training_source(config.data.train)
    assert len(source) == tfds_load.built_counts("paired_folder", data_dir).counts["train"]
    it = pipeline.batches(source, batch=4, patch=config.data.patch, augment=True, seed=0,
                          shard=(0, 1), num_threads=1, prefetch=1)
    fixture = [(read_image(os.path.join(pairs_dir, "clean", f)).pixels,
                read_image(os.path.join(pairs_dir, "noisy", f)).pixels)
               for f in sorted(os.listdir(os.path.join(pairs_dir, "clean")))]
    assert set(pipeline.PAIR_SETS) == set(tfds_builders.BUILDERS)  # every buildable set is pairs
    small = pipeline.resized(source, 24)[0]
    assert small.clean.shape == small.noisy.shape == (24, 24, 3)
    assert not np.array_equal(small.clean, small.noisy)
    for _ in range(2):
        batch = next(it)
        assert batch["noisy"].shape == batch["clean"].shape == (4, 16, 16, 3)
        for clean, noisy in zip(batch["clean"], batch["noisy"], strict=True):
            assert np.abs(noisy - clean).mean() > 0.02  # real noise, not a copy
            assert _find(clean, noisy, fixture)


class _Pointwise(nn.Module):
    """A 1×1 conv with the models' call signature."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Conv(3, (1, 1))(x)


def test_train_step_uses_the_batch_noisy_images_not_synthetic_noise():
    model = _Pointwise()
    tx = optax.sgd(0.1)
    state = train.create_state(jax.random.key(0), model, tx, (8, 8, 3), ema=False)
    clean = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
    noisy = jnp.clip(clean + 0.1 * jax.random.normal(jax.random.key(2), clean.shape), 0, 1)

    def no_synthetic_noise(key, x):
        raise AssertionError("noise must not be drawn for real pairs")

    step = dict(model=model, tx=tx, loss_fn=optim.loss_fn("mse"), from_logits=False,
                ema_decay=None, lr_fn=lambda s, o: jnp.float32(0.1), plateau=False)
    _, got = train.train_step(jax.random.key(3), state, {"clean": clean, "noisy": noisy},
                              noise_model=no_synthetic_noise, **step)
    want = jnp.mean((model.apply({"params": state.params}, noisy) - clean) ** 2)
    np.testing.assert_allclose(got["loss"], want, rtol=1e-6)


def test_realnoise_protocol_resizes_whole_images_to_256():
    config = pipeline.resolve(_config("realnoise_rednet.py"))
    assert config.data.resize == 256 and not config.data.patch and config.noise == "camera"
    source = pipeline.training_source(config.data.train, resize=config.data.resize)
    assert pipeline.check_shapes(source, config.data.patch) == (256, 256, 3)
    batch = next(pipeline.batches(source, batch=4, patch=None, augment=True, seed=0,
                                  shard=(0, 1), num_threads=1, prefetch=1))
    assert batch["clean"].shape == (4, 256, 256, 3) and "noisy" not in batch
    # Whole images: the resized photo itself, up to a flip/rotation.
    whole = [source[i].clean for i in range(len(source))]
    assert any(np.array_equal(batch["clean"][0], t) for img in whole for t in _dihedral(img))


def test_realnoise_spec_reads_the_241_61_split_as_resized_real_pairs(tmp_path):
    sidd = fixtures.make_sidd(str(tmp_path / "sidd"), with_mat=False)
    renoir = fixtures.make_renoir(str(tmp_path / "renoir"))
    nind = fixtures.make_nind(str(tmp_path / "nind"))
    config = pipeline.resolve(_config("realnoise_rednet.py", None, **{
        "data.name": "realnoise", "data.sidd_dir": sidd, "data.renoir_dir": renoir,
        "data.nind_dir": nind}))
    assert config.noise == "real" and config.eval.noise == "real"
    train_set = pipeline.training_source(config.data.train, resize=config.data.resize)
    test_set = pipeline.training_source(config.eval.data, resize=config.eval.resize)
    assert not set(train_set.names) & set(test_set.names)
    example = test_set[0]
    assert example.clean.shape == example.noisy.shape == (256, 256, 3)
    assert np.abs(example.noisy - example.clean).mean() > 0.01


def test_data_name_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="denoise-jax data build paired_folder"):
        pipeline.resolve(_config("realnoise_nafnet.py", "tiny", **{
            "data.name": "paired_folder", "data.data_dir": str(tmp_path)}))
    with pytest.raises(UserError, match="sidd_dir"):
        pipeline.resolve(_config("realnoise_rednet.py", "tiny", **{"data.name": "realnoise"}))
    config = pipeline.resolve(_config("realnoise_nafnet.py", "tiny", **{
        "data.train": f"pairs:{tmp_path}", "eval.data": "skimage:test:rgb"}))
    assert config.noise == "real" and config.eval.noise == "camera"
    clean_only = _config("realnoise_nafnet.py", "tiny", noise="real")
    with pytest.raises(UserError, match="clean images only"):
        train.train_and_evaluate(clean_only, str(tmp_path / "w"))


def test_channel_permutation_moves_a_pair_together():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(12, 12, 3)).astype(np.float32)
    noisy = clean + 0.1
    ds = data.Dataset.from_examples("p", "one pair", [data.Example("a", clean, noisy)])
    it = pipeline.batches(ds, batch=32, patch=12, augment=False, seed=0, shard=(0, 1),
                          permute_channels=True)
    batch = next(it)
    np.testing.assert_allclose(batch["noisy"], batch["clean"] + 0.1, atol=1e-6)
    means = {tuple(np.round(b.mean(axis=(0, 1)), 5)) for b in batch["clean"]}
    assert len(means) > 1  # several orders were drawn
    for b in batch["clean"]:  # each one a permutation of the same three channels
        assert sorted(np.round(b.mean(axis=(0, 1)), 5)) == sorted(np.round(clean.mean(axis=(0, 1)),
                                                                           5))
