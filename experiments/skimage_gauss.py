"""Blind colour Gaussian denoising on the bundled scikit-image photos.

CDnCNN-B (DnCNN, 20 layers, 64 features, BN) trained on random 64×64 crops of the seven
colour training photos with σ drawn per image from [0, 55] (0-255 scale), flips and
rotations; validated on the held-out colour photos (astronaut, chelsea) at σ = 25,
centre 256×256 crops. Adam 1e-3 with a cosine decay and 500 warm-up steps; EMA weights
for evaluation.

Args (comma-separated): "nafnet" (nafnet_tiny instead of DnCNN), "demo" (a 10-layer,
32-feature DnCNN trained for a few minutes on 2 CPU cores: what `make demo` runs), "tiny" (a
few steps of a 3-layer, 8-feature model on 16×16 crops, for tests).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling


def get_config(arg: str | None = None) -> ConfigDict:
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict({"name": "dncnn", "depth": 20, "features": 64})
    config.data.train = "skimage:train:rgb"
    config.data.patch = 64
    config.data.batch = 16
    config.noise = "gaussian:0-55"
    config.loss = "mse"
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup = 500
    config.ema = 0.999
    config.num_steps = 50_000
    config.eval.data = "skimage:test:rgb"
    config.eval.noise = "gaussian:25"
    config.eval.crop = 256
    args = parse_arg(arg, "skimage_gauss", flags=("nafnet", "demo"))
    if "nafnet" in args.flags:
        config.model = ConfigDict({"name": "nafnet_tiny", "width": 16})
    if "demo" in args.flags:
        config.model.depth, config.model.features = 10, 32
        config.data.patch = 48
        config.num_steps = 900
        config.optimizer.warmup = 50
        config.eval_every = config.checkpoint_every = config.sample_every = 300
        config.log_every = 50
    if args.tiny:
        base.shrink(config)
        config.data.patch = 16
        config.optimizer.warmup = 1
        config.eval.crop = 32
        if config.model.name == "dncnn":
            config.model.depth, config.model.features = 3, 8
        else:
            config.model.width = 4
    return config
