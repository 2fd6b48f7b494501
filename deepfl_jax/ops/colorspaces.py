"""MATLAB colour spaces on doubles, channel-last (..., 3), RGB in [0, 1].

- `rgb2lab` / `lab2rgb`: MATLAB defaults (sRGB, D65 white [0.95047, 1, 1.08883]). The
  linear-sRGB -> XYZ matrix is built from the sRGB primaries and normalised to that
  white (its rows sum to the white point, so rgb2lab([1, 1, 1]) = [100, 0, 0]); sRGB
  curve thresholds 0.04045 / 0.0031308; CIE f() with (6/29)^3. lab2rgb does NOT clip.
- `rgb2hsv` / `hsv2rgb`: MATLAB formulas (hue ties resolved b > g > r as MATLAB's
  successive assignments do). MATLAB's hsv2rgb divides the whole image by its global
  max(r, g, b) (visible for s outside [0, 1]); `global_rescale=True` reproduces that over
  the last three axes (..., H, W, 3).
- `rgb2ycbcr` / `ycbcr2rgb`: MATLAB on doubles (BT.601, studio range, rounded Poynton
  matrix T; no clipping forward, clip to [0, 1] backward).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from deepfl_jax.ops.color import apply_matrix

D65 = np.array([0.95047, 1.0, 1.08883])


def _srgb_to_xyz_matrix() -> np.ndarray:
  xy = np.array([[0.64, 0.33], [0.30, 0.60], [0.15, 0.06]])   # R, G, B primaries
  p = np.stack([xy[:, 0] / xy[:, 1], np.ones(3),
                (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])          # columns = primaries
  s = np.linalg.solve(p, D65)
  return p * s[None, :]


RGB2XYZ = _srgb_to_xyz_matrix()
XYZ2RGB = np.linalg.inv(RGB2XYZ)

# MATLAB rgb2ycbcr (double): ycbcr = (T @ rgb + OFFSET) / 255.
YCBCR_T = np.array([[65.481, 128.553, 24.966],
                    [-37.797, -74.203, 112.0],
                    [112.0, -93.786, -18.214]])
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])

_DELTA = 6.0 / 29.0


def _pow(x: jnp.ndarray, p: float) -> jnp.ndarray:
  """x ** p for x > 0 as exp(p log x): XLA:CPU's general pow (special cases, negative
  bases) costs 4x more, and made rgb2lab 11 instead of 4 CPU ms at 384x512 (float32
  error vs float64 Lab 8.5e-5 instead of 7.3e-5)."""
  return jnp.exp(jnp.log(x) * jnp.asarray(p, x.dtype))


def srgb_to_linear(c: jnp.ndarray) -> jnp.ndarray:
  return jnp.where(c <= 0.04045, c / 12.92,
                   _pow((jnp.maximum(c, 0.04045) + 0.055) / 1.055, 2.4))


def linear_to_srgb(c: jnp.ndarray) -> jnp.ndarray:
  return jnp.where(c <= 0.0031308, 12.92 * c,
                   1.055 * _pow(jnp.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


def _f(t):
  return jnp.where(t > _DELTA ** 3, _pow(jnp.maximum(t, _DELTA ** 3), 1.0 / 3.0),
                   t / (3 * _DELTA ** 2) + 4.0 / 29.0)


def _finv(t):
  return jnp.where(t > _DELTA, t ** 3, 3 * _DELTA ** 2 * (t - 4.0 / 29.0))


def rgb2lab(rgb: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `rgb2lab` (sRGB, D65): (..., 3) in [0, 1] -> (..., 3) L* a* b*."""
  xyz = apply_matrix(srgb_to_linear(rgb), RGB2XYZ) / jnp.asarray(D65, rgb.dtype)
  f = _f(xyz)
  return jnp.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                    200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab2rgb(lab: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `lab2rgb` (sRGB, D65): (..., 3) L* a* b* -> (..., 3) RGB, NOT clipped."""
  fy = (lab[..., 0] + 16) / 116
  f = jnp.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
  xyz = _finv(f) * jnp.asarray(D65, lab.dtype)
  return linear_to_srgb(apply_matrix(xyz, XYZ2RGB))


def rgb2hsv(rgb: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `rgb2hsv`: (..., 3) -> (..., 3) H, S, V with H in [0, 1)."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  v = jnp.maximum(jnp.maximum(r, g), b)
  delta = v - jnp.minimum(jnp.minimum(r, g), b)
  flat = delta == 0
  d = jnp.where(flat, 1.0, delta)
  h = jnp.where(b == v, 4 + (r - g) / d,
                jnp.where(g == v, 2 + (b - r) / d, (g - b) / d)) / 6
  h = jnp.where(h < 0, h + 1, h)
  h = jnp.where(flat, 0.0, h)
  s = jnp.where(flat | (v == 0), 0.0, delta / jnp.where(v == 0, 1.0, v))
  return jnp.stack([h, s, v], axis=-1)


def hsv2rgb(hsv: jnp.ndarray, global_rescale: bool = False) -> jnp.ndarray:
  """MATLAB `hsv2rgb`: (..., 3) H, S, V -> (..., 3) RGB.

  With global_rescale, the result is divided by the max of the unscaled r, g, b over
  the last three axes, as MATLAB does (a no-op for S in [0, 1])."""
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  h6 = 6 * h
  k = jnp.floor(h6)
  p = h6 - k
  t = 1 - s
  n = 1 - s * p
  q = 1 - s * (1 - p)
  one = jnp.ones_like(h)
  # Sector k (k == 6 folds onto 0, as MATLAB's (k==0 | k==6)).
  table = [(one, q, t), (n, one, t), (t, one, q), (t, n, one), (q, t, one), (one, t, n)]
  kk = jnp.where(k == 6, 0, k)
  chans = []
  for c in range(3):
    out = jnp.zeros_like(h)
    for sector, vals in enumerate(table):
      out = out + jnp.where(kk == sector, vals[c], 0.0)
    chans.append(out)
  rgb = jnp.stack(chans, axis=-1)
  if global_rescale:
    rgb = rgb / jnp.max(rgb, axis=(-3, -2, -1), keepdims=True)
  return rgb * v[..., None]


def rgb2ycbcr(rgb: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `rgb2ycbcr` on doubles in [0, 1]: (..., 3) -> (..., 3), not clipped."""
  return (apply_matrix(rgb, YCBCR_T) + jnp.asarray(YCBCR_OFFSET, rgb.dtype)) / 255.0


def ycbcr2rgb(ycbcr: jnp.ndarray) -> jnp.ndarray:
  """MATLAB `ycbcr2rgb` on doubles: (..., 3) -> (..., 3) RGB clipped to [0, 1]."""
  tinv = np.linalg.inv(YCBCR_T)
  rgb = apply_matrix(ycbcr, 255.0 * tinv) - jnp.asarray(tinv @ YCBCR_OFFSET, ycbcr.dtype)
  return jnp.clip(rgb, 0.0, 1.0)
