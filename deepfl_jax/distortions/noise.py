"""Noise types (KADID ids 11-14), MATLAB `imnoise` semantics (clip to [0, 1]).

Each type has `<name>_draws(key, shape)` (all its randomness, so tests can replay the
recorded Octave fields), `<name>_apply(image, param, draws)`, and `<name>(image,
param, key)`. Images (H, W, 3) float in [0, 1].
"""
from __future__ import annotations

import jax.numpy as jnp

from deepfl_jax.distortions import _rng
from deepfl_jax.ops import colorspaces


def normal_draws(key, shape, dtype=jnp.float32):
  return {"n": _rng.normal(key, shape, dtype)}        # = jax.random.normal, faster


def uniform_draws(key, shape, dtype=jnp.float32):
  return {"u": _rng.uniform(key, shape, dtype)}       # = jax.random.uniform, faster


def white_noise_apply(image, variance, draws):
  """Type 11, imnoise(I, 'gaussian', 0, v): clip(I + sqrt(v) N)."""
  return jnp.clip(image + jnp.sqrt(variance) * draws["n"], 0.0, 1.0)


def white_noise_color_component_apply(image, variance, draws):
  """Type 12: MATLAB rgb2ycbcr, Gaussian noise of variance v on Y, Cb and Cr, clip,
  ycbcr2rgb (which clips)."""
  y = colorspaces.rgb2ycbcr(image)
  y = jnp.clip(y + jnp.sqrt(variance) * draws["n"], 0.0, 1.0)
  return colorspaces.ycbcr2rgb(y)


def impulse_noise_apply(image, density, draws):
  """Type 13, imnoise(I, 'salt & pepper', d): u < d/2 -> 0, d/2 <= u < d -> 1."""
  u = draws["u"]
  out = jnp.where(u < density / 2, 0.0, image)
  return jnp.where((u >= density / 2) & (u < density), 1.0, out)


def multiplicative_noise_apply(image, variance, draws):
  """Type 14, imnoise(I, 'speckle', v): I + sqrt(12 v) I (u - 0.5) (uniform), clip."""
  n = jnp.sqrt(12.0 * variance) * (draws["u"] - 0.5)
  return jnp.clip(image + n * image, 0.0, 1.0)


def white_noise(image, variance, key):
  return white_noise_apply(image, variance, normal_draws(key, image.shape, image.dtype))


def white_noise_color_component(image, variance, key):
  return white_noise_color_component_apply(
      image, variance, normal_draws(key, image.shape, image.dtype))


def impulse_noise(image, density, key):
  return impulse_noise_apply(image, density, uniform_draws(key, image.shape, image.dtype))


def multiplicative_noise(image, variance, key):
  return multiplicative_noise_apply(
      image, variance, uniform_draws(key, image.shape, image.dtype))
