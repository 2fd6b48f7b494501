"""MATLAB numerical conventions that decide parity (docs/matlab_parity.md, section 1).

Kernel builders run in NumPy float64 at trace time (shapes are static) and return
constants; reductions are JAX functions over the trailing image axes.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


def matlab_round(x: float) -> int:
  """MATLAB `round` of a Python scalar: half away from zero (round(2.5) == 3)."""
  return int(math.copysign(math.floor(abs(x) + 0.5), x))


def round_half_away(x: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `round` on arrays (jnp.round rounds half to even)."""
  return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def downsample_factor(height: int, width: int) -> int:
  """The "F-rule" of ssim.m, FeatureSIM.m, VSI, SR_SIM, MDSI: max(1, round(min/256))."""
  return max(1, matlab_round(min(height, width) / 256))


def fspecial_gaussian(size: int | tuple[int, int], sigma: float) -> np.ndarray:
  """MATLAB `fspecial('gaussian', size, sigma)` as float64 (sums to 1)."""
  rows, cols = (size, size) if np.isscalar(size) else size
  y = np.arange(rows, dtype=np.float64) - (rows - 1) / 2
  x = np.arange(cols, dtype=np.float64) - (cols - 1) / 2
  h = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma ** 2))
  h[h < np.finfo(np.float64).eps * h.max()] = 0.0
  return h / h.sum()


def fspecial_average(size: int) -> np.ndarray:
  """MATLAB `fspecial('average', size)`: ones(size) / size^2."""
  return np.full((size, size), 1.0 / size ** 2)


def mean2(x: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `mean2` over the last two axes: (..., H, W) -> (...)."""
  return jnp.mean(x, axis=(-2, -1))


def std2(x: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `std2` over the last two axes (sample std, divides by N - 1).

  The square root of the variance has gradient 0 (not inf/NaN) where the variance is
  0 (constant maps; double-`where`, as gradient.safe_sqrt, inlined: no import cycle).
  """
  # Centred on one sample first (the variance is shift-invariant): a constant map
  # then gives exactly 0, where sum * (1/n) can leave an ulp of residue.
  var = jnp.var(x - x[..., :1, :1], axis=(-2, -1), ddof=1)
  pos = var > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)


def mad(x: jnp.ndarray, axis=(-2, -1)) -> jnp.ndarray:
  """MATLAB `mad(x)` with flag 0: mean absolute deviation about the MEAN (|.| = modulus)."""
  return jnp.mean(jnp.abs(x - jnp.mean(x, axis=axis, keepdims=True)), axis=axis)
