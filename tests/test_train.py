"""The training engine: the real loop on `:tiny` configs, resume, kill-and-resume, NaN stop;
SIGTERM / Ctrl-C, one run per workdir, a full disk, time-based checkpoints, warm starts.

Training runs go through the real command (`python -m denoise_jax train ...`) in
subprocesses that share one persistent JAX compilation cache, so each program compiles
once per session. The first three runs start together (the machine has 2 cores).
"""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from denoise_jax import methods, optim, ship, train, train_cmd, writers
from denoise_jax.data import pipeline
from denoise_jax.errors import UserError

# ml_collections loads config files with the deprecated `load_module()`.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = ("mnist_dae", "mnist_dae_conv", "skimage_gauss")
# Long enough (with an evaluation and a sample figure every 4 steps) that a SIGKILL sent
# when checkpoint 4 appears lands mid-run.
KILL_RUN = ("--config.num_steps=24", "--config.eval_every=4", "--config.sample_every=4",
            "--config.checkpoint_every=4", "--config.log_every=2")


def _env(cache) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]))
    return env


def _command(experiment: str, workdir, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "denoise_jax", "train", "--config",
            f"experiments/{experiment}.py:tiny", "--workdir", str(workdir), *overrides]


def _run(cache, experiment, workdir, *overrides, expect=0) -> subprocess.CompletedProcess:
    proc = subprocess.run(_command(experiment, workdir, *overrides), cwd=ROOT, env=_env(cache),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == expect, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _state(workdir, step: int) -> dict:
    import orbax.checkpoint as ocp

    return ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step),
                                                           "state"))


def _steps(workdir) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cache):
    """Each experiment's `:tiny` run, started together; skimage_gauss is the kill reference."""
    root = tmp_path_factory.mktemp("runs")
    procs = {}
    for name in EXPERIMENTS:
        extra = KILL_RUN if name == "skimage_gauss" else ()
        procs[name] = subprocess.Popen(
            _command(name, root / name, *extra), cwd=ROOT, env=_env(cache),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}:\n{out[-2000:]}\n{err[-3000:]}"
    return {name: root / name for name in EXPERIMENTS}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_tiny_run_writes_checkpoints_logs_and_samples(runs, name):
    workdir = runs[name]
    last = 24 if name == "skimage_gauss" else 4
    assert _steps(workdir)[-1] == last
    config = json.loads((workdir / "config.json").read_text())
    assert config["num_steps"] == last and config["model"]["name"] in ("dae_dense", "dae_conv",
                                                                      "dncnn")
    records = writers.read_metrics(str(workdir))
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == last
    assert all(np.isfinite(r["loss"]) for r in records if r["split"] == "train")
    val = [r for r in records if r["split"] == "val"]
    assert val and val[-1]["step"] == last and 0 < val[-1]["psnr"] < 60
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tensorboard"))
    png = workdir / "samples" / f"step_{last}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_resumes_and_reports_the_changed_config(runs, cache, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(runs["mnist_dae"], workdir)
    proc = _run(cache, "mnist_dae", workdir, "--config.num_steps=6")
    assert "from step 4" in proc.stdout
    assert "num_steps: 4 -> 6" in proc.stderr
    assert _steps(workdir)[-1] == 6
    steps = [r["step"] for r in writers.read_metrics(str(workdir), "train")]
    assert steps == [2, 4, 6]  # continued, not restarted


def test_kill_and_resume_is_bit_identical(runs, cache, tmp_path):
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(_command("skimage_gauss", workdir, *KILL_RUN), cwd=ROOT,
                            env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = workdir / "checkpoints" / "4"
    deadline = time.time() + 180
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run never wrote checkpoint 4"
    assert 24 not in _steps(workdir), "the run finished before it could be killed"

    proc = _run(cache, "skimage_gauss", workdir, *KILL_RUN)
    assert "resuming" in proc.stdout
    reference, resumed = _state(runs["skimage_gauss"], 24), _state(workdir, 24)
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    losses = lambda w: {r["step"]: r["loss"] for r in writers.read_metrics(str(w), "train")}
    assert losses(workdir) == losses(runs["skimage_gauss"])


def test_corrupted_latest_checkpoint_falls_back_with_a_warning(runs, cache, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(runs["mnist_dae"], workdir)
    shutil.rmtree(workdir / "checkpoints" / "4" / "state")
    proc = _run(cache, "mnist_dae", workdir)
    assert "checkpoints/4 cannot be restored" in proc.stderr
    assert "from step 2" in proc.stdout
    assert _steps(workdir)[-1] == 4  # saved again after the damaged one was set aside
    assert os.listdir(workdir / "checkpoints_damaged")


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
        runs, cache, tmp_path):

    workdir = tmp_path / "run"
    shutil.copytree(runs["mnist_dae"], workdir)
    proc = _run(cache, "mnist_dae", workdir, "--config.num_steps=8",
                "--config.optimizer.lr=nan", expect=2)
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error: loss became nan at step 6")
    assert "last good checkpoint is step 4" in message and "learning rate" in message
    assert "Traceback" not in proc.stderr
    assert _steps(workdir)[-1] == 4
    method = methods.load_method(str(workdir), "latest")
    assert method.step == 4
    digit = np.full((28, 28, 1), 0.5, np.float32)
    assert np.isfinite(method(digit, None)).all()


def test_trained_workdir_is_an_evaluation_method(runs):
    from denoise_jax import checkpoints, data, evaluate

    assert checkpoints.is_workdir(str(runs["mnist_dae"]))
    dataset = data.load("mnist_5k:test")[:2]
    name = str(runs["mnist_dae_conv"])
    report = evaluate.evaluate([name, f"{runs['mnist_dae']}@latest"], dataset, "keras:0.5",
                               progress=False)
    result = report.methods[name]
    assert result.sigma == "blind" and np.isfinite(result.psnr) and len(result.per_image) == 2


# ---------------------------------------------------------------------------------------------
# What long runs meet: signals, a second run, a full disk, time-based saves, warm starts.

# `denoise-jax train ARGS` (argv[3:]) that receives signal argv[2] while its step argv[1]
# runs, as from a scheduler (SIGTERM) or Ctrl-C (SIGINT): raised from inside the run, so
# the step it lands in is known.
SIGNAL_AT = r"""
import signal, sys
from denoise_jax import cli, train

at, name = int(sys.argv[1]), sys.argv[2]
real, calls = train.to_global, [0]

def to_global(batch, sharding):  # called once per step, before the step
    calls[0] += 1
    if calls[0] == at:
        signal.raise_signal(getattr(signal, name))
    return real(batch, sharding)

train.to_global = to_global
"""
RUN_CLI = 'sys.exit(cli.main(["train", *sys.argv[3:]]))\n'
# ...and whose save of that step hangs before orbax renames it into place, until a second
# Ctrl-C reaches the main thread (which waits for the save).
SAVE_HANGS = r"""
import asyncio, threading
from orbax.checkpoint._src.path import async_path

real_rename = async_path.rename

async def rename(src, dst):
    if src.name.startswith(f"{at}.orbax-checkpoint-tmp"):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        await asyncio.sleep(600)
    return await real_rename(src, dst)

async_path.rename = rename
"""


def _signalled(cache, step: int, name: str, experiment: str, workdir, *overrides,
               hang: bool = False) -> subprocess.CompletedProcess:
    script = SIGNAL_AT + (SAVE_HANGS if hang else "") + RUN_CLI
    argv = [sys.executable, "-c", script, str(step), name,
            *_command(experiment, workdir, *overrides)[4:]]
    return subprocess.run(argv, cwd=ROOT, env=_env(cache), capture_output=True, text=True,
                          timeout=240)


def test_sigterm_saves_the_step_and_a_rerun_resumes_bit_identically(runs, cache, tmp_path):
    workdir = tmp_path / "preempted"
    proc = _signalled(cache, 3, "SIGTERM", "mnist_dae", workdir)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "stopped at step 3 (SIGTERM); re-run the same command to resume")
    assert _steps(workdir) == [2, 3]  # step 3 is no checkpoint step: saved for the signal
    assert (workdir / "train.lock").read_text() == ""  # released

    proc = _run(cache, "mnist_dae", workdir)
    assert f"resuming {workdir} from step 3" in proc.stdout
    reference, resumed = _state(runs["mnist_dae"], 4), _state(workdir, 4)
    for a, b in zip(jax.tree.leaves(reference), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_second_ctrl_c_while_saving_quits_and_keeps_the_previous_checkpoint(cache, tmp_path):
    from denoise_jax import checkpoints

    workdir = tmp_path / "run"
    proc = _signalled(cache, 3, "SIGINT", "mnist_dae", workdir, "--config.num_steps=6",
                      hang=True)
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "second SIGINT: stopped without waiting for the save; re-run the same command to "
        "resume from the last complete checkpoint")
    # The interrupted save stays a temporary folder (the next run removes it); the
    # checkpoint before it is intact, and is what a re-run resumes from.
    assert _steps(workdir) == [2]
    assert any(n.startswith("3.orbax-checkpoint-tmp") for n in os.listdir(workdir / "checkpoints"))
    assert checkpoints.restore(str(workdir), set_aside=False)[0] == 2


def _train_in_process(workdir, *overrides: str, experiment: str = "mnist_dae") -> int:
    from denoise_jax import cli

    return cli.main(["train", "--config", f"{ROOT}/experiments/{experiment}.py:tiny",
                     "--workdir", str(workdir), *overrides])


def test_one_run_per_workdir_while_evaluating_it_stays_allowed(runs, tmp_path, capsys):
    import socket


    workdir = tmp_path / "run"
    shutil.copytree(runs["mnist_dae"], workdir)
    with train.workdir_lock(str(workdir)):  # as a run training there holds it
        assert _train_in_process(workdir, "--config.num_steps=6") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(
            f"error: workdir {workdir} is in use by process {os.getpid()} on host "
            f"{socket.gethostname()} since "), err
        assert methods.load_method(str(workdir)).step == 4  # read-only: allowed
    assert _steps(workdir) == [2, 4]


def test_checkpoints_every_n_minutes_and_a_dead_runs_lock_is_taken_over(
        tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "train.lock").write_text('{"pid": 4194304, "host": "gone", "started": "then"}')
    clock = iter(range(0, 10**6, 25))  # 25 s per look at the clock
    monkeypatch.setattr(train, "_clock", lambda: next(clock))
    assert _train_in_process(workdir, "--config.num_steps=6", "--config.checkpoint_every=1000",
                             "--config.checkpoint_every_minutes=1") == 0
    assert _steps(workdir) == [3, 6]  # 75 s after the start, 75 s after that (the last step)
    err = capsys.readouterr().err
    assert ("note: taking over " + str(workdir / "train.lock") + ", left by process 4194304 on "
            "host gone (started then), which is no longer running") in err


# orbax leaves a write coroutine of the failed save un-awaited; Python reports it later.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_full_disk_during_training_is_one_line_and_keeps_the_previous_checkpoint(
        tmp_path, full_disk, capsys):
    workdir = tmp_path / "run"
    full_disk(os.path.join(str(workdir), "checkpoints", "4.orbax-checkpoint-tmp"))
    assert _train_in_process(workdir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"error: cannot save a checkpoint in {workdir}/checkpoints: the disk is full; the "
        "newest complete checkpoint (step 2) is intact; free some space"), err
    assert _steps(workdir) == [2]


def test_init_from_warm_starts_a_new_run_and_resuming_wins(runs, tmp_path, capsys):
    source = runs["mnist_dae"]
    workdir = tmp_path / "warm"
    assert _train_in_process(workdir, "--config.num_steps=2",
                             f"--config.init_from={source}@latest") == 0
    out = capsys.readouterr().out
    assert (f"starting from {source}@latest (its step 4): parameters copied; step 0, fresh "
            "optimizer") in out
    recorded = (workdir / train.INIT_FROM).read_text()  # the model card's "Warm start" line
    assert recorded.startswith(f"starting from {source}@latest (its step 4)")
    assert ship.started_from(str(workdir)) == [f"- **Warm start**: {recorded.strip()}."]
    first_loss = lambda w: writers.read_metrics(str(w), "train")[0]["loss"]
    assert first_loss(workdir) < first_loss(source)  # same batches, trained weights
    assert _train_in_process(workdir, "--config.num_steps=2",
                             f"--config.init_from={source}@latest") == 0
    out = capsys.readouterr().out
    assert f"resuming {workdir} from step 2" in out and "starting from" not in out


def test_init_from_copies_the_weights_and_refuses_another_model(runs, tmp_path, monkeypatch):
    from denoise_jax import checkpoints, pretrained

    def fresh(name):
        config = ConfigDict(checkpoints.load_config(str(runs[name])))
        model, _ = methods.build_model(config)
        tx = optim.make_optimizer(config.optimizer, 4)
        shape = (28, 28, 1)
        return train.make_init(config, model, tx, shape, train.make_mesh())(
            jax.random.PRNGKey(7)), tx

    state, tx = fresh("mnist_dae")
    monkeypatch.setattr(pretrained, "ROOT", str(tmp_path))
    shutil.copytree(runs["mnist_dae"], tmp_path / "digits")  # as a shipped model
    warm, line = train.init_from("pretrained:digits", state)
    _, source, _ = checkpoints.restore(str(runs["mnist_dae"]), data_iter=False)
    for a, b in zip(jax.tree.leaves(source["params"]), jax.tree.leaves(warm.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(warm.step) == 0 and line.startswith("starting from pretrained:digits (its step 4)")
    for a, b in zip(jax.tree.leaves(tx.init(warm.params)), jax.tree.leaves(warm.opt_state),
                    strict=True):
        np.testing.assert_array_equal(a, b)  # a fresh optimizer

    conv_state, _ = fresh("mnist_dae_conv")
    with pytest.raises(UserError, match="does not fit this model: params/"):
        train.init_from(str(runs["mnist_dae"]), conv_state)
    with pytest.raises(UserError, match="neither pretrained:NAME nor a training workdir"):
        train.init_from(str(tmp_path / "nothing"), state)


# ---------------------------------------------------------------------------------------------
# The command line.


def test_help_lists_usage_and_experiments(capsys):
    assert train_cmd.main(["denoise-jax train", "--help"]) == 0
    assert train_cmd.main(["denoise-jax train", "--config", "experiments/mnist_dae.py:tiny",
                       "--help"]) == 0  # callable more than once in a process
    out = capsys.readouterr().out
    assert "--workdir DIR" in out and "experiments/skimage_gauss.py" in out
    assert "dae_dense" in out  # the chosen config is printed


@pytest.mark.parametrize("argv, says", [
    ([], "needs --config"),
    (["--config", "experiments/nope.py", "--workdir", "w"], "nope.py"),
    (["--config", "experiments/mnist_dae.py", "--workdir", "w", "--config.nope=1"], "nope"),
    (["--config", "experiments/mnist_dae.py"], "--workdir"),
    (["--config", "experiments/mnist_dae.py:tiny", "--workdir", "w", "--config.conv=cudnn"],
     "config.conv must be one of xla, onednn, auto"),
])
def test_bad_arguments_are_user_errors(argv, says):
    with pytest.raises(UserError, match=says):
        train_cmd.main(["denoise-jax train", *argv])


# ---------------------------------------------------------------------------------------------
# Input pipeline, losses, optimizers (no training).


def _photos():
    from denoise_jax import data

    return data.load("skimage:test:rgb")


def test_pipeline_is_deterministic_and_resumable():
    make = lambda: pipeline.batches(_photos(), batch=3, patch=8, augment=True, seed=5,
                                    shard=(0, 1), num_threads=1, prefetch=2)
    a, b = make(), make()
    first = [next(a)["clean"] for _ in range(3)]
    assert all(np.array_equal(x, next(b)["clean"]) for x in first)
    state = a.get_state()
    json.dumps(state)  # stored in checkpoints as JSON
    expected = [next(a)["clean"] for _ in range(3)]
    c = make()
    c.set_state(state)
    assert all(np.array_equal(x, next(c)["clean"]) for x in expected)
    assert first[0].shape == (3, 8, 8, 3) and first[0].dtype == np.float32
    assert not np.array_equal(first[0], first[1])


def test_pipeline_pads_small_images_and_keeps_whole_mnist_digits():
    from denoise_jax import data

    small = data.Dataset.from_examples("t", "t", [
        data.Example("a", np.random.default_rng(0).random((5, 7, 1), dtype=np.float32))])
    batch = next(pipeline.batches(small, batch=2, patch=12, augment=False, seed=0,
                                  shard=(0, 1), num_threads=1, prefetch=1))["clean"]
    assert batch.shape == (2, 12, 12, 1)
    assert pipeline.check_shapes(data.load("mnist_5k:test"), None) == (28, 28, 1)
    with pytest.raises(UserError, match="mix grey and colour"):
        pipeline.check_shapes(data.load("skimage:test"), 16)


def test_pipeline_shards_are_disjoint():
    from denoise_jax import data

    digits = data.load("mnist_5k:test")[:8]
    seen = []
    for index in range(2):
        it = pipeline.batches(digits, batch=4, patch=None, augment=False, seed=0,
                              shard=(index, 2), num_threads=1, prefetch=1)
        seen.append({x.tobytes() for x in next(it)["clean"]})
    assert len(seen[0]) == len(seen[1]) == 4 and not seen[0] & seen[1]


def test_tfds_without_a_prepared_copy_is_a_user_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    start = time.time()
    with pytest.raises(UserError, match="tfds:mnist: not built"):
        pipeline.training_source("tfds:mnist:train", download=False)
    assert time.time() - start < 30 and os.listdir(tmp_path) == []


def test_bce_from_logits_matches_bce_on_probabilities():
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 4, 1)) * 3
    clean = jax.random.uniform(jax.random.PRNGKey(1), (2, 4, 4, 1))
    bce = optim.loss_fn("bce")
    np.testing.assert_allclose(bce(logits, clean, True), bce(jax.nn.sigmoid(logits), clean, False),
                               rtol=1e-5)
    mse = optim.loss_fn("mse")
    assert float(mse(clean, clean, False)) == 0.0
    assert float(optim.loss_fn("charbonnier")(clean, clean, False)) == pytest.approx(1e-3)
    with pytest.raises(UserError, match="unknown loss"):
        optim.loss_fn("ssim")


def test_schedules_and_optimizers():
    cfg = ConfigDict(dict(name="adam", lr=1.0, schedule="cosine", warmup=10))
    lr = optim.learning_rate(cfg, 110)
    assert float(lr(0)) == 0.0 and float(lr(10)) == pytest.approx(1.0)
    assert float(lr(110)) == pytest.approx(0.0, abs=1e-6)
    step = optim.learning_rate(ConfigDict(dict(lr=1.0, schedule="step", step_every=5,
                                               step_factor=0.5)), 100)
    assert float(step(4)) == 1.0 and float(step(5)) == 0.5
    params = {"w": jnp.ones(3)}
    for name in optim.OPTIMIZERS:
        cfg = ConfigDict(dict(name=name, lr=0.1, schedule="plateau", clip_norm=1.0,
                              weight_decay=1e-4, plateau_steps=1, plateau_patience=0))
        tx = optim.make_optimizer(cfg, 10)
        state = tx.init(params)
        update = jax.jit(functools.partial(tx.update, params=params, value=jnp.float32(1.0)))
        updates, state = update({"w": jnp.ones(3)}, state)
        assert np.all(np.asarray(updates["w"]) < 0), name
        assert float(optim.lr_at(cfg, 10, jnp.int32(0), state)) > 0
    with pytest.raises(UserError, match="unknown optimizer"):
        optim.make_optimizer(ConfigDict(dict(name="lamb", lr=1.0)), 10)


def test_ema_decay_warms_up_then_holds():
    from denoise_jax.train import ema_decay_at

    assert float(ema_decay_at(0, 0.999)) == pytest.approx(0.1)
    assert float(ema_decay_at(90, 0.999)) == pytest.approx(0.91)
    assert float(ema_decay_at(100_000, 0.999)) == pytest.approx(0.999)
    # after 300 steps the init's weight in the average is tiny (it was 0.74 without warm-up)
    weight = 1.0
    for t in range(300):
        weight *= float(ema_decay_at(t, 0.999))
    assert weight < 1e-3


def test_a_loss_that_blows_up_stops_the_run_before_it_is_saved():
    class Manager:  # what check_divergence asks of orbax's CheckpointManager
        def wait_until_finished(self):
            pass

        def latest_step(self):
            return 750

    lowest = np.inf
    for step, loss in [(100, 0.02), (200, 0.004), (300, 0.0022), (400, 0.05)]:
        lowest = train.check_divergence(step, loss, lowest, Manager(), "/w")
    assert lowest == 0.0022  # ×23 is noise, not divergence
    with pytest.raises(train.NonFiniteLoss) as e:
        train.check_divergence(883, 3790.8, lowest, Manager(), "/w")
    assert str(e.value).startswith("training diverged: the mean loss rose to 3.79e+03 by "
                                   "step 883, 1,723,091× its lowest (0.0022)")
    assert "last good checkpoint is step 750 in /w/checkpoints" in str(e.value)


@pytest.mark.parametrize("name,kwargs", [
    ("nafnet_small", {"width": 4, "middle_blk_num": 1, "window": 8}),
    ("drunet", {"features": (4, 8), "blocks": 1}),
])
def test_a_colour_model_warm_starts_a_grey_one_as_its_channel_mean(name, kwargs):
    import flax

    from denoise_jax.models import get_model

    model = get_model(name, **kwargs)
    colour = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
    grey = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 16, 16, 1)))["params"]
    flat = lambda tree: flax.traverse_util.flatten_dict(tree, sep="/")
    fitted = {k: train.colour_to_grey(v, np.shape(flat(grey)[k])) for k, v in flat(colour).items()}
    x = jnp.asarray(np.random.default_rng(0).random((1, 16, 16, 1)), jnp.float32)
    out = model.apply({"params": flax.traverse_util.unflatten_dict(fitted, sep="/")}, x)
    want = model.apply({"params": colour}, jnp.repeat(x, 3, -1)).mean(-1, keepdims=True)
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert train.colour_to_grey(np.ones((3, 3, 3, 8)), (3, 3, 2, 8)).shape == (3, 3, 3, 8)
