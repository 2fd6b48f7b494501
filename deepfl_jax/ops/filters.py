"""2-D filtering with MATLAB window semantics, on arrays of shape (..., H, W).

MATLAB and SciPy disagree on where an even kernel sits ('same' of [1 2 3] with [1 1] is
[3 5 3] in MATLAB, [1 3 5] in SciPy), so nothing here uses a library 'same' mode: every
function pads explicitly and runs a VALID correlation (docs/matlab_parity.md 1.5).

- `correlate(x, k, boundary, anchor)`: the one primitive. out[r] = sum_u k[u] x[r+u-a].
- `imfilter(x, k, boundary)`: MATLAB imfilter (correlation, 'same', a = (k-1) // 2).
- `filter2(k, x, shape)`: MATLAB filter2 (correlation), 'same' or 'valid'.
- `conv2(x, k, shape)`: MATLAB conv2 (true convolution), 'same', 'valid' or 'full'.
- `avg_subsample(x, f, flavour)`: the F x F "average then take every F-th sample" step
  of ssim.m (flavour "A", symmetric boundary) and FeatureSIM.m & co (flavour "B", zero).

Kernels are NumPy constants (static at trace time). Rank-1 kernels (Gaussian, box) run
as two 1-D passes of shifted multiply-adds, which XLA fuses into one loop; other kernels
use `lax.conv_general_dilated` at HIGHEST precision (no TF32 on GPUs).
"""
from __future__ import annotations

from typing import Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Boundary = Literal["zero", "symmetric", "replicate", "circular", "reflect"]
_PAD_MODE = {"zero": "constant", "symmetric": "symmetric", "replicate": "edge",
             "circular": "wrap", "reflect": "reflect"}
# Up to this many taps a 1-D pass is unrolled into shifted multiply-adds.
_MAX_UNROLLED_TAPS = 32


def _as_kernel(kernel) -> np.ndarray:
  k = np.asarray(kernel, dtype=np.float64)
  if k.ndim == 1:
    k = k[None, :]
  if k.ndim != 2:
    raise ValueError(f"kernel must be 1-D or 2-D, got shape {k.shape}")
  return k


def _separate(k: np.ndarray):
  """Returns (column, row) vectors with outer(column, row) == k, or None."""
  if 1 in k.shape:
    return k[:, 0] if k.shape[1] == 1 else np.ones(1), (k[0] if k.shape[0] == 1 else np.ones(1))
  u, s, vt = np.linalg.svd(k)
  if s[1:].max(initial=0.0) > 1e-12 * s[0]:
    return None
  col, row = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
  # Exact zeros stay exact (they matter for kernels such as fspecial's truncation).
  col[np.abs(col) < 1e-300] = 0.0
  return col, row


def _correlate_1d(x: jnp.ndarray, taps: np.ndarray, axis: int) -> jnp.ndarray:
  """VALID correlation along `axis` (already padded)."""
  n_out = x.shape[axis] - len(taps) + 1
  if len(taps) == 1:
    return x * jnp.asarray(taps[0], x.dtype)
  if len(taps) > _MAX_UNROLLED_TAPS:
    moved = jnp.moveaxis(x, axis, -1)
    lead = moved.shape[:-1]
    flat = moved.reshape((-1, 1, moved.shape[-1]))
    out = jax.lax.conv_general_dilated(
        flat, jnp.asarray(taps, x.dtype)[None, None, :], (1,), "VALID",
        precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(out.reshape(lead + (n_out,)), -1, axis)
  out = None
  for u, t in enumerate(taps):
    if t == 0.0:
      continue
    term = jax.lax.slice_in_dim(x, u, u + n_out, axis=axis) * jnp.asarray(t, x.dtype)
    out = term if out is None else out + term
  if out is None:
    return jnp.zeros_like(jax.lax.slice_in_dim(x, 0, n_out, axis=axis))
  return out


def correlate(x: jnp.ndarray, kernel, boundary: Boundary | None = "zero",
              anchor: Sequence[int] | None = None) -> jnp.ndarray:
  """2-D correlation over the last two axes of x (..., H, W).

  Args:
    x: array (..., H, W), real or complex.
    kernel: 2-D (kh, kw) or 1-D (kw,) NumPy kernel.
    boundary: padding for a 'same'-size output, or None for a VALID output
      ((H - kh + 1) x (W - kw + 1)).
    anchor: (ar, ac), the kernel element over the output pixel; MATLAB's imfilter
      default (k - 1) // 2 per axis.

  Returns:
    out[..., r, c] = sum_{u,v} kernel[u, v] x[..., r + u - ar, c + v - ac].
  """
  k = _as_kernel(kernel)
  kh, kw = k.shape
  if boundary is not None:
    ar, ac = anchor if anchor is not None else ((kh - 1) // 2, (kw - 1) // 2)
    pads = [(0, 0)] * (x.ndim - 2) + [(ar, kh - 1 - ar), (ac, kw - 1 - ac)]
    x = jnp.pad(x, pads, mode=_PAD_MODE[boundary])
  sep = _separate(k)
  if sep is not None:
    col, row = sep
    return _correlate_1d(_correlate_1d(x, col, x.ndim - 2), row, x.ndim - 1)
  lead = x.shape[:-2]
  flat = x.reshape((-1, 1) + x.shape[-2:])
  kern = jnp.asarray(k, dtype=jnp.real(flat).dtype)[None, None]
  conv = lambda a: jax.lax.conv_general_dilated(
      a, kern, (1, 1), "VALID", precision=jax.lax.Precision.HIGHEST)
  out = conv(flat) if not jnp.iscomplexobj(flat) else (
      conv(flat.real) + 1j * conv(flat.imag))
  return out.reshape(lead + out.shape[-2:])


def imfilter(x: jnp.ndarray, kernel, boundary: Boundary = "zero") -> jnp.ndarray:
  """MATLAB `imfilter(x, kernel, boundary)` ('same' size, correlation)."""
  return correlate(x, kernel, boundary)


def filter2(kernel, x: jnp.ndarray, shape: Literal["same", "valid"] = "same"):
  """MATLAB `filter2(kernel, x, shape)`: correlation with zero padding."""
  return correlate(x, kernel, "zero" if shape == "same" else None)


def conv2(x: jnp.ndarray, kernel, shape: Literal["same", "valid", "full"] = "full"):
  """MATLAB `conv2(x, kernel, shape)`: true convolution (kernel rotated 180 degrees)."""
  k = _as_kernel(kernel)[::-1, ::-1]
  kh, kw = k.shape
  if shape == "valid":
    return correlate(x, k, None)
  if shape == "full":
    pads = [(0, 0)] * (x.ndim - 2) + [(kh - 1, kh - 1), (kw - 1, kw - 1)]
    return correlate(jnp.pad(x, pads), k, None)
  # 'same' keeps full[r + kh // 2]: a correlation with anchor (kh - 1) - kh // 2.
  return correlate(x, k, "zero", anchor=((kh - 1) // 2, (kw - 1) // 2))


def avg_subsample(x: jnp.ndarray, factor: int,
                  flavour: Literal["A", "B"]) -> jnp.ndarray:
  """F x F mean, then every F-th row and column (docs/matlab_parity.md 1.4): (..., H, W) ->
  (..., ceil(H/F), ceil(W/F)).

  Flavour "A" is ssim.m's `imfilter(x, ones(F)/F^2, 'symmetric')` followed by
  x(1:F:end, 1:F:end); flavour "B" is FeatureSIM.m's `conv2(x, ones(F)/F^2, 'same')`
  followed by the same subsampling (zero boundary).
  """
  if factor == 1:
    return x
  mode = {"A": "symmetric", "B": "constant"}[flavour]
  for axis in (x.ndim - 2, x.ndim - 1):
    n = x.shape[axis]
    k = -(-n // factor)
    before = factor - 1 - factor // 2
    after = max(0, (k - 1) * factor + factor // 2 - (n - 1))
    pads = [(0, 0)] * x.ndim
    pads[axis] = (before, after)
    xp = jax.lax.slice_in_dim(jnp.pad(x, pads, mode=mode), 0, k * factor, axis=axis)
    shape = xp.shape[:axis] + (k, factor) + xp.shape[axis + 1:]
    x = jnp.mean(xp.reshape(shape), axis=axis + 1)
  return x
