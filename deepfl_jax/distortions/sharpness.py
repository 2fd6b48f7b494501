"""Sharpness and contrast types (KADID ids 24, 25). Images (H, W, 3) in [0, 1]."""
from __future__ import annotations

import jax.numpy as jnp

from deepfl_jax.distortions._common import curves
from deepfl_jax.ops import colorspaces, filters
from deepfl_jax.ops.matlab import fspecial_gaussian


def high_sharpen(image, amount, key=None):
  """Type 24, `imsharpenHi`: MATLAB imsharpen(I, 'Radius', 3, 'Amount', amount):
  unsharp mask of L* (fspecial('gaussian', 13, 3), replicate), threshold 0; back to
  RGB; clip. Uses rgb2lab (MATLAB's imsharpen may go through the sRGB ICC profile;
  see the manifest, type 24 is 'approximate')."""
  del key
  lab = colorspaces.rgb2lab(image)
  lum = lab[..., 0]
  blurred = filters.imfilter(lum, fspecial_gaussian(13, 3.0), "replicate")
  lum = lum + amount * (lum - blurred)
  out = colorspaces.lab2rgb(jnp.concatenate([lum[..., None], lab[..., 1:]], -1))
  return jnp.clip(out, 0.0, 1.0)


def contrast_change(image, amount, key=None):
  """Type 25, `imcontrastc`: curves(I, [0.25 - a/4, 0.75 + a/4]) (5-knot not-a-knot
  spline). Positive a raises contrast."""
  del key
  c = jnp.stack([0.25 - amount / 4, 0.75 + amount / 4]).astype(image.dtype)
  return curves(image, c)
