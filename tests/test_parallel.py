"""Data parallelism: a step on 4 devices equals 1 device and a pmap reference; 2 processes agree.

Each check runs JAX in a subprocess with `XLA_FLAGS=--xla_force_host_platform_device_count`
(the device count is fixed when JAX starts).
"""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FOUR_DEVICES = r'''
import json
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from ml_collections import ConfigDict
from denoise_jax import methods, optim, train
from denoise_jax.errors import UserError

assert jax.device_count() == 4, jax.devices()
H, B, STEPS = 16, 8, 1
clean = np.random.default_rng(0).random((B, H, H, 3), dtype=np.float32)


def cfg(**model):
    return ConfigDict(dict(seed=0, model=dict(name="dncnn", depth=3, features=8, **model),
                           noise="gaussian:0-55", loss="mse", ema=0.9,
                           optimizer=dict(name="adam", lr=1e-2, schedule="constant")))


def run_mesh(config, devices, batch, steps):
    mesh = Mesh(np.array(devices), ("data",))
    model, from_logits = methods.build_model(config)
    tx = optim.make_optimizer(config.optimizer, 10)
    state = train.make_init(config, model, tx, (H, H, 3), mesh)(jax.random.PRNGKey(0))
    step = train.make_train_step(config, model, from_logits, tx, 10, mesh)
    key = jax.device_put(jax.random.PRNGKey(1), NamedSharding(mesh, P()))
    global_batch = train.to_global(batch, NamedSharding(mesh, P("data")))
    losses = []
    for _ in range(steps):
        state, metrics = step(key, state, global_batch)
        losses.append(float(metrics["loss"]))
    return jax.device_get(train.local_copy(state)), losses


def max_rel(a, b):
    return max(float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


out = {}
# 1 device vs 4 devices: noise drawn inside the step, batch norm over the global batch, EMA.
one, loss1 = run_mesh(cfg(), jax.devices()[:1], {"clean": clean}, STEPS)
four, loss4 = run_mesh(cfg(), jax.devices(), {"clean": clean}, STEPS)
out["mesh_rel"] = max_rel(four, one)
out["mesh_losses"] = [loss1, loss4]

# 4-device jit vs a pmap reference (pmean of gradients), no batch norm, given noisy inputs.
config = cfg(use_bn=False)
noisy = np.clip(clean + 0.1 * np.random.default_rng(1).standard_normal(clean.shape), 0, 1)
noisy = noisy.astype(np.float32)
jit_state, jit_loss = run_mesh(config, jax.devices(), {"clean": clean, "noisy": noisy}, 1)
model, _ = methods.build_model(config)
tx = optim.make_optimizer(config.optimizer, 10)
init = train.make_init(config, model, tx, (H, H, 3),
                                                Mesh(np.array(jax.devices()[:1]), ("data",)))
state0 = jax.device_get(train.local_copy(init(jax.random.PRNGKey(0))))


def ref_step(params, opt_state, noisy, clean):
    def loss_of(p):
        return jnp.mean(jnp.square(model.apply({"params": p}, noisy, train=True) - clean))

    loss, grads = jax.value_and_grad(loss_of)(params)
    grads, loss = jax.lax.pmean((grads, loss), "batch")
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), loss


stack = lambda t: jax.tree.map(lambda x: np.stack([x] * 4), t)
split = lambda x: x.reshape(4, B // 4, *x.shape[1:])
params, loss = jax.pmap(ref_step, axis_name="batch")(
    stack(state0.params), stack(state0.opt_state), split(noisy), split(clean))
out["pmap_rel"] = max_rel(jit_state.params, jax.tree.map(lambda x: x[0], params))
out["pmap_losses"] = [jit_loss[0], float(loss[0])]
try:
    train.check_batch(6)
    out["batch_error"] = None
except UserError as e:
    out["batch_error"] = str(e)
print("RESULT " + json.dumps(out))
'''

# Process i of 2 (2 fake CPU devices each) trains the skimage_gauss:tiny config through
# the real loop into one shared workdir, then saves its copy of the final parameters.
TWO_PROCESSES = r'''
import sys

import jax
import numpy as np

from denoise_jax import configs, train

process, port, workdir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
config = configs.load("experiments/skimage_gauss.py:tiny")
config.distributed, config.coordinator_address = True, f"127.0.0.1:{port}"
config.num_processes, config.process_id, config.distributed_timeout = 2, process, 60
state = train.train_and_evaluate(config, workdir)
assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 4, 2)
np.savez(out, *jax.device_get(jax.tree.leaves(train.local_copy(state.params))))
'''


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]))
    return env


def test_four_devices_equal_one_device_and_pmap():
    proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES], cwd=ROOT, env=_env(4),
                          capture_output=True, text=True, timeout=300)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(lines[0][len("RESULT "):])
    # Same noise (drawn inside the step), batch norm over the global batch, EMA: only the
    # order of float reductions differs.
    assert result["mesh_rel"] < 1e-5, result
    np.testing.assert_allclose(*result["mesh_losses"], rtol=1e-5)
    assert result["pmap_rel"] < 1e-5, result
    np.testing.assert_allclose(*result["pmap_losses"], rtol=1e-5)
    assert "multiple of 4" in result["batch_error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_identical_replicas(tmp_path):
    port, workdir = _free_port(), tmp_path / "run"
    procs = [
        subprocess.Popen(
            ["timeout", "240", sys.executable, "-c", TWO_PROCESSES, str(i), str(port),
             str(workdir), str(tmp_path / f"params{i}.npz")],
            cwd=ROOT, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-2000:] + err[-4000:]
    a, b = (np.load(tmp_path / f"params{i}.npz") for i in range(2))
    assert len(a.files) == len(b.files) > 0
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])
    assert "training dncnn" in outputs[0][0] and "training" not in outputs[1][0]  # one reporter
    assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
    assert (workdir / "samples" / "step_4.png").exists()


# Process i of 2 trains skimage_gauss:tiny into one shared workdir; process 1 alone gets the
# signal (argv[4]) before its step 3, as when a scheduler preempts one host.
TWO_PROCESSES_SIGNAL = r'''
import signal
import sys

from denoise_jax import configs, train
from denoise_jax.errors import Interrupted

process, port, workdir, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
config = configs.load("experiments/skimage_gauss.py:tiny")
config.num_steps, config.eval_every, config.sample_every = 40, 0, 0
config.distributed, config.coordinator_address = True, f"127.0.0.1:{port}"
config.num_processes, config.process_id, config.distributed_timeout = 2, process, 60
real, calls = train.to_global, [0]


def to_global(batch, sharding):
    calls[0] += 1
    if process == 1 and calls[0] == 3:
        signal.raise_signal(getattr(signal, name))
    return real(batch, sharding)


train.to_global = to_global
try:
    train.train_and_evaluate(config, workdir)
except Interrupted as stop:
    print(f"RESULT {stop}")
    sys.exit(stop.exit_code)
'''


@pytest.mark.parametrize("name", [
    "SIGTERM",  # JAX's preemption service: every process stops at its sync point
    pytest.param("SIGINT", marks=pytest.mark.slow),  # agreed at the next logging step
])
def test_a_signal_to_one_process_stops_every_process_at_the_same_step(tmp_path, name):
    port, workdir = _free_port(), tmp_path / "run"
    procs = [
        subprocess.Popen(
            ["timeout", "240", sys.executable, "-c", TWO_PROCESSES_SIGNAL, str(i), str(port),
             str(workdir), name],
            cwd=ROOT, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    lines = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 128 + getattr(signal, name), out[-2000:] + err[-4000:]
        lines += [x for x in out.splitlines() if x.startswith("RESULT ")]
    assert len(lines) == 2 and lines[0] == lines[1], lines
    step = int(lines[0].split()[4])
    assert lines[0] == (f"RESULT stopped at step {step} ({name}); re-run the same command to "
                        "resume") and step < 40
    assert str(step) in os.listdir(workdir / "checkpoints")
