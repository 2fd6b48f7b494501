"""Frequency grids for the FFT-domain filters of FeatureSIM.m and VSI (Kovesi's grid,
docs/matlab_parity.md section 1.8), and the DCT-II basis matrix (SC-QI block DCT, the
block-DCT denoiser)."""
from __future__ import annotations

import numpy as np


def _axis(n: int) -> np.ndarray:
  if n % 2:
    return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
  return np.arange(-n / 2, n / 2) / n


def kovesi_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
  """Kovesi's normalised frequency grid, ifftshift-ed (zero frequency at [0, 0]).

  Returns (radius, theta), each (rows, cols) float64: radius = sqrt(x^2 + y^2) with x
  along columns and y along rows, theta = atan2(-y, x).
  """
  x, y = np.meshgrid(_axis(cols), _axis(rows))
  radius = np.fft.ifftshift(np.sqrt(x ** 2 + y ** 2))
  theta = np.fft.ifftshift(np.arctan2(-y, x))
  return radius, theta


def lowpass_filter(rows: int, cols: int, cutoff: float, order: int) -> np.ndarray:
  """Kovesi `lowpassfilter([rows cols], cutoff, n)`: 1 / (1 + (r / cutoff)^(2n)),
  ifftshift-ed, on the same grid as `kovesi_grid`."""
  radius, _ = kovesi_grid(rows, cols)
  return 1.0 / (1.0 + (radius / cutoff) ** (2 * order))


def dct_matrix(n: int) -> np.ndarray:
  """Orthonormal DCT-II matrix D (n x n) float64: coefficients of a block P are D P D^T."""
  k = np.arange(n)[:, None]
  i = np.arange(n)[None, :]
  d = np.cos((2 * i + 1) * k * np.pi / (2 * n)) * np.sqrt(2.0 / n)
  d[0] /= np.sqrt(2.0)
  return d
