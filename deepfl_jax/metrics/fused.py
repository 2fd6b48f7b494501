"""All 11 DeepFL-IQA proxy metrics in one jit-compiled call.

`fr_scores` validates once, converts once to the MATLAB 0..255 scale and calls every
metric's `*_core` inside a single `jax.jit`, so XLA compiles one program for the batch
and shares the work the metrics have in common (colour conversions, F-rule downsampling,
Gaussian and gradient filters appear once in the fused graph). Output order is the
KADIS-700k score file's columns: SSIM, MS-SSIM, IW-SSIM, MDSI, VSI, FSIM(c), GMSD, SFF,
SCQI, ADD-GSIM, SR-SIM. SC-QI and ADD-GSIM are our reconstructions and carry the keys
"scqi_proxy" and "add_gsim_proxy".

Degenerate pairs: where MATLAB computes 0/0 (a constant image for FSIMc, VSI and SR-SIM;
a constant reference for IW-SSIM and SFF) the score is NaN, as MATLAB's; the Stage 1
loss masks non-finite targets. All other scores are finite.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from deepfl_jax.metrics import _inputs
# Import the cores from their modules (the package namespace holds the public functions).
from deepfl_jax.metrics.add_gsim import add_gsim_core
from deepfl_jax.metrics.fsim import fsim_core
from deepfl_jax.metrics.gmsd import gmsd_core
from deepfl_jax.metrics.iw_ssim import iw_ssim_core
from deepfl_jax.metrics.mdsi import mdsi_core
from deepfl_jax.metrics.scqi import scqi_core
from deepfl_jax.metrics.sff import load_w, sff_core
from deepfl_jax.metrics.sr_sim import sr_sim_core
from deepfl_jax.metrics.ssim import ms_ssim_core, ssim_core
from deepfl_jax.metrics.vsi import vsi_core

# KADIS-700k score-file order, with each metric's direction.
METRIC_NAMES = ("ssim", "ms_ssim", "iw_ssim", "mdsi", "vsi", "fsimc", "gmsd", "sff",
                "scqi_proxy", "add_gsim_proxy", "sr_sim")
# Metrics that follow the authors' MATLAB code (SFF uses our own W, SC-QI and ADD-GSIM
# are reconstructions): only these may take the published KADIS-700k CDFs.
MATLAB_PARITY = ("ssim", "ms_ssim", "iw_ssim", "mdsi", "vsi", "fsimc", "gmsd", "sr_sim")
HIGHER_IS_BETTER = {name: name not in ("mdsi", "gmsd") for name in METRIC_NAMES}
# MS-SSIM and IW-SSIM need five dyadic levels of at least 11 px.
MIN_SIZE = 176


@functools.partial(jax.jit, static_argnames=("color_mode",))
def fr_scores_core(x: jnp.ndarray, y: jnp.ndarray, sff_w: jnp.ndarray,
                   color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE
                   ) -> dict[str, jnp.ndarray]:
  """The 11 scores of prepared (N, H, W, 3) 0..255 pairs (no validation).

  Note: as a jit output the dict comes back with sorted keys; `fr_scores` restores
  the score-file order, and `stack` always orders by `METRIC_NAMES`.
  """
  scores = {
      "ssim": ssim_core(x, y, color_mode=color_mode),
      "ms_ssim": ms_ssim_core(x, y, color_mode=color_mode),
      "iw_ssim": iw_ssim_core(x, y, color_mode=color_mode),
      "mdsi": mdsi_core(x, y),
      "vsi": vsi_core(x, y),
      "fsimc": fsim_core(x, y)[1],
      "gmsd": gmsd_core(x, y, color_mode=color_mode),
      "sff": sff_core(x, y, sff_w),
      "scqi_proxy": scqi_core(x, y),
      "add_gsim_proxy": add_gsim_core(x, y, color_mode=color_mode),
      "sr_sim": sr_sim_core(x, y),
  }
  return {name: scores[name] for name in METRIC_NAMES}


def fr_scores(reference, distorted, *, color_mode: _inputs.ColorMode = _inputs.DEFAULT_COLOR_MODE,
              sff_w=None) -> dict[str, jnp.ndarray]:
  """All 11 proxies for a batch, in the KADIS score-file order.

  Args:
    reference, distorted: float in [0, 1] (or uint8), (N, H, W, 3) or (H, W, 3); grey
      (N, H, W, 1) is replicated to RGB. At least 176 px on the shorter side.
    color_mode: grey conversion for SSIM, MS-SSIM, IW-SSIM, GMSD and ADD-GSIM (see
      `_inputs.to_grey`); default "rgb2gray_uint8", what their MATLAB codes see on RGB
      files (rgb2gray of a uint8 image is rounded uint8). The other metrics convert
      as their MATLAB codes do, independent of this (each function's docstring).
    sff_w: SFF feature detector ((8, 192) array or path to W.mat); default the shipped one.

  Returns:
    dict name -> (N,) scores, ordered as `METRIC_NAMES`; `HIGHER_IS_BETTER` gives each
    direction (MDSI and GMSD: lower is better). NaN marks a pair where MATLAB's value
    is NaN (see the module docstring).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "fr_scores", min_size=MIN_SIZE)
  x, y = _inputs.rgb(x), _inputs.rgb(y)
  w = load_w(sff_w)
  scores = fr_scores_core(x, y, jnp.asarray(w, x.dtype), color_mode=color_mode)
  # jit returns dicts with sorted keys; restore the score-file order.
  return {name: scores[name] for name in METRIC_NAMES}


def stack(scores: dict[str, jnp.ndarray]) -> jnp.ndarray:
  """dict from `fr_scores` -> (N, 11) array in `METRIC_NAMES` order."""
  return jnp.stack([scores[name] for name in METRIC_NAMES], axis=-1)
