"""Gradient-magnitude filters and gradient-safe powers shared by the metrics.

The kernels are the ones of GMSD.m / MDSI.m (Prewitt, /3) and VSI / SR_SIM.m (Scharr,
/16), applied with MATLAB `conv2(x, k, 'same')` (zero padding) as those codes do.
The flip of conv2 only changes the sign of each response, so magnitudes are unaffected.

`safe_sqrt` / `safe_pow` use the double-`where` trick: the value is exact, and the
gradient at 0 is 0 instead of inf/NaN (e.g. flat or identical images).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from deepfl_jax.ops import filters

PREWITT_X = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
SCHARR_X = np.array([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]) / 16.0


def safe_pow(x: jnp.ndarray, p: float) -> jnp.ndarray:
  """x ** p for x >= 0, with gradient 0 (not inf) at x == 0."""
  pos = x > 0
  return jnp.where(pos, jnp.where(pos, x, 1.0) ** p, 0.0)


def real_pow(x: jnp.ndarray, p: float) -> jnp.ndarray:
  """MATLAB real(x .^ p) for real x: |x|^p, times cos(p pi) where x < 0 (the principal
  value of a negative base), gradient-safe at 0 (FSIMc, VSI, SC-QI chroma terms)."""
  mag = safe_pow(jnp.abs(x), p)
  return jnp.where(x < 0, mag * math.cos(p * math.pi), mag)


def safe_sqrt(x: jnp.ndarray) -> jnp.ndarray:
  """sqrt(x) for x >= 0, with gradient 0 (not inf) at x == 0."""
  pos = x > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def gradient_sq(x: jnp.ndarray, kernel_x: np.ndarray) -> jnp.ndarray:
  """Squared gradient magnitude Ix^2 + Iy^2 of x (..., H, W), conv2 'same' with
  kernel_x and its transpose."""
  ix = filters.conv2(x, kernel_x, "same")
  iy = filters.conv2(x, kernel_x.T, "same")
  return ix * ix + iy * iy


def gradient_magnitude(x: jnp.ndarray, kernel_x: np.ndarray) -> jnp.ndarray:
  """sqrt(Ix^2 + Iy^2) (finite gradient where the image is locally flat)."""
  return safe_sqrt(gradient_sq(x, kernel_x))
