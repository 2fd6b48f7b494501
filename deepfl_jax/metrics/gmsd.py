"""GMSD: gradient magnitude similarity deviation (Xue, Zhang, Mou, Bovik, TIP 2014).

Follows GMSD.m: fixed 2x flavour-B downsampling
(conv2 'same' with ones(2)/4, zero boundary, every second sample), Prewitt gradients
dx = [1 0 -1; 1 0 -1; 1 0 -1]/3 and dy = dx^T with conv2 'same', the gradient magnitude
similarity GMS = (2 g1 g2 + T)/(g1^2 + g2^2 + T) with T = 170 (0..255 scale), pooled
with std2 (sample standard deviation). LOWER is better; 0 for identical images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import filters, gradient, matlab, similarity

T = 170.0


def _gmsd_grey(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """GMSD.m on grey (B, H, W) 0..255 images -> (B,)."""
  both = filters.avg_subsample(jnp.stack([x, y]), 2, "B")
  # Both gradient directions of both images in one stacked pass each.
  mag2 = gradient.gradient_sq(both, gradient.PREWITT_X)
  m1, m2 = mag2[0], mag2[1]
  # (2 g1 g2 + T) / (g1^2 + g2^2 + T) from the squared magnitudes: exactly 1 (GMSD
  # exactly 0) for identical images.
  gms = similarity.similarity_sq(m1, m2, T)
  return matlab.std2(gms)


def gmsd_core(x: jnp.ndarray, y: jnp.ndarray, *,
              color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """GMSD on prepared (N, H, W, C) 0..255 images (no validation) -> (N,)."""
  return _inputs.grey_metric(_gmsd_grey, x, y, color_mode)


# Colour is converted eagerly; only the grey computation is jitted (one executable
# for all colour modes but per_channel).
_gmsd_grey_jit = jax.jit(_gmsd_grey)


def gmsd(reference, distorted, *,
         color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """GMSD as GMSD.m (Y1 = reference, Y2 = distorted; symmetric in effect).

  Args:
    reference, distorted: (N, H, W, C) or (H, W, C), C = 1 or 3, float in [0, 1] or
      uint8; at least 4 pixels on the shorter side (2x downsampling, 3x3 Prewitt).
    color_mode: "rgb2gray_uint8" (default), "rgb2gray", "luma" (Y = 0.299 R + 0.587 G
      + 0.114 B unrounded, as piq's MATLAB golden) or "per_channel" (see `_inputs`).

  MATLAB input: GMSD.m works on grey doubles 0..255; run on RGB files it sees
  double(rgb2gray(imread(f))): MATLAB's rgb2gray of a uint8 image is uint8 (rounded).
  The default "rgb2gray_uint8" does exactly that (the official code's GMSD on RGB
  TID2013 pairs is matched to about 1e-5 only with the rounding); grey input is used
  as is.

  Returns:
    (N,) GMSD, LOWER is better (0 for identical images, about 0..0.35). Finite for flat
    images (T > 0); the square roots of the gradient magnitudes and of the variance use
    a zero gradient at 0, so gradients stay finite for flat or identical inputs.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "gmsd", channels=(1, 3), min_size=4)
  return _inputs.grey_metric(_gmsd_grey_jit, x, y, color_mode)
