"""Classical methods (denoise_jax.baselines): the project's NLM/BM3D and their peers.

Runs in the JAX worker for the project's method and in the peer worker for the peer
(e.g. OpenCV's NLM), so each gets its own process with the same cores. Imports no JAX.
"""

from __future__ import annotations

from typing import Any

from benchmarks import common


def measure_method(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Seconds per size² noisy photo for the classical method `name` (sigma given)."""
    from denoise_jax import baselines

    method = baselines.get_baseline(name)
    image = common.photo(spec["size"], spec["channels"])
    method(image[:64, :64], spec["sigma"])  # imports and first-call set-up, untimed
    result = common.measure(lambda: method(image, spec["sigma"]), warmup=0,
                            **common.budget(spec))
    result["warmup"] = "1 call on 64²"
    return result


HANDLERS = {"baseline": lambda spec: measure_method(spec["peer"], spec)}
