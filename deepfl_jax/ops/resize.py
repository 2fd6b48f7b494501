"""MATLAB `imresize` as two matrix products (docs/matlab_parity.md section 1.7).

The per-axis interpolation matrices are built in NumPy float64 at trace time (sizes are
static) and applied with einsum, so the result equals MATLAB's separable resize on
double input, antialiasing included.
"""
from __future__ import annotations

import functools
import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

Method = Literal["bicubic", "bilinear", "nearest"]


def _cubic(x):
  a = np.abs(x)
  return ((1.5 * a ** 3 - 2.5 * a ** 2 + 1) * (a <= 1)
          + (-0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2) * ((a > 1) & (a <= 2)))


def _triangle(x):
  return np.maximum(0.0, 1 - np.abs(x))


def _box(x):
  return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


_KERNELS = {"bicubic": (_cubic, 4.0), "bilinear": (_triangle, 2.0), "nearest": (_box, 1.0)}


@functools.lru_cache(maxsize=256)
def resize_matrix(n_in: int, n_out: int | None = None, scale: float | None = None,
                  method: Method = "bicubic", antialias: bool = True) -> np.ndarray:
  """(n_out, n_in) float64 matrix R with resized = R @ signal, as MATLAB imresize.

  Give `scale` (output length ceil(scale * n_in), mapping uses the scale itself, as
  `imresize(A, 0.25)`) or `n_out` (scale = n_out / n_in, as `imresize(A, [m n])`).
  """
  if scale is None:
    if n_out is None:
      raise ValueError("give n_out or scale")
    scale = n_out / n_in
  elif n_out is None:
    n_out = math.ceil(scale * n_in)
  kernel, width = _KERNELS[method]
  if scale < 1 and antialias and method != "nearest":
    h = lambda x: scale * kernel(scale * x)
    width = width / scale
  else:
    h = kernel
  u = np.arange(1, n_out + 1, dtype=np.float64)
  x = u / scale + 0.5 * (1 - 1 / scale)
  left = np.floor(x - width / 2)
  taps = int(math.ceil(width)) + 2
  idx = left[:, None] + np.arange(taps)[None, :]               # 1-based tap positions
  w = h(x[:, None] - idx)
  w = w / w.sum(axis=1, keepdims=True)
  # Mirror out-of-range taps with the edge repeated: 1..n, n..1, 1..n, ...
  period = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
  src = period[np.mod(idx.astype(np.int64) - 1, 2 * n_in)]
  mat = np.zeros((n_out, n_in))
  np.add.at(mat, (np.repeat(np.arange(n_out), taps), src.ravel()), w.ravel())
  return mat


_BLOCK = 32  # output samples per block of the banded product


def _apply_axis(x: jnp.ndarray, mat: np.ndarray, axis: int) -> jnp.ndarray:
  """mat (m, n) applied along `axis` (-2 or -1) of x.

  Interpolation matrices are banded, so the product runs in blocks of _BLOCK output
  samples, each against only the static slice of input samples its rows touch: the
  same sums as the dense product at a fraction of the multiply-adds (7x fewer for
  384x512 -> 256x256).
  """
  hi = jax.lax.Precision.HIGHEST
  outs = []
  for start in range(0, mat.shape[0], _BLOCK):
    block = mat[start:start + _BLOCK]
    cols = np.flatnonzero(np.any(block != 0, axis=0))
    lo, up = (int(cols[0]), int(cols[-1]) + 1) if len(cols) else (0, 1)
    part = jax.lax.slice_in_dim(x, lo, up, axis=x.ndim + axis)
    w = jnp.asarray(block[:, lo:up], x.dtype)
    if axis == -2:
      outs.append(jnp.einsum("ih,...hw->...iw", w, part, precision=hi))
    else:
      outs.append(jnp.einsum("...hw,iw->...hi", part, w, precision=hi))
  return outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=axis)


def imresize(x: jnp.ndarray, size: tuple[int, int] | None = None,
             scale: float | None = None, method: Method = "bicubic",
             antialias: bool = True) -> jnp.ndarray:
  """MATLAB `imresize` over the last two axes of x (..., H, W) for float input.

  Args:
    x: (..., H, W) float array.
    size: (rows, cols) target, or
    scale: a scalar factor (output ceil(scale * H) x ceil(scale * W)).
  """
  h, w = x.shape[-2:]
  if size is not None:
    rh = resize_matrix(h, size[0], None, method, antialias)
    rw = resize_matrix(w, size[1], None, method, antialias)
  else:
    rh = resize_matrix(h, None, scale, method, antialias)
    rw = resize_matrix(w, None, scale, method, antialias)
  # The axis that shrinks more goes first: fewer samples for the second pass.
  if rw.shape[0] * rh.shape[1] <= rh.shape[0] * rw.shape[1]:
    return _apply_axis(_apply_axis(x, rw, -1), rh, -2)
  return _apply_axis(_apply_axis(x, rh, -2), rw, -1)
