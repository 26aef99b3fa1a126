"""The Keras MNIST autoencoder's conv variant (Keras blog).

Conv32-pool-Conv32-pool / Conv32-up-Conv32-up-Conv1.

Trained as the dense autoencoder (`mnist_dae.py`): BCE, Adadelta lr 1.0 (the old Keras meaning,
see there), its epochs (300 on mnist_5k; see there), batch 128, noise keras:0.5, the
embedded mnist_5k digits.
Args: "tiny", "tfds" (as in mnist_dae.py).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import parse_arg, sibling


def get_config(arg: str | None = None) -> ConfigDict:
    config = sibling(__file__, "mnist_dae").get_config(arg)
    config.model = ConfigDict({"name": "dae_conv", "features": 32})
    if parse_arg(arg, "mnist_dae_conv", flags=("tfds",)).tiny:
        config.model.features = 4
    return config
