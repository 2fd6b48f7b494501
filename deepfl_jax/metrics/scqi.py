"""SC-QI (Bae & Kim, IEEE TIP 25(5):2392-2406, 2016): a documented RECONSTRUCTION,
exported as `scqi_proxy` (and the `fr_scores` key "scqi_proxy") so that it is never
mistaken for the authors' SC-QI.

The original SC-QI MATLAB code (announced at https://sites.google.com/site/sunghobaecv/iqa)
was not found in any public source, and the paper body was not available to the
implementer, so this module is NOT MATLAB-parity SC-QI (confidence LOW; docs/matlab_parity.md
section 4). Higher is better; 1 for identical images.

What is taken from the papers [DOC] (abstracts / bibliographic records found by search):
- Bae & Kim, "A Novel Image Quality Assessment With Globally and Locally Consilient
  Visual Quality Perception", TIP 2016 (DOI 10.1109/TIP.2016.2545863): SC-QI is a
  full-reference index built on the structural contrast index (SCI), plus "perceptually
  important features" for (a) contrast sensitivity and (b) chrominance variation. It is
  a quality index (higher = better); its keywords name a JND model. The paper also
  defines SC-DM, a normalised distance-metric variant (not implemented here).
- Bae & Kim, IEEE TIP, Aug. 2014 (KAIST; abstract and keywords: a generalized
  DCT-based JND profile with an elaborate contrast-masking JND model for variable
  block-sized transforms in monochrome images): the SCI is a texture-complexity metric
  used in the DCT domain that "considers not only contrast intensity, but also
  structureness of image patterns"; the same JND profile incorporates the spatial
  contrast sensitivity function (CSF) and is designed for any transform block size.

What is reconstructed [R] (the form is inferred from those statements; the constants
are placeholders [P] (starting values), to be re-tuned if SC-QI scores are obtained):
- Colour: Y, I, Q of FeatureSIM.m (docs/matlab_parity.md 1.3) after F-rule flavour-B
  downsampling [P].
- Local 4 x 4 orthonormal DCT-II of Y on every 4 x 4 window (stride 1, VALID) [P];
  15 AC coefficients c.
- Contrast intensity Cn = sqrt(mean c^2); structureness = kurtosis
  K = mean c^4 / (mean c^2)^2 (high for a few dominant coefficients = structured edge,
  low for spread-out energy = texture/noise); SCI = Cn / K [P: placeholder].
- Contrast-sensitivity feature [R, replaces the placeholder's unweighted S2 when
  `csf=True`, the default]: Ccsf = sqrt(mean (w c)^2) with w(u, v) the Mannos-Sakrison
  CSF A(f) = 2.6 (0.0192 + 0.114 f) exp(-(0.114 f)^1.1) at the DCT basis frequency
  f = sqrt(u^2 + v^2) / (2 * 4) cycles/pixel, converted to cycles/degree for a viewing
  distance of 3 picture heights (original image height) and the downsampling factor,
  normalised so that mean(w^2) = 1 over the AC set. The CSF model and the viewing
  distance are choices of this reconstruction, not the paper's. `csf=False` gives the
  placeholder's S2 on Cn.
- Similarities S1 = (2 SCI_x SCI_y + c1)/(SCI_x^2 + SCI_y^2 + c1) (c1 = 1 [P]) and
  S2 likewise on Ccsf (or Cn) with c2 = 10 [P].
- Chroma: S3 = 4 x 4 box mean (VALID, the same windows) of the FSIMc-style product
  S_I S_Q with constant 200 [P], raised to 0.03 as in FSIMc: Re(S3^0.03) (principal
  value when S3 < 0).
- Luminance [R]: S0 = (2 mu_x mu_y + c0)/(mu_x^2 + mu_y^2 + c0) on the mean of each
  4 x 4 window (its DC coefficient / 4), c0 = (0.01 * 255)^2 as SSIM's C1. The
  abstracts name no luminance feature, but an index built from DCT-block features
  that drops the DC coefficient is blind to brightness: without S0, black vs white,
  flat 0.5 vs flat 0.3 and a global +0.05 shift all scored 1.000, so SC-QI gave no
  label for KADID types 16-18 (brighten, darken, mean shift). Every index of this
  family (SSIM, FSIMc's chroma, GMSD's constant) compares block means this way.
- Pooling: mean of S0 S1 S2 Re(S3^0.03) over the map [P].

Degenerate input: where mean c^2 <= 1e-6 (flat windows; the kurtosis is 0/0) K = 1
and Cn = 0 by definition of this reconstruction (double-`where`, so gradients stay
finite); |S3|^0.03 uses `safe_pow`. There is no MATLAB value to follow, so flat pairs
get this documented value: S1 = S2 = 1 there and the score is the luminance (and
chroma) similarity, e.g. about 1e-4 for black vs white and 0.88 for flat 0.5 vs 0.3,
never a near-perfect score for different brightness. Identical images give exactly 1.
Symmetric in its two arguments (every term is a symmetric similarity).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import color, filters, gradient, matlab, similarity
from deepfl_jax.ops.frequency import dct_matrix

BLOCK = 4
C1, C2, C3 = 1.0, 10.0, 200.0      # [P] placeholder starting values (0..255 scale)
C0 = (0.01 * 255.0) ** 2           # [R] luminance constant, SSIM's C1
CHROMA_EXPONENT = 0.03             # FSIMc's lambda
VIEWING_DISTANCE = 3.0             # [R] picture heights, for the CSF weights
_FLAT = 1e-6                       # mean AC energy below which a window counts as flat


def csf_weights(height: int, factor: int, n: int = BLOCK,
                viewing_distance: float = VIEWING_DISTANCE) -> np.ndarray:
  """Mannos-Sakrison CSF at the n x n DCT basis frequencies -> (n, n), [0, 0] = 0.

  The pixel pitch is that of the downsampled grid (factor original pixels) for an image
  `height` pixels high seen from `viewing_distance` picture heights [R].
  """
  deg_per_pixel = math.degrees(2 * math.atan(1.0 / (2 * viewing_distance * height)))
  pixels_per_degree = 1.0 / (deg_per_pixel * factor)
  u = np.arange(n)
  f = np.sqrt(u[:, None] ** 2 + u[None, :] ** 2) / (2.0 * n) * pixels_per_degree
  a = 2.6 * (0.0192 + 0.114 * f) * np.exp(-(0.114 * f) ** 1.1)
  a[0, 0] = 0.0
  return a / np.sqrt(np.sum(a ** 2) / (n * n - 1))


def _block_dct_list(x: jnp.ndarray, n: int = BLOCK) -> list[jnp.ndarray]:
  d = dct_matrix(n)
  rows = [filters.correlate(x, d[v][None, :], None) for v in range(n)]
  return [filters.correlate(rows[v], d[u][:, None], None)
          for u in range(n) for v in range(n)]


def sci_features(y: jnp.ndarray, weights: np.ndarray | None
                 ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """(SCI, contrast, mean) maps of a luminance image (..., H, W) on 0..255.

  contrast = Ccsf with `weights` (n, n) on the DCT coefficients, or Cn if None; mean =
  the 4 x 4 window mean (orthonormal DC coefficient / 4).
  """
  # Sums over the 15 AC maps as chains of elementwise adds (fused by XLA) rather than
  # reductions over a stacked axis: same numbers, several times faster on CPU.
  coefs = _block_dct_list(y)
  mean = coefs[0] / BLOCK
  ac = coefs[1:]
  sq = [c * c for c in ac]
  m2 = sum(sq) / len(ac)
  m4 = sum(q * q for q in sq) / len(ac)
  busy = m2 > _FLAT
  safe_m2 = jnp.where(busy, m2, 1.0)
  kurtosis = jnp.where(busy, m4 / (safe_m2 * safe_m2), 1.0)
  cn = jnp.where(busy, jnp.sqrt(safe_m2), 0.0)
  sci = cn / kurtosis
  if weights is None:
    return sci, cn, mean
  w2 = weights.reshape(-1)[1:] ** 2
  return (sci, gradient.safe_sqrt(sum(float(v) * q for v, q in zip(w2, sq)) / len(ac)),
          mean)


def scqi_map(x: jnp.ndarray, y: jnp.ndarray, *, csf: bool = True) -> jnp.ndarray:
  """Local SC-QI map S0 S1 S2 Re(S3^0.03) of prepared pairs (N, H, W, C) 0..255 ->
  (N, h - 3, w - 3) on the F-rule downsampled grid (h x w)."""
  f = matlab.downsample_factor(x.shape[1], x.shape[2])
  weights = csf_weights(x.shape[1], f) if csf else None

  def channels(img):
    img = filters.avg_subsample(jnp.moveaxis(img, -1, 1), f, "B")   # (N, C, h, w)
    if img.shape[1] == 1:
      return img[:, 0], None
    yiq = color.apply_matrix(jnp.moveaxis(img, 1, -1), color.YIQ)
    return yiq[..., 0], (yiq[..., 1], yiq[..., 2])

  y1, iq1 = channels(x)
  y2, iq2 = channels(y)
  sci1, con1, mu1 = sci_features(y1, weights)
  sci2, con2, mu2 = sci_features(y2, weights)
  local = (similarity.similarity(mu1, mu2, C0) * similarity.similarity(sci1, sci2, C1)
           * similarity.similarity(con1, con2, C2))
  if iq1 is not None:
    s_iq = similarity.similarity(iq1[0], iq2[0], C3) * similarity.similarity(iq1[1], iq2[1], C3)
    s3 = filters.correlate(s_iq, np.full((BLOCK, BLOCK), 1.0 / BLOCK ** 2), None)
    # Principal value of s3 ** 0.03, real part (as FSIMc's real(...)).
    local = local * gradient.real_pow(s3, CHROMA_EXPONENT)
  return local


@functools.partial(jax.jit, static_argnames=("csf",))
def scqi_core(x: jnp.ndarray, y: jnp.ndarray, csf: bool = True) -> jnp.ndarray:
  """SC-QI reconstruction of prepared pairs (N, H, W, C), C = 1 or 3, on 0..255 -> (N,).

  Grey input (C = 1) has no chroma term (equivalent to replicating it to RGB, whose I
  and Q are zero). No validation; jit/vmap/grad-friendly.
  """
  return jnp.mean(scqi_map(x, y, csf=csf), axis=(-2, -1))


def scqi_proxy(reference, distorted, *, csf: bool = True) -> jnp.ndarray:
  """SC-QI (Bae & Kim 2016), RECONSTRUCTED (see the module docstring); higher = better.
  No MATLAB code or golden value exists; do not report it as SC-QI.

  Args:
    reference: float in [0, 1] or uint8, (N, H, W, 3) or (H, W, 3); grey (..., 1) is
      accepted (no chroma term).
    distorted: same shape. The index is symmetric in its two arguments.
    csf: weight the contrast feature by the reconstructed CSF (default); False gives
      the placeholder's unweighted S2 (plus the luminance term).

  Input class and conversion: the original code is unavailable; we assume, as for the
  other colour metrics, RGB doubles 0..255 (double() of uint8 `imread` images, no
  rounding) and Y, I, Q = FeatureSIM's matrix on them, unrounded.

  Returns:
    (N,) scores, 1 for identical images; finite for flat pairs (see the module
    docstring).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "scqi_proxy", channels=(1, 3),
                              min_size=BLOCK)
  return scqi_core(x, y, csf=csf)
