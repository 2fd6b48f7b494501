"""Colour transforms on channel-last arrays (..., 3), any linear scale (0..1 or 0..255)
unless stated. Matrices follow the MATLAB codes named below (docs/matlab_parity.md
section 1.3)."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

# YIQ (FeatureSIM.m, SR_SIM.m): rows Y, I, Q.
YIQ = np.array([[0.299, 0.587, 0.114],
                [0.596, -0.274, -0.322],
                [0.211, -0.523, 0.312]])
# MATLAB rgb2gray coefficients (the luma row of MATLAB's rgb2ntsc inverse).
RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def apply_matrix(x: jnp.ndarray, matrix: np.ndarray) -> jnp.ndarray:
  """(..., 3) @ matrix^T -> (..., rows): each output channel is a row of `matrix`.

  Written as explicit multiply-adds: XLA:CPU runs a 3-term einsum over the channel axis
  about 5x slower than this fused elementwise form.
  """
  m = np.asarray(matrix, dtype=np.float64)
  chans = [x[..., c] for c in range(m.shape[1])]
  rows = []
  for row in m:
    acc = None
    for coef, ch in zip(row, chans):
      if coef == 0.0:
        continue
      term = ch * jnp.asarray(coef, x.dtype)
      acc = term if acc is None else acc + term
    rows.append(acc if acc is not None else jnp.zeros_like(chans[0]))
  return jnp.stack(rows, axis=-1)


def luma(x: jnp.ndarray) -> jnp.ndarray:
  """Y = 0.299 R + 0.587 G + 0.114 B (unrounded): (..., 3) -> (...)."""
  return apply_matrix(x, YIQ[:1])[..., 0]


def rgb2gray(x: jnp.ndarray, as_uint8: bool = False) -> jnp.ndarray:
  """MATLAB `rgb2gray`: (..., 3) -> (...). With as_uint8 (x on 0..255), rounds half
  away from zero as MATLAB does for uint8 images."""
  g = apply_matrix(x, RGB2GRAY[None])[..., 0]
  return jnp.floor(g + 0.5) if as_uint8 else g
