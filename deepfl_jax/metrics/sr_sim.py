"""SR-SIM: spectral-residual based similarity (Zhang & Li, ICIP 2012; SR_SIM.m).

Y channel (0.299 R + 0.587 G + 0.114 B) or the grey image, F-rule flavour-B
downsampling, spectral-residual saliency (Hou & Zhang) at scale 0.25, Scharr gradient
similarity, saliency-weighted pooling. Higher is better (1 for identical images).
Symmetric.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import filters, gradient, matlab, resize, similarity

SCALE = 0.25
AVE_KERNEL = 3
GAUSS_SIGMA = 3.8
C_SALIENCY, C_GRADIENT = 0.40, 225.0
# Floor on |fft2|^2 (0..255 units): ln 0 -> -inf for an empty spectral bin (flat
# images); 1e-12 is far below any bin of a real image (relative effect < 1e-12).
_SPECTRUM_FLOOR = 1e-12


def saliency(y: jnp.ndarray, gauss_size: int = 10) -> jnp.ndarray:
  """Spectral-residual saliency of SR_SIM.m: (..., h, w) 0..255 -> (..., h, w) in [0, 1].

  exp(R + i P) with R = ln|Z| - box3(ln|Z|) and P = angle(Z) equals Z exp(-box3(ln|Z|)),
  which needs neither `angle` nor a division (both have NaN gradients at Z = 0).
  Guards: |Z|^2 is floored at 1e-12 inside the log (MATLAB: ln 0 = -inf, then NaN, for
  flat images), and mat2gray of a constant map returns ones; `sr_sim_core` returns NaN
  for such images (`saliency_valid`), as MATLAB does.
  """
  h, w = y.shape[-2:]
  small = resize.imresize(y, scale=SCALE)
  z = jnp.fft.fft2(small)
  power = jnp.real(z) ** 2 + jnp.imag(z) ** 2
  log_amp = 0.5 * jnp.log(power + _SPECTRUM_FLOOR)
  avg = filters.imfilter(log_amp, matlab.fspecial_average(AVE_KERNEL), "replicate")
  back = jnp.fft.ifft2(z * jnp.exp(-avg))
  s = jnp.real(back) ** 2 + jnp.imag(back) ** 2
  # Zero padding and MATLAB's anchor (k-1)//2: rows r-4..r+5 for the 10x10 kernel.
  s = filters.imfilter(s, matlab.fspecial_gaussian(gauss_size, GAUSS_SIGMA), "zero")
  lo = jnp.min(s, axis=(-2, -1), keepdims=True)
  span = jnp.max(s, axis=(-2, -1), keepdims=True) - lo
  ok = span > 0
  s = jnp.where(ok, jnp.clip((s - lo) / jnp.where(ok, span, 1.0), 0.0, 1.0), 1.0)
  return resize.imresize(s, size=(h, w))


def saliency_valid(y: jnp.ndarray) -> jnp.ndarray:
  """(..., h, w) 0..255 -> (...) bool: False where SR_SIM.m's saliency is NaN.

  A constant image (at the 0.25 scale) has a single non-zero spectral bin, so MATLAB
  takes ln 0 = -inf in every other bin and -inf - (-inf) = NaN in the residual.
  """
  small = resize.imresize(y, scale=SCALE)
  return jnp.max(small, axis=(-2, -1)) - jnp.min(small, axis=(-2, -1)) > 0


@functools.partial(jax.jit, static_argnames=("gauss_size",))
def sr_sim_core(x: jnp.ndarray, y: jnp.ndarray, gauss_size: int = 10) -> jnp.ndarray:
  """SR-SIM of prepared pairs (N, H, W, C) on 0..255, C = 1 or 3 -> (N,); NaN where
  either image is constant (MATLAB's NaN, see `saliency_valid`)."""
  y1, y2 = _inputs.to_grey(x, "luma"), _inputs.to_grey(y, "luma")
  f = matlab.downsample_factor(y1.shape[-2], y1.shape[-1])
  y1, y2 = filters.avg_subsample(y1, f, "B"), filters.avg_subsample(y2, f, "B")
  s1, s2 = saliency(y1, gauss_size), saliency(y2, gauss_size)
  g1 = gradient.gradient_sq(y1, gradient.SCHARR_X)
  g2 = gradient.gradient_sq(y2, gradient.SCHARR_X)
  sim_s = (2 * s1 * s2 + C_SALIENCY) / (s1 ** 2 + s2 ** 2 + C_SALIENCY)
  sim_g = similarity.similarity_sq(g1, g2, C_GRADIENT)
  weight = jnp.maximum(s1, s2)
  score = similarity.weighted_mean(sim_s * jnp.sqrt(sim_g), weight, fallback=1.0)
  return jnp.where(saliency_valid(y1) & saliency_valid(y2), score, jnp.nan)


def sr_sim(reference, distorted, *, gauss_size: int = 10) -> jnp.ndarray:
  """SR-SIM(image1, image2) as SR_SIM.m; higher is better.

  Args:
    reference, distorted: float in [0, 1] or uint8, (N, H, W, 3) RGB or (N, H, W, 1)
      grey, or a single (H, W, C) image. The shorter side must give at least 10
      samples after F-rule downsampling and the 0.25 resize.
    gauss_size: size of the saliency Gaussian (sigma 3.8); MATLAB's default 10 (an even
      kernel with MATLAB's asymmetric window). 9 reproduces piq's alternative numbers.

  MATLAB input: SR_SIM.m gets the uint8 RGB images of `imread`, converts them with
  double() (0..255) and takes Y = 0.299 R + 0.587 G + 0.114 B on the doubles,
  unrounded; grey images are used as they are. We do the same ("luma").

  Returns:
    (N,) scores in (0, 1]; NaN where either image is constant (MATLAB's NaN).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "sr_sim", channels=(1, 3),
                              min_size=40)
  return sr_sim_core(x, y, gauss_size=gauss_size)
