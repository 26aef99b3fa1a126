"""A modern real-noise recipe: NAFNet, Charbonnier loss, AdamW + cosine, EMA.

It is the NAFNet row of notebooks/realnoise_table.ipynb, beside the real-noise comparison's
REDNet/MWCNN/PRIDNet (experiments/realnoise_rednet.py etc.), but not part of that comparison:
its own recipe, not the comparison's protocol.

Random 128×128 patches with flips/rotations, batch 8, Charbonnier loss (ε 1e-3), AdamW
(lr 1e-3, β 0.9/0.9 as NAFNet's training code, weight decay 1e-4), 1,000 warm-up steps then
cosine decay to 1e-6, EMA 0.999 of the weights for evaluation, 20,000 steps. The default
model is `nafnet_tiny` (width 16, 0.29M parameters) so a CPU can train it; ":full" is
NAFNet width 32 (29.2M, the paper's SIDD configuration) on 256² patches, batch 32.

Data. By default realistic synthetic camera noise (`noise = "camera"`, Brooks et al.
2019) on the colour scikit-image photos, validated on the held-out colour photos (centre
256×256) with the same noise: not real noise, and tables made from it must say so. Real
pairs: build them once, then name them:

    denoise-jax data build paired_folder --manual-dir ~/my_pairs
    denoise-jax train --config experiments/realnoise_nafnet.py --workdir runs/nafnet_pairs \\
        --config.data.name=paired_folder      # or sidd, renoir, nind; realnoise (see base.py)

which trains on the build's train split (noise "real": the pairs' own noisy images) and
validates on its test split ($TFDS_DATA_DIR / ~/tensorflow_datasets, or
--config.data.data_dir=DIR).

Args (comma-separated): "full" (width 32, 256² patches, batch 32, 200,000 steps), "cpu"
(a short CPU-sized run: 64² patches, 1,000 steps), "tiny" (a few steps of a width-4 model
on 16×16 patches, for tests).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling


def get_config(arg: str | None = None) -> ConfigDict:
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict({"name": "nafnet_tiny", "width": 16})
    config.data.train = "skimage:train:rgb"
    config.data.patch = 128
    config.data.batch = 8
    config.data.augment = True
    config.noise = "camera"
    config.loss = "charbonnier"
    config.optimizer.name = "adamw"
    config.optimizer.lr = 1e-3
    config.optimizer.b1, config.optimizer.b2 = 0.9, 0.9
    config.optimizer.weight_decay = 1e-4
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup = 1000
    config.optimizer.end_factor = 1e-3
    config.ema = 0.999
    config.num_steps = 20_000
    config.eval.data = "skimage:test:rgb"
    config.eval.noise = "camera"
    config.eval.crop = 256
    tokens = parse_arg(arg, "realnoise_nafnet", flags=("full", "cpu")).flags
    if "full" in tokens:
        config.model = ConfigDict({"name": "nafnet", "width": 32})
        config.data.patch = 256
        config.data.batch = 32
        config.num_steps = 200_000
    if "cpu" in tokens:
        config.data.patch = 64
        config.num_steps = 1000
        config.optimizer.warmup = 100
        config.log_every = 50
        config.eval_every = config.checkpoint_every = config.sample_every = 250
    if "tiny" in tokens:
        base.shrink(config)
        config.model.width = 4
        config.data.patch = 16
        config.optimizer.warmup = 1
        config.eval.crop = 32
    return config
