"""Model size and cost without allocating weights: parameter counts and multiply-accumulates.

Everything is traced abstractly (`jax.eval_shape`), so even the real-noise comparison's
291M-parameter PRIDNet is summarised in seconds with no memory for its weights.

`gmacs` counts the multiply-accumulates of every convolution, transposed convolution and
dense layer (the convention of the papers' "GMACs"/"FLOPs" columns), read from the kernel
and activation shapes while the model is traced. `xla_gflops` is XLA's own estimate of the
unoptimised program: a MAC counts two flops, every elementwise op one, and products with
'same' padding zeros are left out. It covers operations the layer count cannot see (e.g. a
hand-written einsum) and serves as a cross-check: for conv nets `xla_gflops / 2` is within a
few per cent of `gmacs` (DnCNN-17 colour at 256²: 36.41 vs 36.47).
"""

import inspect
import math
from collections.abc import Iterable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from denoise_jax.models import layers, registry

_TRANSPOSED = (nn.ConvTranspose, layers.ConvTranspose)


def _layer_macs(module: nn.Module, inputs: Any, output: Any) -> int:
    """MACs of one call of a module with a `kernel` parameter (conv, transposed conv, dense)."""
    kernel = module.get_variable("params", "kernel")
    if kernel is None or not hasattr(output, "shape"):
        return 0
    # A transposed conv does one kernel-sized update per *input* position; conv and dense do
    # one kernel-window dot product per output position (kernel already divided by groups).
    positions = inputs.shape[:-1] if isinstance(module, _TRANSPOSED) else output.shape[:-1]
    return math.prod(positions) * math.prod(kernel.shape)


def _trace(model: nn.Module, shape: tuple[int, ...]) -> tuple[Any, int]:
    """Abstract variables of `model` for input `shape` and the MACs of one forward pass."""
    macs = []

    def count(next_fun, args, kwargs, context):
        output = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name == "__call__" and args and module.has_variable("params", "kernel"):
            macs.append(_layer_macs(module, args[0], output))
        return output

    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    with nn.intercept_methods(count):
        variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return variables, sum(macs)


def _xla_flops(model: nn.Module, variables: Any, shape: tuple[int, ...]) -> float:
    """XLA's flop estimate for one forward pass (the lowered, unoptimised program)."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    # XLA cannot count inside oneDNN custom calls: lower with its own convolutions.
    with layers.conv_impl("xla"):
        lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x)
    cost = lowered.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def summarize(name: str, shape: tuple[int, ...] = (1, 256, 256, 3), **kwargs) -> dict:
    """Size and cost of model `name` (built with `kwargs`) on an input of `shape` [B, H, W, C].

    Returns {"name", "shape", "params" (int, the `params` collection only, not BN
    statistics), "gmacs" (conv/dense multiply-accumulates, 1e9), "xla_gflops" (XLA's
    estimate, 1e9)}. Nothing is allocated: shapes only.
    """
    model = registry.get_model(name, **kwargs)
    variables, macs = _trace(model, tuple(shape))
    params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables.get("params", {})))
    return {
        "name": name,
        "shape": tuple(shape),
        "params": int(params),
        "gmacs": macs / 1e9,
        "xla_gflops": _xla_flops(model, variables, tuple(shape)) / 1e9,
    }


def describe(name: str) -> str:
    """First line of the docstring of the factory or module class registered as `name`."""
    # The factory's docstring is the one that tells presets such as `nafnet_tiny` apart
    # from the class they build.
    doc = inspect.getdoc(registry.factory(name))
    return doc.strip().splitlines()[0] if doc else ""


def table(names: Iterable[str], shape: tuple[int, ...] = (1, 256, 256, 3)) -> str:
    """A markdown table of the models `names`: name, params (M), GMACs at `shape`, description.

    A model whose size depends on its input size and which declares the size it was made
    for (`summary_shape`, e.g. dae_dense: [1, 28, 28, 1]) is measured on that size instead,
    and its GMACs cell says so.
    """
    rows = [
        f"| model | params (M) | GMACs @{shape[1]}×{shape[2]}×{shape[3]} | description |",
        "|---|---:|---:|---|",
    ]
    for name in names:
        at = tuple(getattr(registry.get_model(name), "summary_shape", None) or shape)
        info = summarize(name, at)
        note = "" if at == tuple(shape) else f" (@{at[1]}×{at[2]}×{at[3]})"
        rows.append(
            f"| {name} | {info['params'] / 1e6:.3f} | {info['gmacs']:.4g}{note} | "
            f"{describe(name)} |"
        )
    return "\n".join(rows)
