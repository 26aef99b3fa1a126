"""2-D convolution for NHWC inputs and HWIO kernels, with a oneDNN path on CPU.

`conv2d(x, w, ...)` is `lax.conv_general_dilated` with flax's layouts. With impl "onednn" or
"auto" it runs oneDNN's forward, backward-data and backward-weights convolutions as XLA FFI
custom calls (a `jax.custom_vjp` picks the right one for each), when the library built by
`python -m denoise_jax.ops.build` loads and the case is supported; otherwise, and always
for impl "xla", it is XLA's own convolution. The fallback is silent: results agree to
float32 rounding either way.

Why: on CPU, XLA's convolution weight gradient is 2-4x slower than oneDNN's (DnCNN's
64->64 3x3 layer at 16x64x64: ~55-70 vs ~28-40 ms on 2 cores) and its depthwise
convolutions ~30x slower (NAFNet), which made CPU training slower than PyTorch.

Multi-device: a custom call is opaque to XLA's SPMD partitioner, so each oneDNN op is
wrapped in `custom_partitioning` that keeps the batch sharding (weights replicated) and
sums the weight gradient over the batch axes; it needs no mesh context.
"""

import ctypes
import dataclasses
import functools
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from denoise_jax.ops import build as _build

IMPLS = ("xla", "onednn", "auto")
_TARGETS = {"fwd": "DjConvFwd", "bwd_data": "DjConvBwdData", "bwd_weights": "DjConvBwdWeights"}
_DIMS = ("NHWC", "HWIO", "NHWC")

Padding = str | Sequence[tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """Static description of one convolution (hashable: a custom_vjp non-diff argument)."""

    strides: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    groups: int


# ---------------------------------------------------------------------------------------------
# Loading the library.

_lock = threading.Lock()
_state: dict = {}


def _load() -> str | None:
    """Loads and registers the custom calls once; returns None on success, else the reason."""
    with _lock:
        if "error" in _state:
            return _state["error"]
        _state["error"] = _try_load()
        return _state["error"]


def _try_load() -> str | None:
    if os.environ.get("DENOISE_JAX_NO_ONEDNN"):
        return "disabled by DENOISE_JAX_NO_ONEDNN"
    if not _build.LIBRARY.exists():
        return "library not built (run: python -m denoise_jax.ops.build)"
    try:
        info = json.loads(_build.INFO.read_text())
    except (OSError, ValueError):
        info = {}
    _prepare_runtime(Path(info.get("onednn_lib", sys.prefix + "/lib")), info.get("runtime"))
    try:
        lib = ctypes.CDLL(str(_build.LIBRARY))
        message = ctypes.create_string_buffer(512)
        if lib.DjOnednnProbe(message, 512) != 0:
            return f"oneDNN could not start: {message.value.decode(errors='replace')}"
        for name, symbol in _TARGETS.items():
            jax.ffi.register_ffi_target(f"dj_onednn_{name}",
                                        jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
    except (OSError, AttributeError) as e:
        return f"library failed to load: {e}"
    _state["lib"] = lib
    return None


def _prepare_runtime(lib_dir: Path, runtime: str | None) -> None:
    """Environment oneDNN's runtime reads when it starts (never overriding the user's).

    The Intel `onednn` wheel runs its CPU engine through SYCL on the OpenCL CPU runtime
    it ships, which the OpenCL loader finds only through OCL_ICD_FILENAMES. OpenMP
    builds: idle OpenMP threads spinning between calls would steal the cores XLA's own
    threads need next.
    """
    ocl = str(lib_dir / "libintelocl.so")
    if os.path.exists(ocl):
        current = os.environ.get("OCL_ICD_FILENAMES", "")
        if ocl not in current.split(":"):
            os.environ["OCL_ICD_FILENAMES"] = f"{current}:{ocl}" if current else ocl
    if runtime == "omp":
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def available() -> bool:
    """True when the oneDNN custom calls are built, load, and the default backend is CPU."""
    return jax.default_backend() == "cpu" and _load() is None


def unavailable_reason() -> str | None:
    """Why `available()` is False (one line), or None when it is True."""
    if jax.default_backend() != "cpu":
        return f"default backend is {jax.default_backend()}, not cpu"
    return _load()


# ---------------------------------------------------------------------------------------------
# Which cases go to oneDNN.


def make_spec(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
              padding: Padding, dilation: Sequence[int], groups: int) -> ConvSpec:
    """A ConvSpec with explicit (low, high) padding, as XLA resolves "SAME"/"VALID"."""
    strides, dilation = tuple(int(s) for s in strides), tuple(int(d) for d in dilation)
    if isinstance(padding, str):
        dilated = [(k - 1) * d + 1 for k, d in zip(w_shape[:2], dilation, strict=True)]
        pads = lax.padtype_to_pads(tuple(x_shape[1:3]), dilated, strides, padding)
    else:
        pads = padding
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    return ConvSpec(strides, pads, dilation, int(groups))


def supported(x: jax.Array, w: jax.Array, spec: ConvSpec, impl: str) -> bool:
    """Whether this convolution runs on oneDNN under `impl`.

    "onednn" and "auto" currently select the same cases: every float32 2-D convolution
    with non-negative padding, when the library is available on CPU. Measured against
    XLA on 2 cores (3x3 64->64 and 3->64 / 64->3, 1x1, 2x2 stride 2, grouped, depthwise)
    oneDNN's forward + both gradients were never slower in sum, and far faster for the
    weight gradient (2-4x) and depthwise convolutions (~30x).
    """
    if impl == "xla" or x.ndim != 4 or w.ndim != 4:
        return False
    if x.dtype != jnp.float32 or w.dtype != jnp.float32:
        return False
    if any(lo < 0 or hi < 0 for lo, hi in spec.padding) or min(spec.strides) < 1:
        return False
    if x.shape[3] != w.shape[2] * spec.groups or w.shape[3] % spec.groups:
        return False
    if min(x.shape) == 0 or min(w.shape) == 0 or min(_out_tail(x.shape, w.shape, spec)) < 1:
        return False
    return available()


# ---------------------------------------------------------------------------------------------
# The custom calls.

# Activation memory format per op: 0 = NHWC as given, 1 = oneDNN's choice (blocked, with
# reorders). Measured inside XLA (DnCNN-17 step and NAFNet's layers): NHWC is as fast or
# faster everywhere; blocked formats lose most on few channels (3->64: 2x slower dx).
LAYOUT = {"fwd": 0, "bwd_data": 0, "bwd_weights": 0}


def _params(spec: ConvSpec, layout: int) -> np.ndarray:
    (pt, pb), (pl, pr) = spec.padding
    return np.array([*spec.strides, pt, pb, pl, pr, *spec.dilation, spec.groups, layout],
                    np.int64)


def _local(op: str, spec: ConvSpec, tail: tuple[int, ...]):
    """The custom call `op` on one device's arrays: fn(a, b) -> output.

    `tail` is the output shape without the batch dim (the whole kernel shape for dw)."""
    params = _params(spec, LAYOUT[op])

    def fn(a: jax.Array, b: jax.Array) -> jax.Array:
        shape = tail if op == "bwd_weights" else (a.shape[0], *tail)
        call = jax.ffi.ffi_call(f"dj_onednn_{op}", jax.ShapeDtypeStruct(shape, jnp.float32),
                                vmap_method="sequential")
        return call(a, b, params=params)

    return fn


def _batch_axes(sharding, batch: int):
    """Mesh axes the batch dim is sharded over (None: replicated) when it divides evenly."""
    if not isinstance(sharding, NamedSharding) or not sharding.spec:
        return None
    axes = sharding.spec[0]
    if axes is None:
        return None
    names = axes if isinstance(axes, tuple) else (axes,)
    size = int(np.prod([sharding.mesh.shape[a] for a in names]))
    return axes if size > 1 and batch % size == 0 else None


_RULES = {
    "fwd": "b h w c, k l i o -> b p q o",
    "bwd_data": "b p q o, k l i o -> b h w c",
    "bwd_weights": "b h w c, b p q o -> k l i o",
}


def _replicated_factors(rule: str) -> tuple[str, ...]:
    """Every factor but the batch, in order of first appearance (as Shardy requires)."""
    seen = dict.fromkeys(rule.replace(",", " ").replace("->", " ").split())
    return tuple(f for f in seen if f != "b")


@functools.cache
def _partitioned(op: str, spec: ConvSpec, tail: tuple[int, ...]):
    """`_local` wrapped so each device convolves its own batch shard."""
    fn = _local(op, spec, tail)
    weights_grad = op == "bwd_weights"

    def shardings(mesh, arg_shapes):
        sharding = arg_shapes[0].sharding
        axes = _batch_axes(sharding, arg_shapes[0].shape[0])
        mesh = sharding.mesh if isinstance(sharding, NamedSharding) else mesh
        batch = NamedSharding(mesh, P(axes))
        replicated = NamedSharding(mesh, P())
        args = (batch, batch) if weights_grad else (batch, replicated)
        return mesh, axes, args, (replicated if weights_grad else batch)

    def infer(mesh, arg_shapes, result_shape):
        del result_shape
        return shardings(mesh, arg_shapes)[3]

    def partition(mesh, arg_shapes, result_shape):
        del result_shape
        mesh, axes, args, result = shardings(mesh, arg_shapes)

        def lower(a, b):
            out = fn(a, b)
            return lax.psum(out, axes) if weights_grad and axes is not None else out

        return mesh, lower, result, args

    wrapped = custom_partitioning(fn)
    wrapped.def_partition(
        partition=partition, infer_sharding_from_operands=infer,
        sharding_rule=_RULES[op],
        reduction_factors=("b",) if weights_grad else (),
        need_replication_factors=_replicated_factors(_RULES[op]))
    return wrapped


def _op(op: str, spec: ConvSpec, tail: tuple[int, ...], a: jax.Array, b: jax.Array) -> jax.Array:
    if jax.device_count() > 1:
        return _partitioned(op, spec, tail)(a, b)
    return _local(op, spec, tail)(a, b)


def _out_tail(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
              spec: ConvSpec) -> tuple[int, int, int]:
    (pt, pb), (pl, pr) = spec.padding
    size = [(n + lo + hi - ((k - 1) * d + 1)) // s + 1 for n, lo, hi, k, d, s in zip(
        x_shape[1:3], (pt, pl), (pb, pr), w_shape[:2], spec.dilation, spec.strides,
        strict=True)]
    return size[0], size[1], w_shape[3]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _onednn_conv(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    return _op("fwd", spec, _out_tail(x.shape, w.shape, spec), x, w)


def _onednn_conv_fwd(x, w, spec):
    return _onednn_conv(x, w, spec), (x, w)


def _onednn_conv_bwd(spec, residuals, dy):
    x, w = residuals
    dx = _op("bwd_data", spec, tuple(x.shape[1:]), dy, w)
    dw = _op("bwd_weights", spec, tuple(w.shape), x, dy)
    return dx, dw


_onednn_conv.defvjp(_onednn_conv_fwd, _onednn_conv_bwd)


# ---------------------------------------------------------------------------------------------
# Public entry point.


def xla_conv2d(x: jax.Array, w: jax.Array, spec: ConvSpec) -> jax.Array:
    """XLA's convolution of x: [N, H, W, Cin] with w: [kh, kw, Cin/G, Cout]."""
    return lax.conv_general_dilated(x, w, spec.strides, spec.padding,
                                    rhs_dilation=spec.dilation, dimension_numbers=_DIMS,
                                    feature_group_count=spec.groups)


def conv2d(x: jax.Array, w: jax.Array, *, strides: Sequence[int] = (1, 1),
           padding: Padding = "SAME", rhs_dilation: Sequence[int] = (1, 1),
           feature_group_count: int = 1, impl: str = "auto") -> jax.Array:
    """2-D convolution of x: [N, H, W, Cin] with w: [kh, kw, Cin/G, Cout] -> [N, Ho, Wo, Cout].

    Same results as `lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=...,
    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=...)`, differentiable
    in x and w. `padding`: "SAME", "VALID" or ((top, bottom), (left, right)). `impl`: "xla",
    "onednn" (oneDNN wherever it supports the case: float32, non-negative padding) or
    "auto" (oneDNN only where it measured faster); either falls back to XLA silently.
    """
    if impl not in IMPLS:
        raise ValueError(f"conv impl must be one of {IMPLS}, got {impl!r}")
    spec = make_spec(x.shape, w.shape, strides, padding, rhs_dilation, feature_group_count)
    if supported(x, w, spec, impl):
        return _onednn_conv(x, w, spec)
    return xla_conv2d(x, w, spec)
