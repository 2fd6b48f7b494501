"""Full-reference IQA metrics in pure JAX, matching the MATLAB originals.

Every metric is `name(reference, distorted, **options) -> (N,)` on float images in
[0, 1] (or uint8) of shape (N, H, W, 3) or (H, W, 3); grey (N, H, W, 1) where the metric
is defined on luminance. MDSI and GMSD: lower is better; all others: higher is better.
`fr_scores` computes the 11 DeepFL-IQA proxies in one jit-compiled call.

MATLAB parity: SSIM, MS-SSIM, IW-SSIM, MDSI, VSI, FSIM/FSIMc, GMSD and SR-SIM follow
the authors' MATLAB codes (tested against MATLAB/Octave golden values where those
exist); SFF follows SFF.m with a project-trained W. SC-QI and ADD-GSIM have no public
code: ours are reconstructions, exported as `scqi_proxy` and `add_gsim_proxy`.

One module per metric (plus `psnr`), `fused` (`fr_scores`), `correlation` (SROCC, PLCC
with logistic fits, KROCC), `_inputs` (validation and conversion shared by all) and
`data/` (the project's SFF detector W with its record). The shared MATLAB conventions
are in docs/matlab_parity.md.
"""
from deepfl_jax.metrics.add_gsim import add_gsim_proxy
from deepfl_jax.metrics.correlation import krocc, logistic_fit, plcc, srocc
from deepfl_jax.metrics.fsim import fsim, fsimc
from deepfl_jax.metrics.fused import (HIGHER_IS_BETTER, MATLAB_PARITY, METRIC_NAMES,
                                     fr_scores)
from deepfl_jax.metrics.gmsd import gmsd
from deepfl_jax.metrics.iw_ssim import iw_ssim
from deepfl_jax.metrics.mdsi import mdsi
from deepfl_jax.metrics.psnr import psnr
from deepfl_jax.metrics.scqi import scqi_proxy
from deepfl_jax.metrics.sff import sff
from deepfl_jax.metrics.sr_sim import sr_sim
from deepfl_jax.metrics.ssim import ms_ssim, ssim
from deepfl_jax.metrics.vsi import vsi

__all__ = [
    "ssim", "ms_ssim", "iw_ssim", "mdsi", "vsi", "fsim", "fsimc", "gmsd", "sff",
    "scqi_proxy", "add_gsim_proxy", "sr_sim", "psnr", "fr_scores", "METRIC_NAMES",
    "HIGHER_IS_BETTER", "MATLAB_PARITY",
    "srocc", "plcc", "krocc", "logistic_fit",
]
