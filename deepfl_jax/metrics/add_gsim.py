"""ADD-GSIM (Gu, Wang, Zhai, Lin, Yang, Zhang, IEEE Trans. Broadcasting 62(2), 2016):
a documented RECONSTRUCTION of the ADD pooling applied to a gradient-similarity map,
exported as `add_gsim_proxy` (and the `fr_scores` key "add_gsim_proxy") so that it is
never mistaken for the authors' ADD-GSIM.

The ADD source code was not found in any public source and the paper body was not
available to the implementer, so this is NOT parity ADD-GSIM (confidence LOW;
docs/matlab_parity.md section 4). Higher is better; 1 for identical images (it may
exceed 1 for a contrast-enhanced distorted image, by design of the entropy gain
multiplier).

What is taken from the sources [DOC]/[SRC]:
- The paper (DOI 10.1109/TBC.2015.2511624; abstract and keywords): ADD is a pooling
  model for a local distortion map that considers the distributions of distortion
  position, distortion intensity, frequency changes and histogram changes; its parts
  are multi-scale (MS), ranking-based weighting (RW), a frequency variation-induced
  adjuster (FVA) and an entropy gain multiplier (EGM). The paper reports the pooling
  applied to several local measures (ADD-SSIM, ADD-GSIM: photosynthesis-team/piq issue
  #114, still open, i.e. no public port exists there either).
- The local map is Ke Gu's GSIM (`snw_gsim_index.m`, MMSP 2012) [SRC, its use
  in ADD-GSIM is R]: grey image, F-rule flavour-A downsampling (as ssim.m), Scharr
  gradients (conv2 'same'), gsim = (2 g1 g2 + 170) / (g1^2 + g2^2 + 170).

What is reconstructed [R] / placeholder [P] (the constants are placeholders throughout):
- Grey: as Gu's GSIM code, MATLAB rgb2gray of the uint8 image, i.e. rounded
  ("rgb2gray_uint8", the default, as for the other grey metrics); "rgb2gray" (unrounded)
  is the option to use when gradients w.r.t. the input are wanted (the rounding makes
  them 0). Grey (C = 1) input passes through.
- MS [P]: gsim maps at scales s = 0, 1, 2 (each halving by 2 x 2 mean, flavour A);
  Q_MS = prod_s Q_s^(1/3).
- RW [P]: per scale, local qualities sorted ascending q_(1..n) and weighted by rank,
  w_i = exp(-(i - 1) / (0.1 n)), Q_s = sum w_i q_(i) / sum w_i, so the worst ~10% of
  the map dominate (differentiable: the sort's gradient is a permutation; the sort runs
  on order-preserving integer keys, several times faster than a float sort on CPU).
- FVA [P]: exp(-kf |ln((E_d + 1) / (E_r + 1))|), kf = 0.1, E = mean squared response
  of the 3 x 3 Laplacian [0 1 0; 1 -4 1; 0 1 0] (VALID) on the full-resolution grey
  image: penalises both a loss (blur) and a gain (noise) of high-frequency energy.
- EGM [P]: 1 + ke max(0, H_d - H_r), ke = 0.05, H = Shannon entropy (bits) of the
  256-bin grey-level histogram: rewards an entropy gain (contrast enhancement).
  The histogram is a differentiable soft histogram (each grey value v on 0..255 is
  shared linearly between bins floor(v) and floor(v) + 1); it equals the hard
  histogram for integer grey levels. 0 log 0 is taken as 0 (double-`where`).
- ADD-GSIM = Q_MS * FVA * EGM.

Guards: gradient magnitudes use `safe_sqrt`; FVA uses +1 inside the logarithm; flat
and identical images give finite values and gradients. Asymmetric: EGM compares the
distorted entropy with the reference's, so swapping the arguments can change the score
(GSIM, RW, MS and FVA are symmetric).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import filters, gradient, matlab, similarity

GSIM_C = 170.0
SCALES = 3
RANK_RATE = 0.1      # [P] weights decay by e over the worst 10% of the ranked map
KF = 0.1             # [P] FVA strength
KE = 0.05            # [P] EGM strength
LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
BINS = 256


@jax.jit
def gsim_map(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """Gu's GSIM map of two grey images (..., H, W) on 0..255 (Scharr, conv2 'same')."""
  sa = gradient.gradient_sq(a, gradient.SCHARR_X)
  sb = gradient.gradient_sq(b, gradient.SCHARR_X)
  return similarity.similarity_sq(sa, sb, GSIM_C)


def rank_weights(n: int, rate: float = RANK_RATE) -> np.ndarray:
  """RW weights for n values sorted ascending (worst first), normalised to sum 1."""
  w = np.exp(-np.arange(n) / (rate * n))
  return w / w.sum()


def _sort_last(v: jnp.ndarray) -> jnp.ndarray:
  """jnp.sort(v, axis=-1) (NaN-free v), faster on CPU and with the same gradient.

  XLA's CPU sort is several times faster on integer keys than on floats, so the floats
  are mapped to order-preserving integers of the same width (negative values get their
  magnitude bits flipped), sorted together with their indices, and the values gathered
  back (differentiable: the gradient is the permutation, as for jnp.sort).
  """
  itype = jnp.int64 if v.dtype == jnp.float64 else jnp.int32
  bits = jax.lax.bitcast_convert_type(v, itype)
  keys = jnp.where(bits < 0, bits ^ jnp.iinfo(itype).max, bits)
  idx = jax.lax.broadcasted_iota(jnp.int32, v.shape, v.ndim - 1)
  _, perm = jax.lax.sort((keys, idx), dimension=v.ndim - 1, is_stable=False, num_keys=1)
  return jnp.take_along_axis(v, perm, axis=-1)


@functools.partial(jax.jit, static_argnames=("rate",))
def rank_weighted_pool(q: jnp.ndarray, rate: float = RANK_RATE) -> jnp.ndarray:
  """RW pooling of a local quality map (..., H, W) -> (...): worst regions weigh most."""
  flat = _sort_last(q.reshape(q.shape[:-2] + (-1,)))
  w = jnp.asarray(rank_weights(flat.shape[-1], rate), q.dtype)
  return jnp.sum(flat * w, axis=-1)


@functools.partial(jax.jit, static_argnames=("scales", "rate"))
def multiscale_quality(a: jnp.ndarray, b: jnp.ndarray, scales: int = SCALES,
                       rate: float = RANK_RATE) -> jnp.ndarray:
  """MS + RW: geometric mean over scales of the rank-pooled GSIM -> (...).

  a, b: grey (..., H, W) on 0..255 at full resolution; the F-rule flavour-A step
  comes first, then 2 x 2 halvings (flavour A).
  """
  f = matlab.downsample_factor(a.shape[-2], a.shape[-1])
  a, b = filters.avg_subsample(a, f, "A"), filters.avg_subsample(b, f, "A")
  log_q = 0.0
  for s in range(scales):
    if s:
      a, b = filters.avg_subsample(a, 2, "A"), filters.avg_subsample(b, 2, "A")
    log_q = log_q + jnp.log(rank_weighted_pool(gsim_map(a, b), rate)) / scales
  return jnp.exp(log_q)


def high_frequency_energy(a: jnp.ndarray) -> jnp.ndarray:
  """Mean squared 3 x 3 Laplacian response (VALID) of (..., H, W) -> (...).

  The 5-point Laplacian is the sum of two rank-1 second differences, [1 -2 1] down the
  columns and along the rows (cheaper than a general 3 x 3 convolution; same numbers).
  """
  d2 = np.array([1.0, -2.0, 1.0])
  rows = filters.correlate(a, d2[:, None], None)[..., 1:-1]
  cols = filters.correlate(a, d2[None, :], None)[..., 1:-1, :]
  return jnp.mean((rows + cols) ** 2, axis=(-2, -1))


@jax.jit
def frequency_variation_adjuster(a: jnp.ndarray, b: jnp.ndarray,
                                 kf: float = KF) -> jnp.ndarray:
  """FVA in (0, 1]: 1 when the high-frequency energy is unchanged, smaller for both a
  loss (blur) and a gain (noise). a = reference, b = distorted, (..., H, W)."""
  ratio = jnp.log((high_frequency_energy(b) + 1.0) / (high_frequency_energy(a) + 1.0))
  return jnp.exp(-kf * jnp.abs(ratio))


@functools.partial(jax.jit, static_argnames=("bins",))
def soft_histogram(a: jnp.ndarray, bins: int = BINS) -> jnp.ndarray:
  """Normalised histogram (..., bins) of grey values (..., H, W) on 0..bins-1, with
  linear sharing between the two nearest integer bins (differentiable in the values;
  the ordinary histogram for integer values)."""
  v = jnp.clip(a.reshape(a.shape[:-2] + (-1,)), 0.0, bins - 1.0)
  lo = jnp.clip(jnp.floor(v), 0, bins - 2)
  frac = v - lo
  lead = v.shape[:-1]
  offset = (jnp.arange(int(np.prod(lead)), dtype=jnp.int32) * bins).reshape(lead + (1,))
  idx = (jax.lax.stop_gradient(lo).astype(jnp.int32) + offset).reshape(-1)
  total = int(np.prod(lead)) * bins
  # Scatter-add (memory O(pixels), not pixels x bins); its gradient is a gather.
  hist = (jnp.zeros(total, a.dtype).at[idx].add((1.0 - frac).reshape(-1))
          .at[idx + 1].add(frac.reshape(-1)))
  hist = hist.reshape(lead + (bins,))
  return hist / v.shape[-1]


def entropy_bits(p: jnp.ndarray) -> jnp.ndarray:
  """Shannon entropy (bits) of distributions p (..., K), 0 log 0 = 0."""
  pos = p > 0
  safe = jnp.where(pos, p, 1.0)
  return -jnp.sum(jnp.where(pos, p * jnp.log2(safe), 0.0), axis=-1)


@jax.jit
def entropy_gain_multiplier(a: jnp.ndarray, b: jnp.ndarray, ke: float = KE
                            ) -> jnp.ndarray:
  """EGM >= 1: 1 + ke max(0, H(b) - H(a)), a = reference, b = distorted (..., H, W)."""
  gain = entropy_bits(soft_histogram(b)) - entropy_bits(soft_histogram(a))
  return 1.0 + ke * jnp.maximum(gain, 0.0)


@functools.partial(jax.jit, static_argnames=("color_mode",))
def add_gsim_core(x: jnp.ndarray, y: jnp.ndarray, *,
                  color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE
                  ) -> jnp.ndarray:
  """ADD-GSIM reconstruction of prepared pairs (N, H, W, C), C = 1 or 3, on 0..255,
  x = reference, y = distorted -> (N,). No validation; jit/vmap/grad-friendly."""
  return _inputs.grey_metric(_add_gsim_grey, x, y, color_mode)


def _add_gsim_grey(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
  """ADD-GSIM of grey (B, H, W) 0..255 images, a = reference -> (B,)."""
  return (multiscale_quality(a, b) * frequency_variation_adjuster(a, b)
          * entropy_gain_multiplier(a, b))


def add_gsim_proxy(reference, distorted, *,
                   color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE
                   ) -> jnp.ndarray:
  """ADD-GSIM (Gu et al. 2016), RECONSTRUCTED (see the module docstring). No MATLAB
  code or golden value exists; do not report it as ADD-GSIM.

  Args:
    reference: float in [0, 1] or uint8, (N, H, W, 3) or (H, W, 3), or grey (..., 1).
    distorted: same shape. Not symmetric (the entropy gain multiplier rewards a
      distorted image with a higher grey-level entropy than the reference).
    color_mode: grey conversion of RGB input (see `_inputs.to_grey`); default
      "rgb2gray_uint8".

  Input class and conversion: the ADD code is unavailable; Gu's GSIM code, whose map
  this uses, runs on double(rgb2gray(imread(f))): MATLAB's rgb2gray of a uint8 image,
  rounded to uint8. The default does the same.

  Returns:
    (N,) scores; higher is better, 1 for identical images.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "add_gsim_proxy", channels=(1, 3),
                              min_size=8)
  return add_gsim_core(x, y, color_mode=color_mode)
