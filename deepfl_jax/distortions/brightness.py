"""Brightness types (KADID ids 16-18). Images (H, W, 3) float in [0, 1]."""
from __future__ import annotations

import jax.numpy as jnp

from deepfl_jax.distortions._common import curves
from deepfl_jax.ops import colorspaces


def brighten(image, amount, key=None):
  """Type 16, `imbrighten` (Lab branch, taken for RGB): c = 0.5 + amount/2;
  J = (2 curves(I, c) + clip(lab2rgb(curves(L/100, c) 100, a, b))) / 3."""
  del key
  c = 0.5 + amount / 2
  lab = colorspaces.rgb2lab(image)
  lum = curves(lab[..., 0] / 100.0, c) * 100.0
  j2 = jnp.clip(colorspaces.lab2rgb(jnp.concatenate([lum[..., None], lab[..., 1:]], -1)),
                0.0, 1.0)
  return (2.0 * curves(image, c) + j2) / 3.0


def darken(image, amount, key=None):
  """Type 17, `imdarken`: curves(I, 0.5 - amount/2) on RGB (no Lab branch)."""
  del key
  return curves(image, 0.5 - amount / 2)


def mean_shift(image, shift, key=None):
  """Type 18, `immeanshift`: clip(I + shift)."""
  del key
  return jnp.clip(image + shift, 0.0, 1.0)
