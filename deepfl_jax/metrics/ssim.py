"""SSIM and MS-SSIM with MATLAB parity (Wang et al., TIP 2004; ssim.m and msssim.m).

- `ssim`: Wang's ssim.m "SSIM Index with automatic downsampling, v1.0" (2009): F-rule
  pre-downsampling (flavour A), 11x11 Gaussian window (sigma 1.5) in 'valid' mode,
  K = (0.01, 0.03), L = 255, mean of the SSIM map.
- `ms_ssim`: msssim.m + ssim_index_new.m (Wang, Simoncelli, Bovik 2003): 5 levels with
  a 2x flavour-A step between them, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
  (sum 1.0001, not renormalised), 'product' pooling.

Both are grey-image metrics; colour input goes through `color_mode` (see
`_inputs.grey_metric`). Higher is better, 1 for identical images.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import filters, matlab

K1, K2, DATA_RANGE = 0.01, 0.03, 255.0
C1 = (K1 * DATA_RANGE) ** 2      # 6.5025
C2 = (K2 * DATA_RANGE) ** 2      # 58.5225
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_LEVELS = 5
# msssim.m returns -Inf when min(H, W) / 2^(level - 1) < 11.
MS_SSIM_MIN_SIZE = 11 * 2 ** (MS_SSIM_LEVELS - 1)   # 176


def gaussian_window() -> np.ndarray:
  """fspecial('gaussian', 11, 1.5): the window of ssim.m, msssim.m and iwssim.m."""
  return matlab.fspecial_gaussian(11, 1.5)


def local_moments(x: jnp.ndarray, y: jnp.ndarray, window: np.ndarray):
  """'valid' windowed means, variances and covariance of two (..., H, W) images.

  Returns mu1, mu2, s11, s22, s12, each (..., H - kh + 1, W - kw + 1), computed as
  filter2(w, x, 'valid') etc. (variances not clipped). The five filtered maps share one
  stacked (separable) filtering pass. Both images are shifted by one common per-image
  constant (their mean, no gradient) before the second moments are formed: the moments
  are unchanged mathematically, but float32 loses far less to cancellation in
  E[x^2] - mu^2 on the 0..255 scale.
  """
  c = jax.lax.stop_gradient(0.5 * (jnp.mean(x, axis=(-2, -1), keepdims=True)
                                   + jnp.mean(y, axis=(-2, -1), keepdims=True)))
  xc, yc = x - c, y - c
  stats = jnp.stack([xc, yc, xc * xc, yc * yc, xc * yc], axis=-3)
  f = filters.correlate(stats, window, boundary=None)
  m1, m2 = f[..., 0, :, :], f[..., 1, :, :]
  s11 = f[..., 2, :, :] - m1 * m1
  s22 = f[..., 3, :, :] - m2 * m2
  s12 = f[..., 4, :, :] - m1 * m2
  return m1 + c, m2 + c, s11, s22, s12


def luminance_term(mu1: jnp.ndarray, mu2: jnp.ndarray) -> jnp.ndarray:
  return (2.0 * mu1 * mu2 + C1) / (mu1 * mu1 + mu2 * mu2 + C1)


def contrast_structure_term(s11: jnp.ndarray, s22: jnp.ndarray,
                            s12: jnp.ndarray) -> jnp.ndarray:
  return (2.0 * s12 + C2) / (s11 + s22 + C2)


def weighted_product(values: jnp.ndarray, weights) -> jnp.ndarray:
  """Real part of MATLAB's prod(values .^ weights) over the last axis.

  MATLAB raises a negative base to a non-integer power as the principal complex value
  |b|^p exp(i pi p); the product's real part is prod|v|^w * cos(pi * sum of w over the
  negative v) (project choice, docs/matlab_parity.md section 2). Computed as
  exp(sum w log|v|) with a double `where`, so a zero base gives 0 with a finite (zero)
  gradient instead of NaN.
  """
  w = jnp.asarray(np.asarray(weights, np.float64), values.dtype)
  mag = jnp.abs(values)
  nonzero = mag > 0
  log_mag = jnp.log(jnp.where(nonzero, mag, 1.0))
  any_zero = jnp.any(~nonzero, axis=-1)
  modulus = jnp.exp(jnp.sum(w * log_mag, axis=-1))
  phase = jnp.pi * jnp.sum(jnp.where(values < 0, w, 0.0), axis=-1)
  return jnp.where(any_zero, 0.0, modulus * jnp.cos(phase))


def _ssim_grey(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """ssim.m on grey (B, H, W) 0..255 images -> (B,)."""
  f = matlab.downsample_factor(*x.shape[-2:])
  if f > 1:
    both = filters.avg_subsample(jnp.stack([x, y]), f, "A")
    x, y = both[0], both[1]
  mu1, mu2, s11, s22, s12 = local_moments(x, y, gaussian_window())
  ssim_map = luminance_term(mu1, mu2) * contrast_structure_term(s11, s22, s12)
  return matlab.mean2(ssim_map)


def _ms_ssim_grey(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """msssim.m ('product', 5 levels) on grey (B, H, W) 0..255 images -> (B,)."""
  window = gaussian_window()
  factors = []
  for level in range(MS_SSIM_LEVELS):
    mu1, mu2, s11, s22, s12 = local_moments(x, y, window)
    cs = contrast_structure_term(s11, s22, s12)
    if level < MS_SSIM_LEVELS - 1:
      factors.append(matlab.mean2(cs))
      # msssim.m: imfilter(., ones(2)/4, 'symmetric') then every second sample.
      both = filters.avg_subsample(jnp.stack([x, y]), 2, "A")
      x, y = both[0], both[1]
    else:
      factors.append(matlab.mean2(luminance_term(mu1, mu2) * cs))
  return weighted_product(jnp.stack(factors, axis=-1), MS_SSIM_WEIGHTS)


def ssim_core(x: jnp.ndarray, y: jnp.ndarray, *,
              color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """SSIM on prepared (N, H, W, C) 0..255 images (no validation) -> (N,)."""
  return _inputs.grey_metric(_ssim_grey, x, y, color_mode)


def ms_ssim_core(x: jnp.ndarray, y: jnp.ndarray, *,
                 color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """MS-SSIM on prepared (N, H, W, C) 0..255 images (no validation) -> (N,)."""
  return _inputs.grey_metric(_ms_ssim_grey, x, y, color_mode)


# The public functions convert colour eagerly and jit only the grey computation, so
# every colour mode (except per_channel, which triples the batch) reuses one executable.
_ssim_grey_jit = jax.jit(_ssim_grey)
_ms_ssim_grey_jit = jax.jit(_ms_ssim_grey)


def ssim(reference, distorted, *,
         color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """SSIM (Wang et al. 2004) as ssim.m v1.0 with automatic downsampling (2009).

  Args:
    reference, distorted: (N, H, W, C) or (H, W, C), C = 1 or 3, float in [0, 1] or
      uint8; at least 11 pixels on the shorter side. Symmetric in its arguments.
    color_mode: "rgb2gray_uint8" (default), "rgb2gray", "luma" (Y = 0.299 R + 0.587 G
      + 0.114 B, unrounded) or "per_channel" (mean of the R, G, B scores; MATLAB's
      0.7820 on TID2013 I01); see `_inputs.to_grey`.

  MATLAB input: ssim.m works on grey doubles 0..255; run on RGB files it sees
  double(rgb2gray(imread(f))), and MATLAB's rgb2gray of a uint8 image is uint8
  (rounded half away from zero). The default "rgb2gray_uint8" does exactly that;
  grey input is used as is.

  Returns:
    (N,) SSIM, higher is better (<= 1, 1 for identical images; may be negative).
    Always finite (C1, C2 > 0).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "ssim", channels=(1, 3), min_size=11)
  return _inputs.grey_metric(_ssim_grey_jit, x, y, color_mode)


def ms_ssim(reference, distorted, *,
            color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """MS-SSIM (Wang, Simoncelli, Bovik 2003) as msssim.m, 'product' method.

  Args:
    reference, distorted: as `ssim`, at least 176 pixels on the shorter side (msssim.m
      rejects smaller images). Symmetric.
    color_mode: as `ssim`.

  MATLAB input: as `ssim` (msssim.m on double(rgb2gray(imread(f))), uint8-rounded).

  Returns:
    (N,) MS-SSIM, higher is better (1 for identical images). A negative mean cs (or
    final-level SSIM) makes MATLAB's result complex; this returns the real part of the
    principal value (`weighted_product`), finite with finite gradients.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "ms_ssim", channels=(1, 3),
                              min_size=MS_SSIM_MIN_SIZE)
  return _inputs.grey_metric(_ms_ssim_grey_jit, x, y, color_mode)
