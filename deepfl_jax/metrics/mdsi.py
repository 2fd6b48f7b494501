"""MDSI: Mean Deviation Similarity Index (Ziaei Nafchi et al., IEEE Access 2016).

Follows MDSI.m (MATLAB File Exchange #59809): F-rule flavour-B downsampling of R, G, B;
L/H/M opponent channels; Prewitt gradient similarities with the fused luminance;
chromaticity similarity; 'sum' or 'mult' combination; deviation pooling of the principal
fourth root. LOWER is better (0 for identical images, typically 0.2..0.5).
"""
from __future__ import annotations

import functools
import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs
from deepfl_jax.ops import filters, gradient, matlab

Combination = Literal["sum", "mult"]

# Rows L, H, M of MDSI.m (docs/matlab_parity.md 1.3); not YIQ.
LHM = np.array([[0.2989, 0.5870, 0.1140],
                [0.30, 0.04, -0.35],
                [0.34, -0.60, 0.17]])
C1, C2, C3 = 140.0, 55.0, 550.0
ALPHA, GAMMA, BETA = 0.6, 0.2, 0.1


def _polar_pow(v: jnp.ndarray, p: float) -> tuple[jnp.ndarray, jnp.ndarray]:
  """Principal v ** p of a real v as (modulus, argument): |v|^p, p pi [v < 0]."""
  return gradient.safe_pow(jnp.abs(v), p), jnp.where(v < 0, p * math.pi, 0.0)


def _maps(x: jnp.ndarray, y: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """GS and CS maps of (N, H, W, 3) 0..255 Ref x and Dist y -> two (N, h, w)."""
  f = matlab.downsample_factor(x.shape[1], x.shape[2])

  def planes(a):
    # Channel-first after downsampling: on CPU this is ~3x faster than converting
    # channel-last with color.apply_matrix (same numbers, same matrix).
    down = filters.avg_subsample(jnp.moveaxis(a, -1, 1), f, "B")
    return jnp.einsum("kc,nchw->knhw", jnp.asarray(LHM, a.dtype), down,
                      precision=jax.lax.Precision.HIGHEST)

  l1, h1, m1 = planes(x)
  l2, h2, m2 = planes(y)
  fused = 0.5 * (l1 + l2)
  gr, gd, gf = (gradient.gradient_magnitude(a, gradient.PREWITT_X)
                for a in (l1, l2, fused))
  # Terms are grouped so that identical inputs give GS = CS = 1 exactly (2ab = a^2 + b^2
  # bit for bit); otherwise rounding noise of 1e-8 becomes 1e-2 after the 4th root.
  gs12 = (2 * (gr * gd) + C1) / (gr * gr + gd * gd + C1)
  gs13 = (2 * (gr * gf) + C2) / (gr * gr + gf * gf + C2)
  gs23 = (2 * (gd * gf) + C2) / (gd * gd + gf * gf + C2)
  gs = gs12 + gs23 - gs13
  cs = (2 * (h1 * h2 + m1 * m2) + C3) / ((h1 * h1 + h2 * h2) + (m1 * m1 + m2 * m2) + C3)
  return gs, cs


@functools.partial(jax.jit, static_argnames=("combination",))
def mdsi_core(x: jnp.ndarray, y: jnp.ndarray,
              combination: Combination = "sum") -> jnp.ndarray:
  """MDSI of prepared RGB pairs (N, H, W, 3) on 0..255, x = Ref, y = Dist -> (N,).

  Complex powers are carried as (modulus, argument) so that negative GCS (possible:
  GS and CS can be negative) gives MATLAB's principal value, and the gradient stays
  finite: zero moduli use `safe_pow`/`safe_sqrt` (identical images give mad = 0).
  """
  gs, cs = _maps(x, y)
  if combination == "sum":
    r, phi = _polar_pow(ALPHA * gs + (1 - ALPHA) * cs, 0.25)
  elif combination == "mult":
    # GCS = GS^0.2 CS^0.1 (principal, arg in [0, 0.3 pi]); then its principal 4th root.
    (rg, ag), (rc, ac) = _polar_pow(gs, GAMMA), _polar_pow(cs, BETA)
    r, phi = gradient.safe_pow(rg * rc, 0.25), 0.25 * (ag + ac)
  else:
    raise ValueError(f"mdsi: combination must be 'sum' or 'mult', got {combination!r}")
  re, im = r * jnp.cos(phi), r * jnp.sin(phi)
  # mad about the mean, taken after subtracting one sample of the map (the deviation
  # is shift-invariant): a constant map, as for identical images, then gives exactly
  # 0 at every size. Without it, the mean of n equal values computed as sum * (1/n)
  # is off by an ulp for some n (176 x 176 in float32: 2^-24), and the fourth root
  # below turns that into 2^-6 = 0.0156.
  re = re - re[..., :1, :1]
  im = im - im[..., :1, :1]
  dre = re - jnp.mean(re, axis=(-2, -1), keepdims=True)
  dim = im - jnp.mean(im, axis=(-2, -1), keepdims=True)
  deviation = jnp.mean(gradient.safe_sqrt(dre ** 2 + dim ** 2), axis=(-2, -1))
  return gradient.safe_pow(deviation, 0.25)


def mdsi(reference, distorted, *, combination: Combination = "sum") -> jnp.ndarray:
  """MDSI(Ref, Dist) as MDSI.m; LOWER is better (0 for identical images).

  Args:
    reference: Ref, float in [0, 1] or uint8, (N, H, W, 3) or (H, W, 3); grey
      (..., 1) is replicated to RGB (as the MATLAB goldens were made).
    distorted: Dist, same shape. The roles are not symmetric (the fused luminance
      enters GS with a sign): swapping them changes the score.
    combination: 'sum' (default, 0.6 GS + 0.4 CS) or 'mult' (GS^0.2 CS^0.1).

  MATLAB input: MDSI.m gets the uint8 RGB images of `imread` and works on double()
  (0..255, no rescaling, no rounding); L, H, M come from those doubles. uint8 input is
  taken as is; float input in [0, 1] is scaled by 255.

  Returns:
    (N,) scores; exactly 0 for identical images at every size. Always finite (C1, C2,
    C3 > 0: flat pairs have a defined MATLAB value).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "mdsi", channels=(1, 3))
  return mdsi_core(_inputs.rgb(x), _inputs.rgb(y), combination=combination)
