"""Colour types (KADID ids 4, 5, 7, 8; 6 lives in quantize.py). Images (H, W, 3)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from deepfl_jax.distortions._common import imgaussfilt, mapmm
from deepfl_jax.ops import colorspaces, kernels
from deepfl_jax.ops.color import rgb2gray
from deepfl_jax.ops.matlab import matlab_round, round_half_away
from deepfl_jax.ops.order_stats import kth_smallest


def color_diffusion(image, amount, key=None, *, max_amount: float = 12.0):
  """Type 4, `imcolordiffuse` -> imcolorblur(I, 1.5 a + 2, a): in Lab, blur a* and b*
  with imgaussfilt(sigma = 1.5 a + 2), THEN multiply them by a; lab2rgb; clip."""
  del key
  lab = colorspaces.rgb2lab(image)
  sigma = 1.5 * amount + 2.0
  # A constant amount (the driver's per-level programs) gets its own, narrower
  # support: the taps beyond it are zero anyway (81 taps at a = 12, 15 at a = 1).
  const = isinstance(amount, (int, float))
  r = kernels.gauss_support(sigma if const else 1.5 * max_amount + 2.0)
  ab = imgaussfilt(jnp.moveaxis(lab[..., 1:], -1, 0), sigma, r) * amount
  lab = jnp.concatenate([lab[..., :1], jnp.moveaxis(ab, 0, -1)], -1)
  return jnp.clip(colorspaces.lab2rgb(lab), 0.0, 1.0)


def _percentile_clip(e, lo=1.0, hi=99.0):
  """KADID `ps2`/`percentile1`: clip to the values at sorted indices round(N p / 100)
  (1-based, clamped to [1, N])."""
  flat = e.ravel()
  n = flat.shape[0]
  idx = lambda p: min(max(matlab_round(n * p / 100), 1), n) - 1
  return jnp.clip(e, kth_smallest(flat, idx(lo)), kth_smallest(flat, idx(hi)))


def color_shift_edge_weight(image):
  """The blend weight e of type 5 (H, W) in [0, 1] from the grey image's edges."""
  g = rgb2gray(image)
  gy, gx = jnp.gradient(g)   # MATLAB `gradient`: one-sided at the ends
  e = jnp.sqrt(gx ** 2 + gy ** 2)
  e = mapmm(imgaussfilt(e[None], 4.0, kernels.gauss_support(4.0))[0])
  e = mapmm(jnp.clip(e, 0.1, 1.0))
  return mapmm(_percentile_clip(e))


def color_shift_draws(key, shape=None, dtype=jnp.float32):
  """The random draw of type 5: rand(1, 2) (row, column direction)."""
  del shape
  return {"u": jax.random.uniform(key, (2,), dtype)}


def color_shift_apply(image, amount, draws):
  """Type 5, `imcolorshift`: shift = round(normr(rand(1,2)) * amount) (rows, cols);
  the green channel shifted by it (imshift: replicate pad by max(shift), circshift,
  unpad == reading the clamped source pixel) and blended with the edge weight e:
  G' = e shifted + (1 - e) G."""
  u = draws["u"]
  shift = round_half_away(u / jnp.sqrt(jnp.sum(u ** 2)) * amount).astype(jnp.int32)
  h, w = image.shape[:2]
  rows = jnp.clip(jnp.arange(h) - shift[0], 0, h - 1)
  cols = jnp.clip(jnp.arange(w) - shift[1], 0, w - 1)
  green = image[..., 1]
  shifted = green[rows][:, cols]
  e = color_shift_edge_weight(image)
  g2 = shifted * e + green * (1 - e)
  return image.at[..., 1].set(g2)


def color_shift(image, amount, key):
  return color_shift_apply(image, amount, color_shift_draws(key, image.shape, image.dtype))


def color_saturation_hsv(image, factor, key=None):
  """Type 7, `imcolorsaturate`: HSV, S *= factor, hsv2rgb (MATLAB's global rescale);
  no clipping (the driver's final mapmm handles the range)."""
  del key
  hsv = colorspaces.rgb2hsv(image)
  hsv = hsv.at[..., 1].multiply(factor)
  return colorspaces.hsv2rgb(hsv, global_rescale=True)


def color_saturation_lab(image, factor, key=None):
  """Type 8, `imsaturate`: Lab, a* and b* *= factor, lab2rgb, clip."""
  del key
  lab = colorspaces.rgb2lab(image)
  lab = jnp.concatenate([lab[..., :1], lab[..., 1:] * factor], -1)
  return jnp.clip(colorspaces.lab2rgb(lab), 0.0, 1.0)
