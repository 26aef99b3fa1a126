"""The real-noise comparison's PRIDNet (`pridnet_realnoise`, ~291M parameters, five 64…1024 U-Nets).

The comparison's protocol and data options exactly as experiments/realnoise_rednet.py (whole
images resized to 256×256, flips/rot90, batch 4, MSE, Adam 3e-5, ReduceLROnPlateau(0.7, 3),
early stopping 10, 100 epochs = 6,025 steps). Default data: the colour scikit-image photos
with synthetic camera noise, NOT the comparison's real pairs; real pairs with
`--config.data.name=realnoise --config.data.sidd_dir=... --config.data.renoir_dir=...
--config.data.nind_dir=...`.

The comparison also puts an L2 penalty of 1e-3 on the U-Net and kernel-selection conv kernels.
Here `optimizer.weight_decay = 2e-3` adds 2e-3·w to every gradient before Adam, which is
the gradient of that penalty (1e-3·Σw²), but on all parameters (the U-Nets hold 99.9 %).

Args: "tiny" (4 features, 2-level U-Nets, 32×32 images, for tests), "cpu" (short CPU-sized
run: 8 features, 4-level U-Nets, 64×64 images, 1,000 steps).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import sibling


def get_config(arg: str | None = None) -> ConfigDict:
    config = sibling(__file__, "realnoise_rednet").realnoise_config(
        {"name": "pridnet_realnoise", "features": 64, "attention_hidden": 2, "unet_levels": 5}, arg,
        tiny_model={"name": "pridnet_realnoise", "features": 4, "unet_levels": 2},
        cpu_model={"name": "pridnet_realnoise", "features": 8, "unet_levels": 4},
        who="realnoise_pridnet",
    )
    config.optimizer.weight_decay = 2e-3  # the comparison's L2 1e-3 (see the docstring)
    return config
