"""Noise models: pure JAX functions of an explicit PRNG key (docs/reference.md#noise).

One spec grammar serves configs and the CLI alike (`parse`):

  gaussian:25                  AWGN, σ = 25/255, NOT clipped (the DnCNN/BM3D table convention)
  gaussian:0-55                AWGN, σ ~ U(0, 55)/255 drawn per image (blind), not clipped
  keras:0.5                    the Keras MNIST autoencoder's noise: x + 0.5·N(0, 1), clipped
  poisson:30                   Poisson(x·30)/30 (peak 30), not clipped
  poisson-gaussian:0.01,0.0002 x + N(0, a·x + b), a = 0.01, b = 0.0002 (Gaussian approx.)
  saltpepper:0.05              5 % of pixels (all channels of a pixel) set to 0 or 1, half each
  speckle:0.1                  x + x·N(0, 0.1) (multiplicative), not clipped
  camera                       realistic sRGB camera noise (Brooks et al., CVPR 2019), in [0, 1]

Images are `clean: [..., H, W, C] float32 in [0, 1]`: the last three axes are one image,
leading axes a batch; where a spec draws a level (gaussian ranges, camera) each image gets
its own. A model is a frozen (hashable) dataclass, so jitted code can close over it or take
it as a static argument. The families are rows of one table, `FAMILIES` (end of the file).

Camera pipeline (`unprocess`, `camera_noise`, `process`; after the paper's public code,
google-research/unprocessing):
  sRGB → inverse smoothstep tone curve → gamma 2.2 expansion → RGB→camera CCM (a random
  convex combination of 4 published XYZ→camera matrices times sRGB→XYZ, rows normalised)
  → inverse gains (rgb_gain = 1/N(0.8, 0.1), red U(1.9, 2.4), blue U(1.5, 1.9)) with the
  paper's highlight handling (the gains fade to 1 as the grey level goes from 0.9 to 1, so
  saturated pixels stay saturated) → RGGB mosaic;
  noise: log shot ~ U[log 1e-4, log 1.2e-2], log read = 2.18·log shot + 1.20 + N(0, 0.26),
  raw + N(0, raw·shot + read). `read` is a variance term, as in the paper's code
  (`variance = image * shot_noise + read_noise`); the noisy raw is clipped to the sensor
  range [0, 1];
  back: bilinear demosaic (a fixed 3×3 conv) → exact inverse of the highlight-safe gains
  → camera→RGB CCM → clip → gamma → smoothstep → clip to [0, 1].
Departures from the paper's code, all so that zero noise returns the input exactly (the
clean target then differs from the noisy input by the noise alone, as in real pairs):
  - the forward pass inverts the highlight-safe gains exactly and undoes rgb_gain (the
    paper applies plain white-balance gains, brightening near-white pixels, and leaves
    the brightening in);
  - the noise-free raw is not clipped (the paper clips it to [0, 1], losing the few
    saturated colours that the CCM maps slightly outside);
  - only the noise goes through the Bayer mosaic and demosaic (see `camera_noise`): the
    clean content stands for an already demosaiced ground truth, so bilinear
    interpolation error (25–30 dB on photos) is not passed off as noise.
`process` on a Bayer array does the full demosaic, for users who want it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from denoise_jax.errors import UserError

Array = jax.Array

# ---------------------------------------------------------------------------------------------
# The model object and the spec grammar.


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """A parsed noise spec; `model(key, clean) -> noisy`.

    Attributes:
      spec: the spec it was parsed from (stripped).
      kind: the family name ("gaussian", "keras", "poisson", ...).
      params: the family's numbers (e.g. (25.0,) for gaussian:25, (0.0, 55.0) for 0-55).
      sigma: the Gaussian std on the [0, 1] scale when the model has one fixed value
        (gaussian:25 → 25/255, keras:0.5 → 0.5, the std before clipping), else None.
      blind: True when the level is drawn per image (gaussian ranges, camera).
      description: one human line for tables and logs.
    """

    spec: str
    kind: str
    params: tuple[float, ...]
    sigma: float | None
    blind: bool
    description: str

    def __call__(self, key: Array, clean: Array) -> Array:
        """Adds noise. clean: [..., H, W, C] float32 in [0, 1] -> noisy, same shape, float32."""
        clean = jnp.asarray(clean, jnp.float32)
        if clean.ndim < 3:
            raise UserError(
                f"noise {self.spec!r}: images must be [..., H, W, C], got shape {clean.shape}"
            )
        return _apply(key, clean, self.kind, self.params)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _apply(key: Array, clean: Array, kind: str, params: tuple[float, ...]) -> Array:
    # Jitted here so that eager calls compile once per shape instead of op by op.
    return _APPLY[kind](key, clean, params)


def _bad(spec: str, reason: str) -> UserError:
    return UserError(f"bad noise spec {spec!r}: {reason}; valid forms: {spec_forms()}")


def _number(spec: str, text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(spec, f"{what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(spec, f"{what} must be finite, got {text.strip()!r}")
    return value


def _one_arg(spec: str, arg: str | None, what: str) -> float:
    if arg is None or not arg.strip():
        raise _bad(spec, f"missing the {what} after ':'")
    return _number(spec, arg, what)


def parse(spec: str) -> NoiseModel:
    """Parses a noise spec (module docstring) into a `NoiseModel`.

    Raises:
      UserError: naming the spec and listing the valid forms, if it is malformed.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "empty spec")
    spec = spec.strip()
    name, sep, arg = spec.partition(":")
    family = FAMILIES.get(name.strip().lower())
    if family is None:
        raise _bad(spec, f"unknown noise {name.strip().lower()!r}")
    return family.parse(spec, arg if sep else None)


def _parse_gaussian(spec: str, arg: str | None) -> NoiseModel:
    if arg is None or not arg.strip():
        raise _bad(spec, "missing the sigma after ':'")
    arg = arg.strip()
    dash = arg.find("-", 1)  # from 1: a leading '-' is a (rejected) negative sigma
    if dash > 0:
        lo = _number(spec, arg[:dash], "range start")
        hi = _number(spec, arg[dash + 1 :], "range end")
        if not 0 <= lo < hi:
            raise _bad(spec, "a range must be LO-HI with 0 <= LO < HI (0-255 scale)")
        return NoiseModel(
            spec, "gaussian_range", (lo, hi), None, True,
            f"additive white Gaussian noise, sigma ~ U({lo:g}, {hi:g})/255 per image "
            "(blind), not clipped",
        )
    sigma = _number(spec, arg, "sigma")
    if sigma < 0:
        raise _bad(spec, "sigma must be >= 0 (0-255 scale)")
    return NoiseModel(
        spec, "gaussian", (sigma,), sigma / 255.0, False,
        f"additive white Gaussian noise, sigma {sigma:g}/255, not clipped",
    )


def _parse_keras(spec: str, arg: str | None) -> NoiseModel:
    factor = _one_arg(spec, arg, "noise factor")
    if factor < 0:
        raise _bad(spec, "the noise factor must be >= 0")
    return NoiseModel(
        spec, "keras", (factor,), factor, False,
        f"x + {factor:g}*N(0,1) clipped to [0,1] (the Keras MNIST autoencoder's noise)",
    )


def _parse_poisson(spec: str, arg: str | None) -> NoiseModel:
    peak = _one_arg(spec, arg, "peak")
    if peak <= 0:
        raise _bad(spec, "the peak must be > 0")
    return NoiseModel(
        spec, "poisson", (peak,), None, False,
        f"Poisson noise, peak {peak:g}: Poisson(x*{peak:g})/{peak:g}, not clipped",
    )


def _parse_poisson_gaussian(spec: str, arg: str | None) -> NoiseModel:
    if arg is None or arg.count(",") != 1:
        raise _bad(spec, "needs two numbers A,B (variance = A*x + B)")
    a_text, b_text = arg.split(",")
    a, b = _number(spec, a_text, "A"), _number(spec, b_text, "B")
    if a < 0 or b < 0:
        raise _bad(spec, "A and B must be >= 0")
    return NoiseModel(
        spec, "poisson_gaussian", (a, b), None, False,
        f"Poisson-Gaussian noise, variance {a:g}*x + {b:g} (Gaussian approximation), "
        "not clipped",
    )


def _parse_saltpepper(spec: str, arg: str | None) -> NoiseModel:
    fraction = _one_arg(spec, arg, "fraction")
    if not 0 <= fraction <= 1:
        raise _bad(spec, "the fraction must be in [0, 1]")
    return NoiseModel(
        spec, "saltpepper", (fraction,), None, False,
        f"salt and pepper noise: {fraction:g} of pixels set to 0 or 1 (half each)",
    )


def _parse_speckle(spec: str, arg: str | None) -> NoiseModel:
    sigma = _one_arg(spec, arg, "sigma")
    if sigma < 0:
        raise _bad(spec, "sigma must be >= 0")
    return NoiseModel(
        spec, "speckle", (sigma,), None, False,
        f"speckle noise: x + x*N(0, {sigma:g}), not clipped",
    )


def _parse_camera(spec: str, arg: str | None) -> NoiseModel:
    if arg is not None:
        raise _bad(spec, "camera takes no arguments")
    return NoiseModel(
        spec, "camera", (), None, True,
        "realistic camera noise (Brooks et al. 2019 unprocessing): sRGB to raw, "
        "shot + read noise at a random level, back to sRGB",
    )


def add_noise(key: Array, clean: Array, spec: str) -> Array:
    """`parse(spec)(key, clean)`: clean [..., H, W, C] float32 in [0, 1] -> noisy, same shape."""
    return parse(spec)(key, clean)


def to_8bit(noisy: Array) -> Array:
    """What an 8-bit file holds of `noisy`: clipped to [0, 1] and rounded to 1/255."""
    return jnp.round(jnp.clip(noisy, 0.0, 1.0) * 255.0) / 255.0


def with_8bit_share(model: Callable[[Array, Array], Array],
                    share: float) -> Callable[[Array, Array], Array]:
    """`model`, with each image's noisy output passed through `to_8bit` with probability
    `share` (training on inputs as users' photo files hold them, beside float ones)."""
    if not 0.0 <= share <= 1.0:
        raise UserError(f"the 8-bit share must be in [0, 1], not {share}")

    def noisy(key: Array, clean: Array) -> Array:
        noise_key, pick_key = jax.random.split(key)
        out = model(noise_key, clean)
        pick = jax.random.uniform(pick_key, _per_image_shape(clean)) < share
        return jnp.where(pick, to_8bit(out), out)

    return noisy


# ---------------------------------------------------------------------------------------------
# Simple models. Each is `(key, clean [..., H, W, C] float32, params) -> noisy float32`.


def _per_image_shape(clean: Array) -> tuple[int, ...]:
    return clean.shape[:-3] + (1, 1, 1)


def _gaussian(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    (sigma,) = params
    return clean + (sigma / 255.0) * jax.random.normal(key, clean.shape, jnp.float32)


def _gaussian_range(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    lo, hi = params
    key_sigma, key_noise = jax.random.split(key)
    sigma = jax.random.uniform(key_sigma, _per_image_shape(clean), jnp.float32, lo, hi) / 255.0
    return clean + sigma * jax.random.normal(key_noise, clean.shape, jnp.float32)


def _keras(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    (factor,) = params
    noisy = clean + factor * jax.random.normal(key, clean.shape, jnp.float32)
    return jnp.clip(noisy, 0.0, 1.0)


def _poisson(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    (peak,) = params
    counts = jax.random.poisson(key, jnp.maximum(clean, 0.0) * peak, clean.shape)
    return counts.astype(jnp.float32) / peak


def _poisson_gaussian(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    a, b = params
    std = jnp.sqrt(jnp.maximum(a * clean + b, 0.0))
    return clean + std * jax.random.normal(key, clean.shape, jnp.float32)


def _saltpepper(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    (fraction,) = params
    key_hit, key_value = jax.random.split(key)
    pixel_shape = clean.shape[:-1] + (1,)  # one draw per pixel: all its channels flip together
    hit = jax.random.uniform(key_hit, pixel_shape) < fraction
    salt = jax.random.bernoulli(key_value, 0.5, pixel_shape).astype(jnp.float32)
    return jnp.where(hit, salt, clean)


def _speckle(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    (sigma,) = params
    return clean + clean * sigma * jax.random.normal(key, clean.shape, jnp.float32)


# ---------------------------------------------------------------------------------------------
# Camera noise: unprocess → raw noise → process (Brooks et al. 2019).

# XYZ → camera matrices of four cameras, as published with the paper's code.
XYZ2CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ],
    np.float32,
)
# Linear sRGB (D65) → XYZ.
RGB2XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    np.float32,
)
_HIGHLIGHT_START = 0.9  # grey level where the paper starts fading the inverse gains to 1


def random_ccm(key: Array) -> Array:
    """A random linear-sRGB → camera matrix [3, 3] (rows sum to 1)."""
    weights = jax.random.uniform(key, (XYZ2CAMS.shape[0], 1, 1), jnp.float32, 1e-8, 1.0)
    xyz2cam = jnp.sum(weights * XYZ2CAMS, axis=0) / jnp.sum(weights)
    rgb2cam = xyz2cam @ RGB2XYZ
    return rgb2cam / jnp.sum(rgb2cam, axis=-1, keepdims=True)


def random_gains(key: Array) -> tuple[Array, Array, Array]:
    """(rgb_gain, red_gain, blue_gain) scalars: brightening and white balance."""
    k_rgb, k_red, k_blue = jax.random.split(key, 3)
    # Clipped at ±4σ only so that a freak draw can never divide by ~0.
    inverse_rgb = jnp.clip(0.8 + 0.1 * jax.random.normal(k_rgb, ()), 0.4, 1.2)
    red = jax.random.uniform(k_red, (), jnp.float32, 1.9, 2.4)
    blue = jax.random.uniform(k_blue, (), jnp.float32, 1.5, 1.9)
    return 1.0 / inverse_rgb, red, blue


def random_noise_levels(key: Array) -> tuple[Array, Array]:
    """(shot, read): raw noise variance = raw·shot + read, from the paper's log-log line."""
    k_shot, k_read = jax.random.split(key)
    log_shot = jax.random.uniform(k_shot, (), jnp.float32, math.log(1e-4), math.log(1.2e-2))
    log_read = 2.18 * log_shot + 1.20 + 0.26 * jax.random.normal(k_read, ())
    return jnp.exp(log_shot), jnp.exp(log_read)


def _inverse_gains(meta: dict[str, Array]) -> Array:
    """Per-channel gains raw = camera_rgb · g (before highlight handling): [3]."""
    ones = jnp.ones_like(meta["red_gain"])
    return jnp.stack([1.0 / meta["red_gain"], ones, 1.0 / meta["blue_gain"]]) / meta["rgb_gain"]


def _safe_gains(grey: Array, gains: Array) -> Array:
    """The paper's highlight-safe inverse gains for pixels of grey level `grey` [..., 1]."""
    fade = (jnp.maximum(grey - _HIGHLIGHT_START, 0.0) / (1.0 - _HIGHLIGHT_START)) ** 2
    return jnp.maximum(fade + (1.0 - fade) * gains, gains)


def _apply_safe_gains(rgb: Array, gains: Array) -> Array:
    return rgb * _safe_gains(jnp.mean(rgb, axis=-1, keepdims=True), gains)


def _undo_safe_gains(raw: Array, gains: Array, iterations: int = 30) -> Array:
    """Inverts `_apply_safe_gains` per pixel: raw [..., 3] → camera RGB [..., 3].

    Below the highlight threshold the gains are plain; above it the pre-gain grey level s
    solves mean(raw / safe_gains(s)) = s, found by bisection (the left side falls with s).
    """
    plain = jnp.mean(raw / gains, axis=-1, keepdims=True)
    residual = lambda s: jnp.mean(raw / _safe_gains(s, gains), axis=-1, keepdims=True) - s

    def halve(_: int, bounds: tuple[Array, Array]) -> tuple[Array, Array]:
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = residual(mid) > 0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo = jnp.full_like(plain, _HIGHLIGHT_START)
    lo, hi = jax.lax.fori_loop(0, iterations, halve, (lo, jnp.maximum(plain, lo)))
    grey = jnp.where(plain <= _HIGHLIGHT_START, plain, 0.5 * (lo + hi))
    return raw / _safe_gains(grey, gains)


def mosaic(rgb: Array) -> Array:
    """RGGB Bayer planes of rgb: [H, W, 3] (H, W even) -> [H/2, W/2, 4] (R, Gr, Gb, B)."""
    return jnp.stack(
        [rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]], axis=-1
    )


_BILINEAR_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
_BILINEAR_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_DEMOSAIC_KERNEL = np.stack([_BILINEAR_RB, _BILINEAR_G, _BILINEAR_RB], axis=-1)  # [3, 3, 3]


def demosaic(bayer: Array) -> Array:
    """Bilinear demosaic: RGGB planes [h, w, 4] -> RGB [2h, 2w, 3].

    The sparse colour planes (zeros where a colour was not sampled) are filled by a fixed
    3×3 depthwise conv; reflect padding keeps the RGGB phase at the borders, so edge
    pixels interpolate from their real neighbours.
    """
    h, w, _ = bayer.shape
    zero = jnp.zeros_like(bayer[..., 0])
    red, green_r, green_b, blue = (bayer[..., i] for i in range(4))

    def tile(top_left: Array, top_right: Array, bottom_left: Array, bottom_right: Array) -> Array:
        top = jnp.stack([top_left, top_right], axis=-1).reshape(h, 2 * w)
        bottom = jnp.stack([bottom_left, bottom_right], axis=-1).reshape(h, 2 * w)
        return jnp.stack([top, bottom], axis=1).reshape(2 * h, 2 * w)

    sparse = jnp.stack(
        [tile(red, zero, zero, zero), tile(zero, green_r, green_b, zero),
         tile(zero, zero, zero, blue)],
        axis=-1,
    )
    padded = jnp.pad(sparse, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    kernel = jnp.asarray(_DEMOSAIC_KERNEL, bayer.dtype)[:, :, None, :]  # HWIO, depthwise
    out = jax.lax.conv_general_dilated(
        padded[None], kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=3, precision=jax.lax.Precision.HIGHEST,
    )
    return out[0]


def _inverse_3x3(m: Array) -> Array:
    # Adjugate over determinant: exact enough for these well-conditioned CCMs, and far
    # cheaper to compile than a general LU-based inverse.
    cofactors = jnp.stack([jnp.cross(m[1], m[2]), jnp.cross(m[2], m[0]), jnp.cross(m[0], m[1])])
    return cofactors.T / jnp.dot(m[0], cofactors[0])


def _inverse_smoothstep(x: Array) -> Array:
    x = jnp.clip(x, 0.0, 1.0)
    return 0.5 - jnp.sin(jnp.arcsin(1.0 - 2.0 * x) / 3.0)


def _smoothstep(x: Array) -> Array:
    return 3.0 * x**2 - 2.0 * x**3


@functools.partial(jax.jit, static_argnames="bayer")
def unprocess(key: Array, srgb: Array, *, bayer: bool = True) -> tuple[Array, dict[str, Array]]:
    """sRGB image -> realistic raw, with randomly drawn camera metadata.

    Args:
      key: PRNG key for the CCM and gains.
      srgb: [H, W, 3] float32 in [0, 1]; H and W even when `bayer`.
      bayer: mosaic the result (the default); False keeps full camera RGB (for tests).

    Returns:
      (raw, meta): raw [H/2, W/2, 4] RGGB planes (or [H, W, 3] camera RGB), linear, not
      clipped; meta {"rgb2cam", "cam2rgb": [3, 3], "rgb_gain", "red_gain", "blue_gain": []}.
    """
    srgb = jnp.asarray(srgb, jnp.float32)
    if srgb.ndim != 3 or srgb.shape[-1] != 3:
        raise UserError(f"camera noise needs RGB images [H, W, 3], got shape {srgb.shape}")
    if bayer and (srgb.shape[0] % 2 or srgb.shape[1] % 2):
        raise UserError(f"unprocess needs even H and W for the Bayer mosaic, got {srgb.shape}")
    key_ccm, key_gains = jax.random.split(key)
    rgb2cam = random_ccm(key_ccm)
    rgb_gain, red_gain, blue_gain = random_gains(key_gains)
    meta = {
        "rgb2cam": rgb2cam,
        "cam2rgb": _inverse_3x3(rgb2cam),
        "rgb_gain": rgb_gain,
        "red_gain": red_gain,
        "blue_gain": blue_gain,
    }
    linear = jnp.maximum(_inverse_smoothstep(srgb), 1e-8) ** 2.2
    camera = linear @ rgb2cam.T
    raw = _apply_safe_gains(camera, _inverse_gains(meta))
    return (mosaic(raw) if bayer else raw), meta


@jax.jit
def process(raw: Array, meta: dict[str, Array]) -> Array:
    """Raw -> sRGB, the inverse of `unprocess` (up to the demosaic).

    Args:
      raw: [h, w, 4] RGGB planes (demosaiced to [2h, 2w, 3]) or [H, W, 3] camera RGB.
      meta: as returned by `unprocess`.

    Returns:
      srgb: [H, W, 3] float32 in [0, 1].
    """
    rgb = demosaic(raw) if raw.shape[-1] == 4 else raw
    camera = _undo_safe_gains(rgb, _inverse_gains(meta))
    linear = jnp.clip(camera @ meta["cam2rgb"].T, 0.0, 1.0)
    srgb = _smoothstep(jnp.maximum(linear, 1e-8) ** (1.0 / 2.2))
    return jnp.clip(srgb, 0.0, 1.0)


@jax.jit
def camera_noise(key: Array, srgb: Array, shot: Array | float, read: Array | float) -> Array:
    """Camera noise at given levels on one image: srgb [H, W, 3] in [0, 1] -> noisy, same shape.

    The raw noise is drawn at the RGGB sites (variance raw·shot + read), clipped to the
    sensor range [0, 1], bilinearly demosaiced and added to the full camera-RGB image, which
    then goes through `process`: the noise gets a demosaic's spatial correlation while the
    clean content is not re-interpolated (it stands for an already demosaiced ground truth,
    as in real noisy/clean pairs), so shot = read = 0 returns the input. Any H, W (odd
    sizes are edge-padded, then cropped).
    """
    key_meta, key_noise = jax.random.split(key)
    h, w, _ = srgb.shape
    padded = jnp.pad(srgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    camera, meta = unprocess(key_meta, padded, bayer=False)
    raw = mosaic(camera)
    std = jnp.sqrt(jnp.maximum(raw * shot + read, 0.0))
    noisy_raw = raw + std * jax.random.normal(key_noise, raw.shape)
    # Sensor range, widened to include the clean value so that zero noise changes nothing.
    noisy_raw = jnp.clip(noisy_raw, jnp.minimum(raw, 0.0), jnp.maximum(raw, 1.0))
    return process(camera + demosaic(noisy_raw - raw), meta)[:h, :w]


def _camera_one(key: Array, image: Array) -> Array:
    key_level, key_noise = jax.random.split(key)
    shot, read = random_noise_levels(key_level)
    return camera_noise(key_noise, image, shot, read)


def _camera(key: Array, clean: Array, params: tuple[float, ...]) -> Array:
    del params
    if clean.shape[-1] != 3:
        raise UserError(
            f"camera noise needs RGB images (C=3), got C={clean.shape[-1]}: "
            "use another noise spec for grey images, e.g. gaussian:25"
        )
    images = clean.reshape((-1,) + clean.shape[-3:])
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(_camera_one)(keys, images).reshape(clean.shape)


# ---------------------------------------------------------------------------------------------
# The registry: one row per noise family. A new family is its functions above and a row here;
# `parse`, the CLI's help, error messages and the web page's controls all read this table.


@dataclasses.dataclass(frozen=True)
class Control:
    """How the web page sets a family's level: a slider (label, lo, hi, default; `key` names
    its widget state), or none (`label` None: the family has no level; `caption` says so)."""

    label: str | None
    lo: float = 0.0
    hi: float = 0.0
    default: float = 0.0
    key: str = ""
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Family:
    """A noise family: `NAME[:ARGS]` specs.

    form: the spec's grammar for messages ("poisson:PEAK (e.g. poisson:30)").
    example: a typical spec (CLI help).
    parse: (spec, the text after ':' or None) -> NoiseModel; a `UserError` via `_bad`.
    apply: {NoiseModel.kind: (key, clean [..., H, W, C], params) -> noisy} of its models.
    control: its control on the web page, or None when the page does not offer it.
    """

    name: str
    form: str
    examples: tuple[str, ...]
    parse: Callable[[str, str | None], NoiseModel]
    apply: dict[str, Callable[[Array, Array, tuple[float, ...]], Array]]
    control: Control | None = None


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("gaussian", "gaussian:SIGMA (0-255 scale, e.g. gaussian:25), gaussian:LO-HI "
           "(blind, e.g. gaussian:0-55)", ("gaussian:25", "gaussian:0-55"), _parse_gaussian,
           {"gaussian": _gaussian, "gaussian_range": _gaussian_range},
           Control("σ (0–255 scale)", 1, 100, 25, "sigma255")),
    Family("keras", "keras:FACTOR (e.g. keras:0.5)", ("keras:0.5",), _parse_keras,
           {"keras": _keras}),
    Family("poisson", "poisson:PEAK (e.g. poisson:30)", ("poisson:30",), _parse_poisson,
           {"poisson": _poisson}, Control("Peak photon count (lower = noisier)", 1, 200, 30,
                                                "peak")),
    Family("poisson-gaussian", "poisson-gaussian:A,B (e.g. poisson-gaussian:0.01,0.0002)",
           ("poisson-gaussian:0.01,0.0002",), _parse_poisson_gaussian,
           {"poisson_gaussian": _poisson_gaussian}),
    Family("saltpepper", "saltpepper:FRACTION (e.g. saltpepper:0.05)", ("saltpepper:0.05",),
           _parse_saltpepper, {"saltpepper": _saltpepper},
           Control("Fraction of pixels hit", 0.01, 0.5, 0.05, "sp")),
    Family("speckle", "speckle:SIGMA (e.g. speckle:0.1)", ("speckle:0.1",), _parse_speckle,
           {"speckle": _speckle}, Control("Speckle σ", 0.01, 0.5, 0.1, "speckle")),
    Family("camera", "camera", ("camera",), _parse_camera, {"camera": _camera},
           Control(None, caption="Camera: sRGB → raw, shot + read noise, back to sRGB "
                   "(random level).")),
)}
_APPLY = {kind: fn for family in FAMILIES.values() for kind, fn in family.apply.items()}


def spec_forms() -> str:
    """Every family's spec grammar, for messages."""
    return ", ".join(f.form for f in FAMILIES.values())


def examples() -> str:
    """One example spec or two per family, for help texts."""
    return ", ".join(e for f in FAMILIES.values() for e in f.examples)


SPEC_FORMS = spec_forms()
