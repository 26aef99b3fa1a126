"""The real-noise comparison's 4-level MWCNN (`mwcnn_realnoise`, blocks 64…512, unscaled Haar).

The comparison's protocol and data options exactly as experiments/realnoise_rednet.py (whole
images resized to 256×256, flips/rot90, batch 4, MSE, Adam 3e-5, ReduceLROnPlateau(0.7, 3),
early stopping 10, 100 epochs = 6,025 steps). Default data: the colour scikit-image photos
with synthetic camera noise, NOT the comparison's real pairs; real pairs with
`--config.data.name=realnoise --config.data.sidd_dir=... --config.data.renoir_dir=...
--config.data.nind_dir=...`. 58.8M parameters.

Args: "tiny" (4-feature model, one conv per block, 32×32 images, for tests), "cpu" (short
CPU-sized run: 8 features, 64×64 images, 1,000 steps).
"""

from ml_collections import ConfigDict

from denoise_jax.configs import sibling


def get_config(arg: str | None = None) -> ConfigDict:
    return sibling(__file__, "realnoise_rednet").realnoise_config(
        {"name": "mwcnn_realnoise", "features": 64, "convs_per_block": 3}, arg,
        tiny_model={"name": "mwcnn_realnoise", "features": 4, "convs_per_block": 1},
        cpu_model={"name": "mwcnn_realnoise", "features": 8, "convs_per_block": 3},
        who="realnoise_mwcnn",
    )
