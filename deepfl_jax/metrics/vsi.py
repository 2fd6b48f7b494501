"""VSI: visual saliency-induced index (Zhang, Shen, Li, TIP 2014; VSI.m with SDSP).

MATLAB semantics (not piq's emulation of the Octave run): SDSP saliency (bilinear MATLAB
`imresize` to 256 x 256 with antialiasing, SDSP's own CIELAB, log-Gabor on the Kovesi
grid, centre and warm-colour priors, bilinear resize back, mat2gray), LMN colour space,
F-rule flavour-B downsampling, Scharr gradient magnitude, saliency-max pooling with
Re((S_M S_N)^0.02). Higher is better (1 for identical images). Symmetric in its two
arguments. Grey input is replicated to RGB.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import (color, colorspaces, filters, frequency, gradient, matlab,
                            resize, similarity)

# VSI.m constants.
C_VS, C_GM, C_CHROM, ALPHA, LAMBDA = 1.27, 386.0, 130.0, 0.40, 0.020
# SDSP parameters as VSI passes them (not SDSP.m's standalone defaults).
SIGMA_F, OMEGA_0, SIGMA_D, SIGMA_C = 1.34, 0.021, 145.0, 0.001
SDSP_SIZE = 256
# Rows L, M, N of VSI.m (docs/matlab_parity.md 1.3).
LMN = np.array([[0.06, 0.63, 0.27],
                [0.30, 0.04, -0.35],
                [0.34, -0.60, 0.17]])
# sRGB (D65 primaries) -> XYZ of SDSP's RGB2Lab.
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
# SDSP's reference white: a rounded D50 (not MATLAB rgb2lab's default D65).
SDSP_WHITE_D50_ROUNDED = np.array([0.9642, 1.0, 0.8251])


def _lab_planes(r: jnp.ndarray, g: jnp.ndarray, b: jnp.ndarray):
  """SDSP's CIELAB on separate R, G, B planes (0..255) -> (L*, a*, b*) planes.

  Planes rather than a trailing channel axis: XLA:CPU vectorises the elementwise
  powers far better on contiguous planes (3x faster here).
  """
  lin = [colorspaces.srgb_to_linear(c / 255.0) for c in (r, g, b)]
  m = SRGB_TO_XYZ / SDSP_WHITE_D50_ROUNDED[:, None]
  f = []
  for row in m:
    t = row[0] * lin[0] + row[1] * lin[1] + row[2] * lin[2]
    cube = t > 0.008856
    f.append(jnp.where(cube, jnp.cbrt(jnp.where(cube, t, 1.0)), (903.3 * t + 16.0) / 116.0))
  return 116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])


def rgb2lab_sdsp_d50(rgb: jnp.ndarray) -> jnp.ndarray:
  """CIELAB as SDSP's RGB2Lab: (..., 3) sRGB on 0..255 -> (..., 3) L*, a*, b*.

  A variant of the standard conversion: sRGB->XYZ with the D65 matrix, but divided by
  the rounded D50 white (0.9642, 1, 0.8251); f(t) = t^(1/3) above 0.008856, else
  (903.3 t + 16) / 116; no clamping (SDSP's RGB2Lab).
  """
  return jnp.stack(_lab_planes(rgb[..., 0], rgb[..., 1], rgb[..., 2]), axis=-1)


@functools.lru_cache(maxsize=8)
def sdsp_log_gabor(rows: int, cols: int) -> np.ndarray:
  """SDSP's frequency-domain log-Gabor (rows, cols) float64, zero frequency at [0, 0].

  Zero outside the radius-0.5 disc of the Kovesi grid (SDSP zeroes u1, u2 there, so ln 0
  sends the filter to 0) and at the zero frequency.
  """
  radius, _ = frequency.kovesi_grid(rows, cols)
  outside = radius > 0.5
  r = np.where(outside | (radius == 0), 1.0, radius)
  lg = np.exp(-np.log(r / OMEGA_0) ** 2 / (2 * SIGMA_F ** 2))
  lg[outside] = 0.0
  lg[0, 0] = 0.0
  return lg


@functools.lru_cache(maxsize=8)
def _centre_prior(rows: int, cols: int) -> np.ndarray:
  i = np.arange(1, rows + 1, dtype=np.float64)[:, None] - rows / 2
  j = np.arange(1, cols + 1, dtype=np.float64)[None, :] - cols / 2
  return np.exp(-(i ** 2 + j ** 2) / SIGMA_D ** 2)


def _mat2gray(a: jnp.ndarray, fill: float) -> jnp.ndarray:
  """MATLAB mat2gray over the last two axes; `fill` where the map is constant."""
  lo = jnp.min(a, axis=(-2, -1), keepdims=True)
  span = jnp.max(a, axis=(-2, -1), keepdims=True) - lo
  ok = span > 0
  return jnp.where(ok, jnp.clip((a - lo) / jnp.where(ok, span, 1.0), 0.0, 1.0), fill)


def sdsp(x: jnp.ndarray, *, with_validity: bool = False):
  """SDSP saliency with VSI's parameters: (N, H, W, 3) RGB 0..255 -> (N, H, W) in [0, 1].

  Where MATLAB divides 0 by 0 (a constant a* or b* channel at 256 x 256, e.g. a flat
  colour image, or a constant saliency map in mat2gray) the map here is 0 instead;
  with `with_validity` also returns (N,) bool, False for those images, whose MATLAB
  saliency (and VSI) is NaN.
  """
  h, w = x.shape[1:3]
  s = SDSP_SIZE
  small = resize.imresize(jnp.moveaxis(x, -1, 1), size=(s, s), method="bilinear")
  lab = jnp.stack(_lab_planes(small[:, 0], small[:, 1], small[:, 2]), axis=1)  # (N,3,s,s)
  # The filter is real and even, so rfft2/irfft2 give real(ifft2(fft2(.) LG)) exactly.
  lg = sdsp_log_gabor(s, s)[:, : s // 2 + 1]
  band = jnp.fft.irfft2(jnp.fft.rfft2(lab) * jnp.asarray(lg, x.dtype), s=(s, s))
  sf = gradient.safe_sqrt(jnp.sum(band * band, axis=1))
  ab = _mat2gray(lab[:, 1:], 0.0)
  sc = 1.0 - jnp.exp(-jnp.sum(ab * ab, axis=1) / SIGMA_C ** 2)
  vs = sf * jnp.asarray(_centre_prior(s, s), x.dtype) * sc
  vs = resize.imresize(vs, size=(h, w), method="bilinear")
  out = _mat2gray(vs, 0.0)
  if not with_validity:
    return out
  ab_span = jnp.max(lab[:, 1:], axis=(-2, -1)) - jnp.min(lab[:, 1:], axis=(-2, -1))
  vs_span = jnp.max(vs, axis=(-2, -1)) - jnp.min(vs, axis=(-2, -1))
  return out, jnp.all(ab_span > 0, axis=-1) & (vs_span > 0)


@jax.jit
def vsi_core(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """VSI of prepared pairs (N, H, W, C) on 0..255, C = 1 (replicated) or 3 -> (N,).

  Degenerate input (docs/matlab_parity.md section 2): NaN where either image's SDSP
  saliency is 0/0 in MATLAB (constant a* or b* after the 256 x 256 resize, e.g. any flat
  image, or a constant saliency map), as MATLAB returns; Stage 1 masks non-finite
  targets.
  """
  x, y = _inputs.rgb(x), _inputs.rgb(y)
  n, h, w, _ = x.shape
  both = jnp.concatenate([x, y])
  vs, valid = sdsp(both, with_validity=True)
  vs = vs[..., None]
  f = matlab.downsample_factor(h, w)
  maps = jnp.concatenate([color.apply_matrix(both, LMN), vs], axis=-1)
  maps = filters.avg_subsample(jnp.moveaxis(maps, -1, 1), f, "B")  # (2N, 4, h, w)
  lum, m, nn, vs = maps[:, 0], maps[:, 1], maps[:, 2], maps[:, 3]
  g2 = gradient.gradient_sq(lum, gradient.SCHARR_X)
  s_vs = similarity.similarity(vs[:n], vs[n:], C_VS)
  s_g = similarity.similarity_sq(g2[:n], g2[n:], C_GM)
  s_c = (similarity.similarity(m[:n], m[n:], C_CHROM)
         * similarity.similarity(nn[:n], nn[n:], C_CHROM))
  s_c = gradient.real_pow(s_c, LAMBDA)  # MATLAB's complex power, real part
  weight = jnp.maximum(vs[:n], vs[n:])
  sim = s_g ** ALPHA * s_vs * s_c
  return jnp.where(valid[:n] & valid[n:], similarity.weighted_mean(sim, weight), jnp.nan)


def vsi(reference, distorted) -> jnp.ndarray:
  """VSI(image1, image2) as VSI.m (MATLAB semantics); higher is better.

  Args:
    reference, distorted: float in [0, 1] or uint8, (N, H, W, 3) RGB or (N, H, W, 1)
      grey (replicated to RGB), or a single (H, W, C) image. Symmetric.

  MATLAB input: VSI.m gets the uint8 RGB images of `imread` and works on double()
  (0..255, no rescaling, no rounding): LMN and SDSP's CIELAB come from those doubles.
  uint8 input is taken as is; float input in [0, 1] is scaled by 255.

  Returns:
    (N,) scores in (0, 1]; 1 for identical images; NaN where MATLAB's saliency is 0/0
    (flat images, see `vsi_core`).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "vsi", channels=(1, 3), min_size=8)
  return vsi_core(x, y)
