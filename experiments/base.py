"""Shared defaults for every experiment; an experiment changes a few fields.

Experiment files are loaded by path (`--config experiments/NAME.py[:ARG]`) from any working
directory, so they load this file by path too: `denoise_jax.configs.sibling(__file__, "base")`.

Schema (every field can be overridden: `--config.optimizer.lr=3e-4`):
  seed                  PRNG seed: parameters, noise (fold_in(key, step)), data order
  model.name, model.*   a registered model and its keyword arguments
  data.train            data spec (see `denoise-jax eval --help`) or tfds:NAME[:SPLIT]
  data.name             a built data set instead of data.train / eval.data: sidd, renoir,
                        nind, paired_folder (`denoise-jax data build NAME --manual-dir DIR`;
                        any tfds set built under data.data_dir works) trains on
                        tfds:NAME:train@DATA_DIR and validates on its test split (else
                        validation; neither: no evaluation); "realnoise" trains on the
                        real-noise comparison's 241 pairs of data.sidd_dir/renoir_dir/
                        nind_dir and validates on its 61. Overrides data.train and
                        eval.data; None (default): use them.
  data.data_dir         tfds data folder for data.name (None: $TFDS_DATA_DIR, else
                        ~/tensorflow_datasets)
  data.sidd_dir, data.renoir_dir, data.nind_dir   manual folders for data.name=realnoise
  data.resize           resize every training image (and pair) to N×N first, bilinear
                        (the real-noise comparison: 256 with data.patch None: whole
                        images); None: as stored
  data.patch            random crop side; None or 0 for whole (equally sized) images
  data.batch            global batch (split over all devices of all hosts)
  data.augment          random flips / 90° rotations
  data.permute_channels a random order of the colour channels per crop
  data.download         allow TFDS to download (never by default: runs stay offline)
  data.num_threads, data.prefetch   grain reader threads and prefetch buffer
  noise                 noise spec added on the fly; real noisy/clean pairs (pairs:, tfds:
                        sidd|renoir|nind|paired_folder, data.name) use their noisy images and
                        the run records noise "real" (eval.noise likewise for pair eval data)
  noise_8bit_share      share of noisy training inputs clipped and rounded to 8 bits, as a
                        photo file holds them (0: all float)
  loss                  mse | l1 | charbonnier | bce
  conv                  convolution implementation of every model: auto (oneDNN custom calls
                        on CPU where built by `python -m denoise_jax.ops.build`, else XLA),
                        onednn, xla; same parameters and results either way
  optimizer.*           name (adam|adamw|adadelta|sgd), lr, schedule (constant|cosine|step|
                        plateau), warmup, clip_norm, weight_decay and per-optimizer knobs
  ema                   EMA decay of the parameters used for evaluation; None or 0: off
  num_steps             training steps; num_epochs (when set) overrides it
  log_every, eval_every, checkpoint_every, sample_every   in steps (0 = never)
  keep                  newest checkpoints kept (the best by val PSNR is kept too)
  eval.data, eval.noise, eval.crop (0/None: whole images), eval.resize (as data.resize),
                        eval.max_images (None: all), eval.samples (images in
                        samples/step_N.png)   periodic validation
  early_stop_patience   stop after N evaluations without a better val PSNR (None: never)
  distributed, coordinator_address, num_processes, process_id   multi-host (see train.py)
"""

from ml_collections import ConfigDict, config_dict


def get_config() -> ConfigDict:
    """The defaults: a blind colour Gaussian denoiser on the bundled photos."""
    config = ConfigDict()
    config.seed = 0
    config.model = ConfigDict({"name": "dncnn"})
    config.data = ConfigDict({
        "train": "skimage:train:rgb",
        "name": config_dict.placeholder(str),
        "data_dir": config_dict.placeholder(str),
        "sidd_dir": config_dict.placeholder(str),
        "renoir_dir": config_dict.placeholder(str),
        "nind_dir": config_dict.placeholder(str),
        "resize": config_dict.placeholder(int),
        "patch": config_dict.placeholder(int),
        "batch": 16,
        "augment": True,
        "permute_channels": False,
        "download": False,
        "num_threads": 2,
        "prefetch": 8,
    })
    config.data.patch = 64
    config.noise = "gaussian:0-55"
    config.noise_8bit_share = 0.0
    config.loss = "mse"
    config.conv = "auto"
    config.optimizer = ConfigDict({
        "name": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "warmup": 0,
        "clip_norm": config_dict.placeholder(float),
        "weight_decay": 0.0,
        "b1": 0.9, "b2": 0.999,  # adam / adamw
        "rho": 0.95, "eps": 1e-7,  # adadelta (Keras' values)
        "momentum": 0.9, "nesterov": False,  # sgd
        "end_factor": 0.0,  # cosine: final lr = lr * end_factor
        "step_every": config_dict.placeholder(int), "step_factor": 0.1,  # step
        "plateau_factor": 0.7, "plateau_patience": 3, "plateau_steps": 100,  # plateau
    })
    config.ema = config_dict.placeholder(float)
    config.num_steps = 10_000
    config.num_epochs = config_dict.placeholder(int)
    config.log_every = 100
    config.eval_every = 1000
    config.checkpoint_every = 1000
    config.checkpoint_every_minutes = 10.0  # also save every N minutes of training (0: off)
    config.init_from = config_dict.placeholder(str)  # new runs: pretrained:NAME or DIR[@best]
    # The denoiser (validation, eval, CLI, app) puts the noisy input's 16-px local means back
    # after the network (denoise_jax/local_means.py); only right for zero-mean noise.
    config.keep_means = False
    # The denoiser (eval, CLI, app; not validation) averages the network over this many
    # rotations/mirrors of each input: 1, 2, 4 or 8 (denoise_jax/ensemble.py).
    config.ensemble = 1
    config.sample_every = 1000
    config.keep = 3
    config.early_stop_patience = config_dict.placeholder(int)
    config.eval = ConfigDict({
        "data": "skimage:test:rgb",
        "noise": "gaussian:25",
        "crop": config_dict.placeholder(int),
        "resize": config_dict.placeholder(int),
        "max_images": config_dict.placeholder(int),
        "samples": 2,
    })
    config.distributed = False
    config.coordinator_address = config_dict.placeholder(str)
    config.num_processes = config_dict.placeholder(int)
    config.process_id = config_dict.placeholder(int)
    config.distributed_timeout = 300
    return config


def shrink(config: ConfigDict) -> ConfigDict:
    """The `:tiny` variant's common part: a few steps on small batches (tests, CI)."""
    config.num_steps = 4
    config.num_epochs = None
    config.log_every = 2
    config.eval_every = 4
    config.checkpoint_every = 2
    config.sample_every = 4
    config.data.batch = 4
    config.data.num_threads = 1
    config.data.prefetch = 2
    config.eval.max_images = 2
    config.eval.samples = 1
    return config
