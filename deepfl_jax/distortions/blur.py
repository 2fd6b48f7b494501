"""Blur types (KADID ids 1-3): Gaussian, lens (disk) and motion blur.

Images (H, W, 3) float in [0, 1]; parameters may be traced scalars, so kernels are
built in JAX inside a static support sized for the largest KADID level (`max_*`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from deepfl_jax.distortions._common import (channels_first, channels_last,
                                            filter_replicate, imgaussfilt)
from deepfl_jax.ops import kernels


def gaussian_blur(image: jnp.ndarray, sigma, key=None, *, max_sigma: float = 5.0):
  """Type 1, `imblurgauss`: MATLAB imgaussfilt(I, sigma) per channel (kernel size
  2*ceil(2*sigma)+1, replicate padding). sigma > max_sigma is truncated to the
  support of max_sigma."""
  del key
  r = kernels.gauss_support(max_sigma)
  return channels_last(imgaussfilt(channels_first(image), sigma, r))


def lens_blur(image: jnp.ndarray, radius, key=None, *, max_radius: float = 8.0):
  """Type 2, `imblurlens`: imfilter with fspecial('disk', radius), replicate."""
  del key
  r = max(1, int(-(-(max_radius - 0.5) // 1)))
  k = kernels.fspecial_disk(radius, r, image.dtype)
  return channels_last(filter_replicate(channels_first(image), k))


def motion_blur_draws(key, shape=None, dtype=jnp.float32):
  """The one random draw of type 3: integer angle in [0, 180] degrees."""
  del shape
  return {"angle": jax.random.randint(key, (), 0, 181).astype(dtype)}


def motion_blur_apply(image, length, draws, *, max_length: float = 10.0):
  """Type 3, `imblurmotion`: imfilter (correlation) with fspecial('motion', length,
  angle), replicate padding."""
  r = kernels.motion_half_width(max_length)
  k = kernels.fspecial_motion(length, draws["angle"], r, image.dtype)
  return channels_last(filter_replicate(channels_first(image), k))


def motion_blur(image, length, key, *, max_length: float = 10.0):
  """Type 3 with its angle drawn from `key`."""
  return motion_blur_apply(image, length, motion_blur_draws(key, image.shape, image.dtype),
                           max_length=max_length)
