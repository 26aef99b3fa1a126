"""The shipped pretrained models (`denoise_jax/pretrained/`), one variant per model.

    denoise-jax train --config experiments/pretrained.py:gauss_rgb --workdir runs/gauss_rgb
    denoise-jax train --config experiments/pretrained.py:gauss_gray --workdir runs/gauss_gray
    denoise-jax train --config experiments/pretrained.py:camera --workdir runs/camera

Variants (the first argument):
  gauss_rgb   blind colour Gaussian noise on the photo corpus: exactly
              `photos_gauss.py:nafnet_small,charbonnier,cycle`, one cycle of the campaign
              (its docstring has the recipe: 232 training photos, σ ~ U(0, 55) per crop,
              half the crops rounded to 8 bits, colour-channel permutation, EMA 0.999),
              warm-started from the shipped gauss_rgb and validated on centre crops of
              `photos:val`. The first one, from scratch, was `photos_gauss.py:nafnet_small`
              (MSE, 3,801 steps); each card lists the training it inherits.
  gauss_gray  blind grey Gaussian noise, σ ~ U(0, 55), on scikit-image's grey training
              photos (the grey photos plus luminance of the colour ones).
  camera      realistic synthetic sRGB camera noise (Brooks et al. 2019, `noise.py`) on the
              photo corpus: exactly `photos_camera.py`, fine-tuned from gauss_rgb.
Add ",tiny" for a few steps of a width-4 net (tests).

gauss_gray (4,000 steps): `nafnet_tiny` (width 16, 3 levels, 0.29M
parameters), random 96×96 crops with flips and 90° rotations, batch 8, MSE, Adam 1e-3 with
200 warm-up steps and a cosine decay to 5 % of it, EMA 0.999 of the weights (what is
shipped); validation runs on centre crops of training photos, only to watch the run.

No test photo (scikit-image's astronaut, chelsea, camera, coins) is ever seen in training or
used to pick a checkpoint: the last checkpoint is shipped (`python -m denoise_jax.ship`),
and each card (`denoise_jax/pretrained/NAME/MODEL_CARD.md`) records its steps and hours.
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling

VARIANTS = ("gauss_rgb", "gauss_gray", "camera")


def get_config(arg: str | None = None) -> ConfigDict:
    args = parse_arg(arg, "pretrained", variants=VARIANTS)
    variant = args.variant
    if variant == "gauss_rgb":
        return sibling(__file__, "photos_gauss").get_config(
            "nafnet_small,charbonnier,cycle" + (",tiny" if args.tiny else ""))
    if variant == "camera":
        return sibling(__file__, "photos_camera").get_config("tiny" if args.tiny else None)
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict({"name": "nafnet_tiny", "width": 16})
    config.data.train = "skimage:train:gray"
    config.data.patch = 96
    config.data.batch = 8
    config.noise = "gaussian:0-55"
    config.loss = "mse"
    config.optimizer.name = "adam"
    config.optimizer.lr = 1e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup = 200
    config.optimizer.end_factor = 0.05
    config.ema = 0.999
    config.num_steps = 4000
    config.eval_every = config.checkpoint_every = config.sample_every = 500
    config.log_every = 50
    config.keep = 2
    config.eval.data = "skimage:train:gray"
    config.eval.noise = "gaussian:25"
    config.eval.crop = 256
    config.eval.max_images = 3
    if args.tiny:
        base.shrink(config)
        config.model = ConfigDict({"name": "nafnet_tiny", "width": 4})
        config.data.patch = 16
        config.optimizer.warmup = 1
        config.eval.crop = 32
    return config
