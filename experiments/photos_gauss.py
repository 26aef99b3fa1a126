"""Blind colour (or grey) Gaussian denoisers trained on the photo corpus, one variant per net.

    denoise-jax data build photos                     # once: the corpus (photos:train / :val)
    denoise-jax train --config experiments/photos_gauss.py:drunet --workdir ~/runs/drunet
    denoise-jax train --config experiments/photos_gauss.py:ffdnet,l1 --workdir ~/runs/ffdnet_l1

The first argument names the network (the candidates of the architecture pilot):
  drunet        bias-free residual U-Net in the style of DRUNet (`models/drunet.py`)
  ffdnet        FFDNet-style conv stack at quarter resolution (`models/ffdnet.py`)
  nafnet_small  a wider, deeper NAFNet with crop-independent attention
  dncnn         DnCNN-17 (64 features, BN)
  nafnet_tiny   the first shipped models' net
Further tokens: `gray` (grey photos, BT.601 luma), `l1` / `charbonnier` (loss instead of
MSE), `cycle` (one cycle of the campaign, below), `tiny` (a few steps of a tiny net, for tests).

The pilot, per CPU-hour on one thread each, picked `nafnet_small` (val PSNR 29.37 dB at 0.4
CPU-h against 28.17 for drunet and 26.79 for ffdnet at 0.52); then, same seed and batches,
Charbonnier beat MSE on it by 0.37 dB at step 1,500 (30.47 against 30.10), so the colour
campaign runs `nafnet_small,charbonnier`.

The recipe: random 96×96 crops, each photo equally likely whatever its size, flips, 90°
rotations and a random order of the colour channels; σ ~ U(0, 55)/255 per crop (so σ < 15 is
27 % of the crops); half of the noisy crops clipped and rounded to 8 bits, as users' photo
files are; Adam 1e-3 (FFDNet, DRUNet 1e-4) with warm-up and a cosine decay over the whole campaign;
EMA 0.999 of the weights (what is evaluated and shipped). The denoiser built from these
weights puts the noisy input's 16-pixel local means back after the network (`keep_means`,
`denoise_jax/local_means.py`; on `gauss_rgb` v3 it took the colour bias on floating-point
inputs from 0.22-0.76 to 0.04-0.13 levels and added 0.02 to 0.2 dB), and averages the network
over rotations of each tile (`ensemble`, `denoise_jax/ensemble.py`): the photo and its half
turn for colour, the photo alone for grey, the most that keeps each model 10× faster than
BM3D on a 2-core AMD EPYC (one view costs about 2 s/MP in colour or grey; BM3D 66-79 s/MP
in colour, 27-28 in grey; `--ensemble 4` adds about 0.04 dB for colour, 2 about 0.06 for grey).
Validation: the 24 held-out
`photos:val` photos, centre 256×256 crops at σ 25, to watch the run; a checkpoint is saved
every 10 minutes as well as every `checkpoint_every` steps, so a run can be stopped and
resumed at any time.

The campaign runs in cycles, one per working session (about 3 hours on 2 cores), because a
machine and its workdir can be lost between sessions: `cycle` starts from the shipped
`gauss_rgb` (`gauss_gray` for `gray`; the first grey cycle started from `gauss_rgb`, its first
layer's inputs summed and its last layer's outputs averaged), with Adam 5e-4, 200 warm-up steps
and a cosine to 2 % of it within 3,000 steps (1.7 hours at the 2 s/step of the slowest machine
seen here), so the weights at the end of a session are decayed ones worth shipping, and the
next cycle restarts from them (warm restarts, as SGDR), on 128×128 crops in batches of 4. Half
the peak rate did not pay: colour cycle 11 (`--config.optimizer.lr=2.5e-4`, shipped as
gauss_rgb v11) lost 0.011 dB on the val crops in its first 1,000 steps where 5e-4 cycles lost
0.02 to 0.06, but ended 0.015 dB over cycle 10, where cycle 10 had ended 0.020 over cycle 9.
Larger crops did pay (11 % fewer pixels a step than the 96² × 8 of the earlier cycles, but less
of each crop lies near its border, as in a 512-pixel tile): grey cycle 9 ended 0.023 dB over
cycle 8 on the val crops, where cycles 7 and 8 had gained 0.021 and 0.013, and colour cycle 13
ended 0.020 over cycle 12, where cycles 11 and 12 had gained 0.016 and 0.012 (cycle 14, on
128², added 0.012 more); on the cards, the σ 25 margins over BM3D on floating-point inputs rose
0.04 and 0.02 dB where 96² cycles had added about 0.01. The same command resumes a cycle whose
workdir is still there:

    denoise-jax train --config experiments/photos_gauss.py:nafnet_small,charbonnier,cycle \
        --workdir ~/runs/gauss_rgb_cycleN
    python -m denoise_jax.ship ~/runs/gauss_rgb_cycleN gauss_rgb --root /tmp/zoo   # then compare
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling

MODELS = {
    "drunet": {"name": "drunet", "features": (32, 64, 128, 256), "blocks": 2, "down": "conv",
               "up": "shuffle"},
    "ffdnet": {"name": "ffdnet", "depth": 12, "features": 96},
    "nafnet_small": {"name": "nafnet_small", "width": 32, "enc_blk_nums": (1, 1, 2),
                     "middle_blk_num": 4, "dec_blk_nums": (1, 1, 1), "attention": "local",
                     "window": 64},
    "dncnn": {"name": "dncnn", "depth": 17, "features": 64},
    "nafnet_tiny": {"name": "nafnet_tiny", "width": 16},
}
TINY = {
    "drunet": {"name": "drunet", "features": (4, 8), "blocks": 1, "down": "conv",
               "up": "shuffle"},
    "ffdnet": {"name": "ffdnet", "depth": 3, "features": 8},
    "nafnet_small": {"name": "nafnet_small", "width": 4, "enc_blk_nums": (1, 1, 2),
                     "middle_blk_num": 1, "dec_blk_nums": (1, 1, 1), "attention": "local",
                     "window": 64},
    "dncnn": {"name": "dncnn", "depth": 3, "features": 4},
    "nafnet_tiny": {"name": "nafnet_tiny", "width": 4},
}
# Adam 1e-3 kills FFDNet's ReLUs within ~300 steps (loss back at the noise variance, with
# or without BN); 1e-4 trains it (measured on astronaut crops: loss 0.0096 -> 0.0075 in
# 150 steps, where 1e-3 stays at 0.0096). The DRUNet-style net, without normalisation,
# blew up at 1e-3 after 850 steps (val 28.39 dB at step 750, then a loss of 1e18); 1e-4 is
# the published DRUNet rate.
LEARNING_RATES = {"ffdnet": 1e-4, "drunet": 1e-4}
VARIANTS = tuple(MODELS)  # `configs.variants`: the smoke test loads each with ",tiny"
OPTIONS = ("gray", "l1", "charbonnier", "cycle")
CYCLE_STEPS = 3000


def get_config(arg: str | None = None) -> ConfigDict:
    args = parse_arg(arg, "photos_gauss", variants=VARIANTS, default="drunet", flags=OPTIONS)
    net, options = args.variant, args.flags
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict(MODELS[net])
    channels = ":gray" if "gray" in options else ""
    config.data.train = f"photos:train{channels}"
    config.data.patch = 96
    config.data.batch = 8
    config.data.permute_channels = True
    config.noise = "gaussian:0-55"
    config.noise_8bit_share = 0.5
    config.keep_means = True
    config.ensemble = 1 if channels else 2
    config.loss = next((t for t in ("l1", "charbonnier") if t in options), "mse")
    config.optimizer.lr = LEARNING_RATES.get(net, 1e-3)
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup = 500
    config.optimizer.end_factor = 0.02
    config.ema = 0.999
    config.num_steps = 100_000
    config.log_every = 100
    config.eval_every = 1000
    config.checkpoint_every = 5000
    config.sample_every = 5000
    config.keep = 2
    config.eval.data = f"photos:val{channels}"
    config.eval.noise = "gaussian:25"
    config.eval.crop = 256
    if "cycle" in options:
        config.optimizer.lr = 5e-4
        config.optimizer.warmup = 200
        config.num_steps = CYCLE_STEPS
        config.data.patch, config.data.batch = 128, 4
        if not args.tiny:
            config.init_from = "pretrained:gauss_gray" if channels else "pretrained:gauss_rgb"
    if args.tiny:
        base.shrink(config)
        config.model = ConfigDict(TINY[net])
        config.data.patch = 16
        config.optimizer.warmup = 1
        config.eval.crop = 32
    return config
