"""MATLAB filter kernels whose parameter may be a traced scalar.

The distortion engine passes parameters through `lax.switch`, so a blur radius or a
motion angle is a traced value while array shapes must stay static. Each builder
therefore returns the MATLAB kernel embedded, centred, in a fixed (2R+1)-sized support
(R static, chosen from the largest parameter used); the extra entries are exactly zero,
so 'same' filtering with the centre anchor gives MATLAB's result.

- `imgaussfilt_taps(sigma, R)`: 1-D taps of MATLAB `imgaussfilt(I, sigma)` (kernel
  size 2*ceil(2*sigma)+1, entries below eps*max zeroed, normalised; separable).
- `fspecial_disk(radius, R)`: MATLAB `fspecial('disk', r)`, the exact area of each
  pixel square inside the disk of radius r, normalised (r = 1 gives the documented
  0.0251 / 0.1453 / 0.3183).
- `fspecial_motion(length, angle_deg, R)`: MATLAB `fspecial('motion', len, theta)`:
  weights max(0, 1 + eps - d), d the distance to the line segment of length `len`
  through the centre at `theta` degrees counter-clockwise, end caps measured to the end
  point; the half-plane kernel unfolded by a 180-degree rotation; normalised by
  sum + eps*len^2; flipped up-down when cos(theta) > 0.
The static Gaussian of `fspecial('gaussian')` lives in `ops.matlab.fspecial_gaussian`.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


def gauss_support(sigma: float) -> int:
  """Half-width ceil(2*sigma) of MATLAB imgaussfilt's default kernel."""
  return int(math.ceil(2 * sigma))


def imgaussfilt_taps(sigma, half_width: int, dtype=jnp.float32) -> jnp.ndarray:
  """(2R+1,) taps of MATLAB imgaussfilt for a (possibly traced) sigma > 0.

  Taps outside the MATLAB support |x| <= ceil(2*sigma) are zero; R = half_width must
  be >= ceil(2*sigma) (a larger sigma is truncated at R, i.e. clamped support).
  """
  sigma = jnp.asarray(sigma, dtype)
  x = jnp.arange(-half_width, half_width + 1, dtype=dtype)
  h = jnp.exp(-x ** 2 / (2 * sigma ** 2))
  h = jnp.where(jnp.abs(x) <= jnp.ceil(2 * sigma), h, 0.0)
  h = jnp.where(h < np.finfo(np.float64).eps * jnp.max(h), 0.0, h)
  return h / jnp.sum(h)


def _quarter_area(x, y, r):
  """Area of the disk of radius r inside [0, x] x [0, y], for x, y >= 0."""
  def prim(t):   # integral_0^t sqrt(r^2 - s^2) ds, 0 <= t <= r
    return 0.5 * (t * jnp.sqrt(jnp.maximum(r ** 2 - t ** 2, 0.0))
                  + r ** 2 * jnp.arcsin(jnp.clip(t / r, -1.0, 1.0)))
  ty = jnp.sqrt(jnp.maximum(r ** 2 - x ** 2, 0.0))   # height where the arc meets x
  yc = jnp.clip(y, 0.0, r)
  return x * jnp.minimum(y, ty) + prim(yc) - prim(jnp.minimum(ty, yc))


def _rect_area(x0, x1, y0, y1, r):
  def g(x, y):
    return jnp.sign(x) * jnp.sign(y) * _quarter_area(jnp.abs(x), jnp.abs(y), r)
  return g(x1, y1) - g(x0, y1) - g(x1, y0) + g(x0, y0)


def fspecial_disk(radius, half_width: int, dtype=jnp.float32) -> jnp.ndarray:
  """(2R+1, 2R+1) MATLAB `fspecial('disk', radius)`, R >= ceil(radius - 0.5)."""
  r = jnp.asarray(radius, dtype)
  c = jnp.arange(-half_width, half_width + 1, dtype=dtype)
  yy, xx = c[:, None], c[None, :]
  area = _rect_area(xx - 0.5, xx + 0.5, yy - 0.5, yy + 0.5, r)
  area = jnp.maximum(area, 0.0)
  return area / jnp.sum(area)


def motion_half_width(length: float) -> int:
  """Static half-width R that holds fspecial('motion', len, any angle)."""
  return int(math.floor((max(length, 1.0) - 1) / 2)) + 1


def fspecial_motion(length, angle_deg, half_width: int, dtype=jnp.float32) -> jnp.ndarray:
  """(2R+1, 2R+1) MATLAB `fspecial('motion', length, angle_deg)`, centred."""
  eps = float(jnp.finfo(dtype).eps)
  length = jnp.maximum(jnp.asarray(length, dtype), 1.0)
  half = (length - 1) / 2
  phi = jnp.mod(jnp.asarray(angle_deg, dtype), 180.0) / 180.0 * np.pi
  cosphi, sinphi = jnp.cos(phi), jnp.sin(phi)
  xsign = jnp.where(cosphi >= 0, 1.0, -1.0)   # cos(phi) is never exactly 0 in floats
  # Extent of MATLAB's half-kernel grid (x = 0:xsign:sx, y = 0:sy); the len*eps term
  # keeps an exact integer from adding a row/column (scaled to this dtype's eps).
  sx = jnp.trunc(half * cosphi + xsign - 4 * length * eps)
  sy = jnp.trunc(half * sinphi + 1.0 - 4 * length * eps)
  i = jnp.arange(half_width + 1, dtype=dtype)[:, None]   # y index (rows below centre)
  j = jnp.arange(half_width + 1, dtype=dtype)[None, :]   # |x| index
  x = xsign * j
  y = i
  d = y * cosphi - x * sinphi
  rad = jnp.sqrt(x ** 2 + y ** 2)
  last = (rad >= half) & (jnp.abs(d) <= 1.0)
  x2last = half - jnp.abs((x + d * sinphi) / cosphi)
  d = jnp.where(last, jnp.sqrt(d ** 2 + x2last ** 2), d)
  w = jnp.maximum(1.0 + eps - jnp.abs(d), 0.0)
  w = jnp.where((i <= sy) & (j <= jnp.abs(sx)), w, 0.0)
  # Full kernel: quadrant (+y, +|x|) holds w, its 180-degree rotation the opposite one.
  size = 2 * half_width + 1
  full = jnp.zeros((size, size), dtype)
  full = full.at[half_width:, half_width:].set(w)
  full = full.at[:half_width + 1, :half_width + 1].add(w[::-1, ::-1])
  full = full.at[half_width, half_width].set(w[0, 0])
  full = full / (jnp.sum(full) + eps * length * length)
  return jnp.where(cosphi > 0, full[::-1, :], full)
