"""IW-SSIM: information content weighted SSIM (Wang & Li, TIP 2011).

Follows iwssim.m with scale_quality_maps.m, info_content_weight_map.m, imenlarge2.m and
matlabPyrTools' buildLpyr(im, 5):

1. 5-level Laplacian pyramid of both images (binom5 filter sqrt(2)/16 (1 4 6 4 1),
   'reflect1' edges): bands 1..4 are Laplacian, band 5 the low-pass residual.
2. Per band, SSIM-style maps with the 11x11 Gaussian window in 'valid' mode (variances
   clipped at 0): cs at every band (C2 not rescaled), also the luminance term at band 5.
3. Bands 1..4: information-content weights from the REFERENCE band (3x3 neighbourhoods
   plus the enlarged parent band for bands 1..3) and a gain / residual model fitted in
   3x3 boxes, following the Gaussian scale mixture model of Sheikh & Bovik.
4. wmcs_s = sum(cs iw) / sum(iw) (s = 1..4), wmcs_5 = mean(cs l), and
   IW-SSIM = prod wmcs_s^w_s with the MS-SSIM weights normalised to sum 1.

Asymmetric: `reference` alone drives the weights. Higher is better, 1 for identical
images.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.metrics.ssim import (MS_SSIM_WEIGHTS, contrast_structure_term,
                                     gaussian_window, local_moments, luminance_term,
                                     weighted_product)
from deepfl_jax.ops import filters, resize, similarity

N_SCALES = 5
MIN_SIZE = 11 * 2 ** (N_SCALES - 1)    # 176, as iwssim.m (returns -Inf below)
SIGMA_NSQ = 0.4
TOL = 1e-15
BLOCK = 3
# Guard for a singular neighbourhood covariance (flat or one-dimensional reference
# bands, where MATLAB's inv() returns Inf/NaN): inv(C_u) is taken as inv(C_u + delta I)
# with delta = REL * trace(C_u) / N + ABS. It moves the golden values by < 1e-12.
_COV_RIDGE_REL = 1e-12
_COV_RIDGE_ABS = 1e-20
_BINOM5 = np.sqrt(2.0) / 16.0 * np.array([1.0, 4.0, 6.0, 4.0, 1.0])
_HI = jax.lax.Precision.HIGHEST


def _normalised_weights() -> np.ndarray:
  w = np.asarray(MS_SSIM_WEIGHTS, np.float64)
  return w / w.sum()


# ---------------------------------------------------------------------------------------
# Laplacian pyramid (matlabPyrTools buildLpyr with 'binom5' and 'reflect1').

def _reflect1(i: int, n: int) -> int:
  """matlabPyrTools 'reflect1' (NumPy 'reflect': edge sample not repeated)."""
  period = 2 * (n - 1)
  i = i % period
  return i if i < n else period - i


@functools.lru_cache(maxsize=64)
def _reduce_matrix(n: int) -> np.ndarray:
  """(ceil(n/2), n) matrix of corrDn along one axis: binom5 correlation with
  reflect1 edges, keeping samples 0, 2, 4, ..."""
  mat = np.zeros((-(-n // 2), n))
  for k in range(mat.shape[0]):
    for u, t in enumerate(_BINOM5):
      mat[k, _reflect1(2 * k + u - 2, n)] += t
  return mat


@functools.lru_cache(maxsize=64)
def _expand_matrix(m: int, n_target: int) -> np.ndarray:
  """(n_target, m) matrix of upConv along one axis: samples placed at even positions of
  a length-2m zero signal, reflect1 edges, binom5 correlation, first n_target outputs."""
  mat = np.zeros((n_target, m))
  for i in range(n_target):
    for u, t in enumerate(_BINOM5):
      j = _reflect1(i + u - 2, 2 * m)
      if j % 2 == 0:
        mat[i, j // 2] += t
  return mat


def _apply_separable(x: jnp.ndarray, rows: np.ndarray, cols: np.ndarray) -> jnp.ndarray:
  """rows @ x @ cols^T over the last two axes of x (..., H, W)."""
  out = jnp.einsum("ih,...hw->...iw", jnp.asarray(rows, x.dtype), x, precision=_HI)
  return jnp.einsum("...iw,jw->...ij", out, jnp.asarray(cols, x.dtype), precision=_HI)


def _laplacian_pyramid(x: jnp.ndarray) -> list[jnp.ndarray]:
  """buildLpyr(x, 5) on (..., H, W): [band_1 .. band_4 (Laplacian), low-pass residual].

  The 5-tap reduce / expand steps are linear with static sizes, so each is one small
  matrix per axis (built in NumPy): a few matrix products compile far faster on XLA:CPU
  than the equivalent padded, strided shifted-add chains, for a similar run time.
  """
  bands = []
  for _ in range(N_SCALES - 1):
    h, w = x.shape[-2:]
    low = _apply_separable(x, _reduce_matrix(h), _reduce_matrix(w))
    up = _apply_separable(low, _expand_matrix(low.shape[-2], h),
                          _expand_matrix(low.shape[-1], w))
    bands.append(x - up)
    x = low
  bands.append(x)
  return bands


# ---------------------------------------------------------------------------------------
# imenlarge2: 2x enlargement of the parent band, as one matrix per axis.

@functools.lru_cache(maxsize=64)
def _enlarge_matrix(m: int, n_keep: int) -> np.ndarray:
  """(n_keep, m) matrix of imenlarge2 along one axis, cropped to the first n_keep rows.

  Bilinear imresize to 4m - 3 samples, linear extrapolation of one sample at each end
  (4m - 1 samples), every second sample from the first (2m), first n_keep of them.
  Row and column extrapolations are separable, so the 2-D corners come out as in
  imenlarge2 (rows first, then columns).
  """
  r = resize.resize_matrix(m, 4 * m - 3, None, "bilinear", antialias=True)
  ext = np.zeros((4 * m - 1, 4 * m - 3))
  ext[1:-1] = np.eye(4 * m - 3)
  ext[0, 0], ext[0, 1] = 2.0, -1.0
  ext[-1, -1], ext[-1, -2] = 2.0, -1.0
  return (ext @ r)[::2][:n_keep]


def _enlarge_parent(parent: jnp.ndarray, shape: tuple[int, int]) -> jnp.ndarray:
  """imenlarge2(parent)(1:nv, 1:nh) for parent (..., M, N)."""
  er = jnp.asarray(_enlarge_matrix(parent.shape[-2], shape[0]), parent.dtype)
  ec = jnp.asarray(_enlarge_matrix(parent.shape[-1], shape[1]), parent.dtype)
  out = jnp.einsum("im,...mn->...in", er, parent, precision=_HI)
  return jnp.einsum("...in,jn->...ij", out, ec, precision=_HI)


# ---------------------------------------------------------------------------------------
# Information content weights (info_content_weight_map.m), one band.

def _info_weights(y: jnp.ndarray, yn: jnp.ndarray, parent: jnp.ndarray | None,
                  crop: int) -> jnp.ndarray:
  """Weights of one band, (B, nv, nh) x2 -> (B, nv - 2 - 2 crop, nh - 2 - 2 crop).

  Args:
    y, yn: reference and distorted band.
    parent: reference band one scale coarser (B, ceil(nv/2), ceil(nh/2)), or None.
    crop: border removed from the (nv - 2) x (nh - 2) interior map so it aligns with
      the 'valid' SSIM map (4 for the 11x11 window and 3x3 blocks).
  """
  nv, nh = y.shape[-2:]
  box = np.full((BLOCK, BLOCK), 1.0 / BLOCK ** 2)
  f = filters.correlate(jnp.stack([y, yn, y * y, yn * yn, y * yn], axis=-3), box, "zero")
  mean_x, mean_y = f[..., 0, :, :], f[..., 1, :, :]
  cov_xy = f[..., 4, :, :] - mean_x * mean_y
  ss_x = jnp.maximum(f[..., 2, :, :] - mean_x * mean_x, 0.0)
  ss_y = jnp.maximum(f[..., 3, :, :] - mean_y * mean_y, 0.0)
  small_x, small_y = ss_x < TOL, ss_y < TOL
  g = cov_xy / jnp.where(small_x, 1.0, ss_x + TOL)      # double-where: no 1/tol blow-up
  vv = ss_y - g * cov_xy
  g = jnp.where(small_x | small_y, 0.0, g)
  vv = jnp.where(small_y, 0.0, jnp.where(small_x, ss_y, vv))

  # Neighbourhood vectors of the reference band at the interior positions, kept as N
  # planes (B, N, hv, hh): per-pixel work below is matrix products and N-way unrolled
  # elementwise sums (much faster on XLA:CPU than a pixels-by-N layout or reductions).
  hv, hh = nv - 2, nh - 2
  planes = [y[..., 1 + dy:1 + dy + hv, 1 + dx:1 + dx + hh]
            for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
  if parent is not None:
    planes.append(_enlarge_parent(parent, (nv, nh))[..., 1:1 + hv, 1:1 + hh])
  n = len(planes)
  flat = jnp.stack(planes, axis=-3).reshape(y.shape[:-2] + (n, hv * hh))
  c_u = jnp.einsum("...ip,...jp->...ij", flat, flat, precision=_HI) / (hv * hh)
  lam, q = jnp.linalg.eigh(c_u)
  # info_content_weight_map.m: negative eigenvalues -> 0, rescaled to keep the trace.
  lam_pos = jnp.maximum(lam, 0.0)
  total, total_pos = jnp.sum(lam, -1, keepdims=True), jnp.sum(lam_pos, -1, keepdims=True)
  lam = lam_pos * total / (total_pos + (total_pos == 0).astype(lam.dtype))
  # MATLAB rebuilds C_u = Q diag(L) Q' and takes inv(C_u); with the decomposition at
  # hand that inverse is Q diag(1 / L) Q' (no second factorisation). The ridge delta
  # (see _COV_RIDGE_*) keeps it finite for singular C_u.
  ridge = _COV_RIDGE_REL * jnp.sum(lam, -1, keepdims=True) / n + _COV_RIDGE_ABS
  c_inv = jnp.einsum("...ij,...j,...kj->...ik", q, 1.0 / (lam + ridge), q,
                     precision=_HI)

  # Only the positions that survive the final crop are needed from here on.
  inner = [p[..., crop:hv - crop, crop:hh - crop] for p in planes]
  h_in, w_in = inner[0].shape[-2:]
  flat_in = jnp.stack(inner, axis=-3).reshape(y.shape[:-2] + (n, h_in * w_in))
  z = jnp.einsum("...ij,...jp->...ip", c_inv, flat_in, precision=_HI)
  # Row sums unrolled: an N-way elementwise sum fuses; a reduce over axis -2 is slow
  # on XLA:CPU.
  ss = sum(z[..., i, :] * flat_in[..., i, :] for i in range(n)) / n
  ss = ss.reshape(y.shape[:-2] + (h_in, w_in))                     # (B, h', w')
  sl = (Ellipsis, slice(1 + crop, nv - 1 - crop), slice(1 + crop, nh - 1 - crop))
  g, vv = g[sl], vv[sl]
  a = (vv + (1.0 + g * g) * SIGMA_NSQ) * ss / (SIGMA_NSQ * SIGMA_NSQ)
  b = 1.0 + vv / SIGMA_NSQ
  # One broadcast log over the N eigenvalues (then an unrolled sum): N separate log
  # terms make XLA:CPU's gradient program several times slower to compile.
  terms = jnp.log2(b[..., None, :, :] + a[..., None, :, :] * lam[..., :, None, None])
  infow = sum(terms[..., j, :, :] for j in range(n))
  return jnp.where(infow < TOL, 0.0, infow)


def _band_factor(ref: jnp.ndarray, dist: jnp.ndarray,
                 parent: jnp.ndarray | None) -> jnp.ndarray:
  """wmcs of one Laplacian band (1..4): information-weighted mean of cs -> (B,)."""
  window = gaussian_window()
  _, _, s11, s22, s12 = local_moments(ref, dist, window)
  cs = contrast_structure_term(jnp.maximum(s11, 0.0), jnp.maximum(s22, 0.0), s12)
  crop = (window.shape[0] - 1) // 2 - (BLOCK - 1) // 2              # bound1 = 4
  iw = _info_weights(ref, dist, parent, crop)
  # All weights zero (e.g. flat reference and distorted bands; MATLAB gives NaN):
  # fall back to uniform weights.
  return similarity.weighted_mean(cs, iw)


def _lowpass_factor(ref: jnp.ndarray, dist: jnp.ndarray) -> jnp.ndarray:
  """wmcs of the low-pass residual (band 5): mean of cs * l -> (B,)."""
  mu1, mu2, s11, s22, s12 = local_moments(ref, dist, gaussian_window())
  cs = contrast_structure_term(jnp.maximum(s11, 0.0), jnp.maximum(s22, 0.0), s12)
  return jnp.mean(cs * luminance_term(mu1, mu2), axis=(-2, -1))


def _iw_ssim_grey(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """iwssim.m (oimg = x = reference, img = y = distorted) on (B, H, W) 0..255 -> (B,)."""
  pyramid = _laplacian_pyramid(jnp.stack([x, y]))
  factors = []
  for s in range(N_SCALES - 1):
    parent = pyramid[s + 1][0] if s + 1 < N_SCALES - 1 else None
    factors.append(_band_factor(pyramid[s][0], pyramid[s][1], parent))
  factors.append(_lowpass_factor(pyramid[-1][0], pyramid[-1][1]))
  score = weighted_product(jnp.stack(factors, axis=-1), _normalised_weights())
  # A constant reference has all-zero Laplacian bands: MATLAB inverts the zero
  # covariance C_u (Inf) and gets NaN weights, so IW-SSIM is NaN; so is ours.
  flat_ref = jnp.max(x, axis=(-2, -1)) == jnp.min(x, axis=(-2, -1))
  return jnp.where(flat_ref, jnp.nan, score)


def iw_ssim_core(x: jnp.ndarray, y: jnp.ndarray, *,
                 color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """IW-SSIM on prepared (N, H, W, C) 0..255 images (x = reference) -> (N,)."""
  return _inputs.grey_metric(_iw_ssim_grey, x, y, color_mode)


# Colour is converted eagerly; only the grey computation is jitted (one executable
# for all colour modes but per_channel).
_iw_ssim_grey_jit = jax.jit(_iw_ssim_grey)


def iw_ssim(reference, distorted, *,
            color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE) -> jnp.ndarray:
  """IW-SSIM as iwssim.m (oimg = reference, img = distorted), iw_flag = 1.

  Args:
    reference, distorted: (N, H, W, C) or (H, W, C), C = 1 or 3, float in [0, 1] or
      uint8; at least 176 pixels on the shorter side. NOT symmetric: the reference
      drives the information-content weights.
    color_mode: "rgb2gray_uint8" (default), "rgb2gray", "luma" (Y = 0.299 R + 0.587 G
      + 0.114 B unrounded, as piq's MATLAB golden) or "per_channel" (see `_inputs`).

  MATLAB input: iwssim.m works on grey doubles 0..255; run on RGB files it sees
  double(rgb2gray(imread(f))), i.e. MATLAB's rgb2gray of a uint8 image, which is uint8
  (rounded). The default "rgb2gray_uint8" does exactly that; grey input is used as is.

  Returns:
    (N,) IW-SSIM, higher is better (1 for identical images); NaN for a constant
    reference (MATLAB inverts a zero covariance there). Guards against MATLAB's other
    NaN/Inf cases (docs/matlab_parity.md section 2): the neighbourhood covariance gets a
    tiny ridge (relative 1e-12 of its mean eigenvalue plus 1e-20) so singular (flat)
    reference bands stay finite; a band whose weights are all zero is pooled with
    uniform weights; a negative pooled factor gives the real part of the principal
    power.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "iw_ssim", channels=(1, 3),
                              min_size=MIN_SIZE)
  return _inputs.grey_metric(_iw_ssim_grey_jit, x, y, color_mode)
