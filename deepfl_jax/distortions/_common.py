"""Helpers shared by the distortion types: mapmm, curves, replicate-padded filtering
with (possibly traced) kernels, and image layout conversions.

All images are (H, W, 3) float in [0, 1] unless stated.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.ops.kernels import imgaussfilt_taps

HI = jax.lax.Precision.HIGHEST


# Below this span an image counts as flat: MATLAB's mapmm would stretch the rounding
# noise of a flat image (FFT filters, Lab round trips: ~1e-7 in float32) to the full
# [0, 1] range; 1e-4 is 1/40 of an 8-bit step, far below any real image's range.
FLAT_SPAN = 1e-4


def mapmm(x: jnp.ndarray) -> jnp.ndarray:
  """KADID `mapmm`: global min-max stretch of all elements to [0, 1]; unchanged when
  the image is flat (max - min <= FLAT_SPAN, MATLAB: max == min)."""
  lo, hi = jnp.min(x), jnp.max(x)
  span = hi - lo
  flat = span <= FLAT_SPAN
  return jnp.where(flat, x, (x - lo) / jnp.where(flat, 1.0, span))


@functools.lru_cache(maxsize=None)
def _notaknot_matrix(knots: tuple) -> np.ndarray:
  """(n-1, 4, n) float64: piece coefficients (in powers of x - x_k, highest first) of the
  not-a-knot cubic spline as a linear map of the n knot values (MATLAB `spline`)."""
  xk = np.asarray(knots, np.float64)
  n = len(xk)
  m = n - 1
  out = np.zeros((m, 4, n))
  for col in range(n):
    yv = np.zeros(n)
    yv[col] = 1.0
    a = np.zeros((4 * m, 4 * m))
    b = np.zeros(4 * m)
    row = 0
    def piece(k, t, deriv):
      # coefficients of d^deriv/dt^deriv [c0 t^3 + c1 t^2 + c2 t + c3] at t
      if deriv == 0:
        v = [t ** 3, t ** 2, t, 1.0]
      elif deriv == 1:
        v = [3 * t ** 2, 2 * t, 1.0, 0.0]
      elif deriv == 2:
        v = [6 * t, 2.0, 0.0, 0.0]
      else:
        v = [6.0, 0.0, 0.0, 0.0]
      r = np.zeros(4 * m)
      r[4 * k:4 * k + 4] = v
      return r
    for k in range(m):
      h = xk[k + 1] - xk[k]
      a[row] = piece(k, 0.0, 0); b[row] = yv[k]; row += 1
      a[row] = piece(k, h, 0); b[row] = yv[k + 1]; row += 1
    for k in range(m - 1):
      h = xk[k + 1] - xk[k]
      for d in (1, 2):
        a[row] = piece(k, h, d) - piece(k + 1, 0.0, d); row += 1
    for k in (0, m - 2):   # not-a-knot: third derivative continuous at x_2, x_{n-1}
      h = xk[k + 1] - xk[k]
      a[row] = piece(k, h, 3) - piece(k + 1, 0.0, 3); row += 1
    out[:, :, col] = np.linalg.solve(a, b).reshape(m, 4)
  return out


def curves(x: jnp.ndarray, c) -> jnp.ndarray:
  """KADID `curves`: tone curve through (0,0), (0.5, c), (1,1) (a parabola, MATLAB
  `spline` on 3 points) for scalar c; for c = (c1, c2) the not-a-knot cubic spline
  through (0,0), (.3,c1), (.5,.5), (.7,c2), (1,1). Evaluated at x, clipped to [0, 1].
  `c` may be traced."""
  c = jnp.asarray(c, x.dtype)
  if c.ndim == 0:
    a2 = 2.0 - 4.0 * c
    y = (a2 * x + (4.0 * c - 1.0)) * x
    return jnp.clip(y, 0.0, 1.0)
  knots = (0.0, 0.3, 0.5, 0.7, 1.0)
  yk = jnp.stack([jnp.zeros((), x.dtype), c[0], jnp.asarray(0.5, x.dtype), c[1],
                  jnp.ones((), x.dtype)])
  coef = jnp.einsum("mqn,n->mq", jnp.asarray(_notaknot_matrix(knots), x.dtype), yk,
                    precision=HI)
  # MATLAB ppval: piece k for knots[k] <= x (left-closed), end pieces beyond the ends.
  # Selecting with `where` instead of searchsorted + gather is ~4x faster under vmap.
  y = None
  for k in range(len(knots) - 1):
    t = x - knots[k]
    pk = ((coef[k, 0] * t + coef[k, 1]) * t + coef[k, 2]) * t + coef[k, 3]
    y = pk if y is None else jnp.where(x >= knots[k], pk, y)
  return jnp.clip(y, 0.0, 1.0)


def channels_first(x: jnp.ndarray) -> jnp.ndarray:
  return jnp.moveaxis(x, -1, 0)


def channels_last(x: jnp.ndarray) -> jnp.ndarray:
  return jnp.moveaxis(x, 0, -1)


def filter_replicate(planes: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
  """MATLAB imfilter(planes, kernel, 'replicate') (correlation, 'same', centre anchor)
  for an odd (possibly traced) 2-D kernel: planes (C, H, W) -> (C, H, W).

  Computed as an FFT product on the replicate-padded planes (XLA's CPU convolution is
  ~60x slower for these shapes); the circular wrap only touches the discarded border.
  Agrees with direct summation to ~1e-7 in float32."""
  kh, kw = kernel.shape
  ph, pw = kh // 2, kw // 2
  xp = jnp.pad(planes, ((0, 0), (ph, ph), (pw, pw)), mode="edge")
  hp, wp = xp.shape[-2:]
  k = jnp.fft.rfft2(kernel[::-1, ::-1].astype(planes.dtype), s=(hp, wp))
  y = jnp.fft.irfft2(jnp.fft.rfft2(xp) * k, s=(hp, wp))
  return y[:, kh - 1:, kw - 1:].astype(planes.dtype)


def _correlate_axis(x: jnp.ndarray, taps: jnp.ndarray, axis: int) -> jnp.ndarray:
  """'same' correlation along `axis` with replicate padding, (possibly traced) odd
  taps, as shifted multiply-adds (XLA fuses them into one loop)."""
  r = taps.shape[0] // 2
  n = x.shape[axis]
  pads = [(0, 0)] * x.ndim
  pads[axis] = (r, r)
  xp = jnp.pad(x, pads, mode="edge")
  out = None
  for u in range(taps.shape[0]):
    term = taps[u] * jax.lax.slice_in_dim(xp, u, u + n, axis=axis)
    out = term if out is None else out + term
  return out


def sep_filter_replicate(planes: jnp.ndarray, taps: jnp.ndarray) -> jnp.ndarray:
  """Separable filter, the same (possibly traced) odd taps on rows and columns,
  replicate padding (MATLAB imfilter of the outer product): (C, H, W) -> (C, H, W)."""
  taps = taps.astype(planes.dtype)
  return _correlate_axis(_correlate_axis(planes, taps, planes.ndim - 2), taps,
                         planes.ndim - 1)


def imgaussfilt(planes: jnp.ndarray, sigma, half_width: int) -> jnp.ndarray:
  """MATLAB `imgaussfilt(I, sigma)` (replicate padding) per plane (C, H, W)."""
  return sep_filter_replicate(planes, imgaussfilt_taps(sigma, half_width, planes.dtype))
