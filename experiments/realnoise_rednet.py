"""The real-noise comparison's REDNet (5 conv + 5 deconv, 64 features) under its protocol.

The protocol (shared by realnoise_mwcnn.py and realnoise_pridnet.py through `realnoise_config`):
whole images resized to 256×256 (no crops), random flips / 90° rotations, batch 4, MSE,
Adam 3e-5, ReduceLROnPlateau(factor 0.7, patience 3), early stopping (patience 10),
100 epochs. An "epoch" is the comparison's: 241 training pairs / batch 4 = 61 steps, so the run
is 6,025 steps, validates every 61 and stops after 10 validations without a better PSNR.
Departures: the plateau rule watches the training loss averaged over each 61-step epoch
(optax `reduce_on_plateau`; Keras watched the validation loss), and early stopping the
validation PSNR (Keras: validation loss).

Data. The default is NOT the comparison's data, which cannot be downloaded here: the seven
colour scikit-image training photos with realistic synthetic camera noise
(`noise = "camera"`, Brooks et al. 2019), validated on the two held-out colour photos
with the same noise; every table made this way must say so. With the comparison's real pairs
on disk (SIDD-Small sRGB, RENOIR, NIND), train on its 241/61 split instead:

    denoise-jax train --config experiments/realnoise_rednet.py --workdir runs/realnoise_rednet \\
        --config.data.name=realnoise --config.data.sidd_dir=~/SIDD_Small_sRGB_Only \\
        --config.data.renoir_dir=~/RENOIR --config.data.nind_dir=~/NIND

(noise then becomes "real"). Args: "tiny" (a few steps of a 4-feature model on 32×32
images, for tests), "cpu" (a short run sized for a CPU, a few minutes on 2 cores: 64×64
images, narrower model, lr 3e-4, 1,000 steps; not the comparison's model size or schedule).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling

TRAIN_PAIRS = 241
BATCH = 4
EPOCHS = 100
STEPS_PER_EPOCH = -(-TRAIN_PAIRS // BATCH)  # 61


def realnoise_config(model: dict, arg: str | None, *, tiny_model: dict, cpu_model: dict,
                     who: str) -> ConfigDict:
    """The real-noise comparison's protocol (module docstring) around `model`; `arg`: "",
    "tiny" or "cpu"."""
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict(model)
    config.data.train = "skimage:train:rgb"
    config.data.resize = 256
    config.data.patch = None  # whole (resized) images, as the comparison
    config.data.augment = True
    config.data.batch = BATCH
    config.noise = "camera"
    config.loss = "mse"
    config.optimizer.name = "adam"
    config.optimizer.lr = 3e-5
    config.optimizer.schedule = "plateau"
    config.optimizer.plateau_factor = 0.7
    config.optimizer.plateau_patience = 3
    config.optimizer.plateau_steps = STEPS_PER_EPOCH
    config.early_stop_patience = 10
    config.num_steps = -(-EPOCHS * TRAIN_PAIRS // BATCH)  # 6,025
    config.log_every = STEPS_PER_EPOCH
    config.eval_every = STEPS_PER_EPOCH
    config.checkpoint_every = 10 * STEPS_PER_EPOCH
    config.sample_every = 10 * STEPS_PER_EPOCH
    config.keep = 2
    config.eval.data = "skimage:test:rgb"
    config.eval.noise = "camera"
    config.eval.resize = 256
    config.eval.crop = None
    config.eval.max_images = None
    tokens = parse_arg(arg, who, flags=("cpu",)).flags
    if "tiny" in tokens:
        base.shrink(config)
        config.model = ConfigDict(tiny_model)
        config.data.resize = config.eval.resize = 32
        config.optimizer.plateau_steps = 2
    elif "cpu" in tokens:
        config.model = ConfigDict(cpu_model)
        config.data.resize = config.eval.resize = 64
        config.optimizer.lr = 3e-4  # 1,000 steps at the comparison's 3e-5 barely move the weights
        config.optimizer.plateau_steps = 100
        config.num_steps = 1000
        config.log_every = config.eval_every = 100
        config.checkpoint_every = config.sample_every = 500
    return config


def get_config(arg: str | None = None) -> ConfigDict:
    return realnoise_config(
        {"name": "rednet", "depth": 5, "features": 64}, arg,
        tiny_model={"name": "rednet", "depth": 5, "features": 4},
        cpu_model={"name": "rednet", "depth": 5, "features": 32},
        who="realnoise_rednet",
    )
