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
  gauss_gray  blind grey Gaussian noise on the corpus's grey photos (BT.601 luma): exactly
              `photos_gauss.py:nafnet_small,charbonnier,cycle,gray`, the same cycle on
              `photos:train:gray`; the first grey cycle started from gauss_rgb folded to one
              channel (its first layer's inputs summed, its last layer's outputs averaged).
              Cycles before grey v9 and colour v13 took 96² crops in batches of 8 (their
              cards' configs say so), the cycle's 128² × 4 since.
  camera      realistic synthetic sRGB camera noise (Brooks et al. 2019, `noise.py`) on the
              photo corpus: exactly `photos_camera.py`, fine-tuned from gauss_rgb.
Add ",tiny" for a few steps of a width-4 net (tests).

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
    return sibling(__file__, "photos_gauss").get_config(
        "nafnet_small,charbonnier,cycle,gray" + (",tiny" if args.tiny else ""))
