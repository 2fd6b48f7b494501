"""Input validation and conversion shared by every metric.

Public convention: images are float in [0, 1] (or uint8 0..255) of shape (N, H, W, C)
with C = 3 (RGB) or C = 1 (grey, where the metric is defined on luminance); a single
(H, W, C) image counts as N = 1. The MATLAB originals work on doubles holding 0..255, so
`prepare_pair` returns both images scaled to 0..255 in a float dtype.

Shape checks are static and always run. Value checks (NaN/inf, range) need concrete
values, so they run when the metric is called eagerly with NumPy/JAX arrays and are
skipped under `jax.jit`/`vmap`/`grad` tracing.
"""
from __future__ import annotations

from typing import Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.ops import color

ColorMode = Literal["luma", "rgb2gray", "rgb2gray_uint8", "per_channel"]
COLOR_MODES = ("luma", "rgb2gray", "rgb2gray_uint8", "per_channel")
# What the MATLAB codes of the grey metrics (ssim.m, msssim.m, iwssim.m, GMSD.m) see when
# they are run on RGB files: `imread` gives uint8, and `rgb2gray` of a uint8 image is
# uint8 (rounded half away from zero). GMSD of the official code on RGB TID2013 pairs is
# reproduced to about 1e-5 only with this rounding; unrounded luma differs by up to 50%
# on near-identical pairs. The other modes remain options.
DEFAULT_COLOR_MODE: ColorMode = "rgb2gray_uint8"


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _check_values(x, name: str, role: str) -> None:
  if not _is_concrete(x):
    return
  if isinstance(x, jax.Array):
    if x.dtype == jnp.uint8:
      return
    # Reduce on the device and fetch three scalars, not the whole batch.
    finite, lo, hi = jax.device_get((jnp.all(jnp.isfinite(x)), jnp.min(x), jnp.max(x)))
  else:
    a = np.asarray(x)
    if a.dtype == np.uint8:
      return
    finite, lo, hi = np.all(np.isfinite(a)), a.min(), a.max()
  if not finite:
    raise ValueError(f"{name}: {role} image contains NaN or inf values")
  lo, hi = float(lo), float(hi)
  if lo < -1e-6 or hi > 1 + 1e-6:
    raise ValueError(
        f"{name}: {role} image values must lie in [0, 1] for float input (got min "
        f"{lo:.4g}, max {hi:.4g}); pass uint8 for 0..255 images or divide by 255")


def _to_0_255(x, name: str, role: str) -> jnp.ndarray:
  dtype = jnp.result_type(x)
  if dtype == jnp.uint8:
    return jnp.asarray(x).astype(jnp.result_type(float))
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name}: {role} image must be float in [0, 1] or uint8, got {dtype}")
  x = jnp.asarray(x)
  if x.dtype in (jnp.float16, jnp.bfloat16):
    x = x.astype(jnp.float32)
  return x * 255.0


def prepare_pair(reference, distorted, name: str, channels: tuple[int, ...] = (1, 3),
                 min_size: int = 1) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Validates a (reference, distorted) pair and returns both as (N, H, W, C) 0..255.

  Raises:
    ValueError: wrong rank, channel count, mismatched shapes, too small, NaN/inf, or
      float values outside [0, 1].
    TypeError: a dtype other than float or uint8.
  """
  shapes = []
  for role, img in (("reference", reference), ("distorted", distorted)):
    shape = jnp.shape(img)
    if len(shape) not in (3, 4):
      raise ValueError(f"{name}: {role} image must have shape (N, H, W, C) or (H, W, C), "
                       f"got {shape}")
    if shape[-1] not in channels:
      raise ValueError(f"{name}: {role} image must have {' or '.join(map(str, channels))} "
                       f"channel(s) in the last axis, got shape {shape}")
    shapes.append(shape)
  if shapes[0] != shapes[1]:
    raise ValueError(f"{name}: reference and distorted shapes differ: {shapes[0]} vs "
                     f"{shapes[1]}")
  h, w = shapes[0][-3:-1]
  if min(h, w) < min_size:
    raise ValueError(f"{name}: images of {h}x{w} are too small; this metric needs at "
                     f"least {min_size} pixels on the shorter side")
  out = []
  for role, img in (("reference", reference), ("distorted", distorted)):
    _check_values(img, name, role)
    x = _to_0_255(img, name, role)
    out.append(x if x.ndim == 4 else x[None])
  return out[0], out[1]


def to_grey(x: jnp.ndarray, color_mode: ColorMode) -> jnp.ndarray:
  """(N, H, W, C) on 0..255 -> (N, H, W) grey for the luminance-only metrics.

  "rgb2gray_uint8" (the default of every grey metric, `DEFAULT_COLOR_MODE`): MATLAB
  rgb2gray weights, rounded to integers as MATLAB does for uint8 images (what the MATLAB
  codes see after `imread` + `rgb2gray`); "rgb2gray": the same weights on doubles,
  unrounded; "luma": Y = 0.299 R + 0.587 G + 0.114 B (unrounded; piq's goldens' and
  FSIM's convention). Grey input (C = 1) passes through unchanged.
  """
  if x.shape[-1] == 1:
    return x[..., 0]
  if color_mode == "luma":
    return color.luma(x)
  if color_mode == "rgb2gray":
    return color.rgb2gray(x)
  if color_mode == "rgb2gray_uint8":
    return color.rgb2gray(x, as_uint8=True)
  raise ValueError(f"unknown color_mode {color_mode!r}; choose from {COLOR_MODES}")


def grey_metric(core: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray], x: jnp.ndarray,
                y: jnp.ndarray, color_mode: ColorMode) -> jnp.ndarray:
  """Applies a grey-image metric core ((B, H, W) x2 -> (B,)) under a colour mode.

  "per_channel" scores R, G and B separately and averages (the MATLAB 0.7820 SSIM value
  of the TID2013 I01 pair); the other modes convert to one grey channel first.
  """
  if color_mode == "per_channel" and x.shape[-1] == 3:
    n = x.shape[0]
    xs = jnp.moveaxis(x, -1, 1).reshape((n * 3,) + x.shape[1:3])
    ys = jnp.moveaxis(y, -1, 1).reshape((n * 3,) + y.shape[1:3])
    return core(xs, ys).reshape(n, 3).mean(axis=1)
  if color_mode not in COLOR_MODES:
    raise ValueError(f"unknown color_mode {color_mode!r}; choose from {COLOR_MODES}")
  return core(to_grey(x, color_mode), to_grey(y, color_mode))


def rgb(x: jnp.ndarray) -> jnp.ndarray:
  """Grey (C = 1) replicated to RGB, as piq and the MDSI goldens do; RGB passes."""
  return jnp.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
