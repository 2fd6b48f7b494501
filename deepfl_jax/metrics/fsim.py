"""FSIM and FSIMc: feature similarity (Zhang, Zhang, Mou, Zhang, TIP 2011; FeatureSIM.m).

YIQ with FeatureSIM's own chroma rows (ops.color.YIQ), F-rule flavour-B downsampling,
phase congruency by Kovesi's `phasecong2` (log-Gabor filters, 4 scales x 4 orientations,
noise threshold from the median smallest-scale energy), Scharr gradient magnitude,
PC-max pooling; FSIMc adds Re((S_I S_Q)^0.03). Higher is better (1 for identical
images). Symmetric in its two arguments.

All 16 filters are NumPy float64 constants built once per image size; each image is
transformed once (one fft2) and all 16 filtered responses come from one batched ifft2.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import (color, filters, frequency, gradient, matlab, order_stats,
                            similarity)

# phasecong2 settings used by FeatureSIM.m.
NSCALE, NORIENT = 4, 4
MIN_WAVELENGTH, MULT, SIGMA_ON_F = 6.0, 2.0, 0.55
D_THETA_ON_SIGMA, NOISE_K, EPSILON = 1.2, 2.0, 1e-4
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
# PC = EnergyAll / AnAll is 0/0 on flat images (MATLAB: NaN). Where AnAll (0..255
# units, a sum of 16 band-pass amplitudes) is below this, PC := 0. For any textured
# image the noise threshold T exceeds it, so Energy - T <= AnAll - T < 0 there and
# MATLAB's PC is 0 too: the guard does not change MATLAB's numbers.
_AN_FLOOR = 1e-3


@functools.lru_cache(maxsize=32)
def phasecong_filters(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
  """phasecong2's frequency-domain filters and noise-threshold factors.

  Returns:
    filters: (NORIENT, NSCALE, rows, cols) float64, log-Gabor x angular spread (zero
      frequency at [0, 0]).
    noise_factor: (NORIENT,) float64 c_o with T_o = c_o sqrt(median |EO_{0,o}|^2):
      phasecong2's tau and T folded into one constant (everything but the median is a
      property of the filters).
  """
  radius, theta = frequency.kovesi_grid(rows, cols)
  radius = radius.copy()
  radius[0, 0] = 1.0
  sin_t, cos_t = np.sin(theta), np.cos(theta)
  lp = frequency.lowpass_filter(rows, cols, 0.45, 15)
  log_gabor = []
  for s in range(NSCALE):
    fo = 1.0 / (MIN_WAVELENGTH * MULT ** s)
    lg = np.exp(-np.log(radius / fo) ** 2 / (2 * math.log(SIGMA_ON_F) ** 2)) * lp
    lg[0, 0] = 0.0
    log_gabor.append(lg)
  theta_sigma = math.pi / NORIENT / D_THETA_ON_SIGMA
  bank, factor = [], []
  for o in range(NORIENT):
    angle = o * math.pi / NORIENT
    ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
    dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
    spread = np.exp(-np.arctan2(ds, dc) ** 2 / (2 * theta_sigma ** 2))
    filt = np.stack([lg * spread for lg in log_gabor])
    spatial = np.real(np.fft.ifft2(filt)) * math.sqrt(rows * cols)
    em_n = np.sum(filt[0] ** 2)
    sum_an2 = np.sum(spatial ** 2)
    sum_aiaj = sum(np.sum(spatial[i] * spatial[j])
                   for i in range(NSCALE) for j in range(i + 1, NSCALE))
    # noisePower = median / ln 2 / EM_n; tau = sqrt(noisePower (2 SA2 + 4 SAiAj) / 2);
    # T = (tau sqrt(pi/2) + k tau sqrt(2 - pi/2)) / 1.7.
    tau_per_root_median = math.sqrt(
        (2 * sum_an2 + 4 * sum_aiaj) / (2 * math.log(2) * em_n))
    factor.append(tau_per_root_median * (math.sqrt(math.pi / 2)
                                         + NOISE_K * math.sqrt(2 - math.pi / 2)) / 1.7)
    bank.append(filt)
  return np.stack(bank), np.array(factor)


def phase_congruency(y: jnp.ndarray) -> jnp.ndarray:
  """Kovesi `phasecong2` as called by FeatureSIM.m: (..., H, W) 0..255 -> (..., H, W).

  Guards (docs/matlab_parity.md section 2): amplitudes and the noise threshold use a
  zero-safe sqrt, and PC := 0 where the total amplitude is below `_AN_FLOOR` (flat
  regions, where MATLAB divides 0 by 0).
  """
  rows, cols = y.shape[-2:]
  bank, factor = phasecong_filters(rows, cols)
  real_dtype = y.dtype
  spectrum = jnp.fft.fft2(y)[..., None, None, :, :]
  eo = jnp.fft.ifft2(spectrum * jnp.asarray(bank, real_dtype))   # (..., O, S, H, W)
  e, o = jnp.real(eo), jnp.imag(eo)
  amp2 = e * e + o * o
  amp = gradient.safe_sqrt(amp2)
  sum_e, sum_o = jnp.sum(e, axis=-3), jnp.sum(o, axis=-3)         # (..., O, H, W)
  x_energy = gradient.safe_sqrt(sum_e * sum_e + sum_o * sum_o) + EPSILON
  mean_e = (sum_e / x_energy)[..., None, :, :]
  mean_o = (sum_o / x_energy)[..., None, :, :]
  energy = jnp.sum(e * mean_e + o * mean_o - jnp.abs(e * mean_o - o * mean_e), axis=-3)
  # Sort-free exact median (jnp.median's sort dominated the run time on CPU).
  median = order_stats.median(
      amp2[..., 0, :, :].reshape(amp2.shape[:-4] + (NORIENT, -1)))  # (..., O)
  threshold = gradient.safe_sqrt(median) * jnp.asarray(factor, real_dtype)
  energy = jnp.maximum(energy - threshold[..., None, None], 0.0)
  energy_all = jnp.sum(energy, axis=-3)
  an_all = jnp.sum(amp, axis=(-4, -3))
  ok = an_all > _AN_FLOOR
  return jnp.where(ok, energy_all / jnp.where(ok, an_all, 1.0), 0.0)


def has_structure(y: jnp.ndarray) -> jnp.ndarray:
  """(..., H, W) 0..255 -> (...) bool: False for a constant image.

  phasecong2's band-pass responses vanish exactly on a constant image, so MATLAB's
  PC = EnergyAll ./ AnAll is 0/0 = NaN at every pixel and FSIM/FSIMc are NaN.
  """
  span = jnp.max(y, axis=(-2, -1)) - jnp.min(y, axis=(-2, -1))
  return span > 0


@jax.jit
def fsim_core(x: jnp.ndarray, y: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(FSIM, FSIMc) of prepared pairs (N, H, W, C) on 0..255, C = 1 or 3 -> two (N,).

  For grey input (C = 1) FeatureSIM.m sets I = Q = 1, so FSIMc == FSIM. Degenerate input
  (docs/matlab_parity.md section 2): if either luminance image is constant, MATLAB's
  phase congruency is 0/0 and both scores are NaN; so are ours (Stage 1 masks non-finite
  targets). Elsewhere PC := 0 where the amplitude sum is below `_AN_FLOOR`, which does
  not change MATLAB's numbers (see `_AN_FLOOR`).
  """
  n, h, w, c = x.shape
  f = matlab.downsample_factor(h, w)
  # Downsampling is linear, so averaging RGB first equals FeatureSIM's averaging of
  # Y, I, Q (and is shared with MDSI's identical step inside the fused jit).
  down = lambda a: jnp.moveaxis(
      filters.avg_subsample(jnp.moveaxis(a, -1, 1), f, "B"), 1, -1)
  xs, ys = down(x), down(y)
  if c == 3:
    yiq = color.apply_matrix(jnp.concatenate([xs, ys]), color.YIQ)
    lum, chroma = yiq[..., 0], yiq[..., 1:]
  else:
    lum, chroma = jnp.concatenate([xs, ys])[..., 0], None
  pc = phase_congruency(lum)
  grad2 = gradient.gradient_sq(lum, gradient.SCHARR_X)
  pc1, pc2 = pc[:n], pc[n:]
  s_pc = similarity.similarity(pc1, pc2, T1)
  # 2 G1 G2 = 2 sqrt(G1^2 G2^2): one safe sqrt instead of two.
  s_g = similarity.similarity_sq(grad2[:n], grad2[n:], T2)
  pcm = jnp.maximum(pc1, pc2)
  base = s_g * s_pc
  structured = has_structure(lum)
  valid = structured[:n] & structured[n:]
  score = jnp.where(valid, similarity.weighted_mean(base, pcm), jnp.nan)
  if chroma is None:
    return score, score
  s_i = similarity.similarity(chroma[:n, ..., 0], chroma[n:, ..., 0], T3)
  s_q = similarity.similarity(chroma[:n, ..., 1], chroma[n:, ..., 1], T4)
  score_c = similarity.weighted_mean(base * gradient.real_pow(s_i * s_q, LAMBDA), pcm)
  return score, jnp.where(valid, score_c, jnp.nan)


def _prepare(reference, distorted, name):
  return _inputs.prepare_pair(reference, distorted, name, channels=(1, 3), min_size=8)


def fsim(reference, distorted) -> jnp.ndarray:
  """FSIM = FeatureSIM(imageRef, imageDis) first output (on Y); higher is better.

  Args:
    reference, distorted: float in [0, 1] or uint8, (N, H, W, 3) RGB or (N, H, W, 1)
      grey, or a single (H, W, C) image. Symmetric: swapping the arguments gives the
      same value.

  MATLAB input: FeatureSIM.m gets the uint8 RGB images of `imread` and converts them
  with double() (0..255, no rescaling, no rounding), then Y = 0.299 R + 0.587 G +
  0.114 B (and I, Q for FSIMc) on those doubles, unrounded; grey images are used as Y.
  We do the same: uint8 input is taken as is, float input in [0, 1] is scaled by 255.

  Returns:
    (N,) scores in (0, 1]; 1 for identical images; NaN where either image is constant
    (MATLAB's 0/0, see `fsim_core`).
  """
  x, y = _prepare(reference, distorted, "fsim")
  return fsim_core(x, y)[0]


def fsimc(reference, distorted) -> jnp.ndarray:
  """FSIMc = FeatureSIM(imageRef, imageDis) second output (Y + I, Q chroma).

  Defined for RGB; for grey (N, H, W, 1) input it equals `fsim` (FeatureSIM.m uses
  I = Q = 1 then). Same arguments, MATLAB input class and conversion (YIQ of the
  double RGB, unrounded), range and NaN cases as `fsim`.
  """
  x, y = _prepare(reference, distorted, "fsimc")
  return fsim_core(x, y)[1]
