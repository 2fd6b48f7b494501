"""PSNR in dB with data range 255 (0..255 scale), over all pixels and channels.

PSNR = 10 log10(255^2 / max(MSE, MSE_FLOOR)). The floor keeps identical images finite
(10 log10(255^2 / 1e-10) ~ 148.1 dB) and the gradient finite (it is zero there).
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from deepfl_jax.metrics import _inputs

DATA_RANGE = 255.0
# Smallest MSE used (0..255 scale): identical images give ~148.13 dB instead of inf.
MSE_FLOOR = 1e-10

PsnrColorMode = Literal["rgb", "luma", "rgb2gray", "rgb2gray_uint8", "per_channel"]


def _psnr_from_mse(mse: jnp.ndarray) -> jnp.ndarray:
  return 10.0 * jnp.log10(DATA_RANGE ** 2 / jnp.maximum(mse, MSE_FLOOR))


def _psnr_grey(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  d = x - y
  return _psnr_from_mse(jnp.mean(d * d, axis=(-2, -1)))


def psnr_core(x: jnp.ndarray, y: jnp.ndarray, *,
              color_mode: PsnrColorMode = "rgb") -> jnp.ndarray:
  """PSNR on prepared (N, H, W, C) 0..255 images (no validation) -> (N,)."""
  if color_mode == "rgb":
    d = x - y
    return _psnr_from_mse(jnp.mean(d * d, axis=(-3, -2, -1)))
  return _inputs.grey_metric(_psnr_grey, x, y, color_mode)


_psnr_jit = jax.jit(psnr_core, static_argnames=("color_mode",))


def psnr(reference, distorted, *, color_mode: PsnrColorMode = "rgb") -> jnp.ndarray:
  """Peak signal-to-noise ratio in dB (data range 255).

  Args:
    reference, distorted: (N, H, W, C) or (H, W, C), C = 1 or 3, float in [0, 1] or
      uint8.
    color_mode: "rgb" (default): one MSE over all pixels and channels as given;
      "luma", "rgb2gray", "rgb2gray_uint8": PSNR of the grey conversion;
      "per_channel": mean of the per-channel PSNRs.

  Returns:
    (N,) PSNR in dB, higher is better. The MSE is floored at MSE_FLOOR = 1e-10 (0..255
    scale), so identical images give ~148.13 dB and all gradients stay finite.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "psnr", channels=(1, 3), min_size=1)
  return _psnr_jit(x, y, color_mode=color_mode)
