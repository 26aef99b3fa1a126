"""A blind denoiser for realistic camera noise, fine-tuned on the photo corpus from the shipped
colour Gaussian model.

    denoise-jax data build photos                     # once: the corpus (photos:train / :val)
    denoise-jax train --config experiments/photos_camera.py --workdir ~/runs/camera

Camera noise (`noise.py`: unprocess to raw, shot and read noise on the Bayer mosaic,
demosaic, process back to sRGB) is signal-dependent and correlated between neighbouring
pixels and channels, but a Gaussian denoiser already knows what photos look like. So the run
starts from `pretrained:gauss_rgb` (same network, `photos_gauss.py:nafnet_small`) and keeps
that recipe (photos:train crops, flips, rotations, channel permutation, half the noisy crops
rounded to 8 bits, EMA 0.999) with the camera noise instead of Gaussian, Adam 3e-4 after a
short warm-up, cosine decay over 20,000 steps. Validation: centre 256² crops of `photos:val`
with camera noise, to watch the run.

Add ",tiny" for a few steps of a tiny net from scratch (tests).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling


def get_config(arg: str | None = None) -> ConfigDict:
    args = parse_arg(arg, "photos_camera")
    config = sibling(__file__, "photos_gauss").get_config(
        "nafnet_small,tiny" if args.tiny else "nafnet_small")
    config.noise = config.eval.noise = "camera"
    config.optimizer.lr = 3e-4
    if not args.tiny:  # tiny keeps photos_gauss's tiny steps and warm-up, from scratch
        config.init_from = "pretrained:gauss_rgb"
        config.optimizer.warmup = 200
        config.num_steps = 20_000
    return config
