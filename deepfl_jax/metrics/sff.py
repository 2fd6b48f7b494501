"""SFF: sparse feature fidelity (Chang, Yang, Gan, Wang, IEEE TIP 2013; SFF.m v2.0).

Spec fr_metrics.md section 10.1. Non-overlapping 8x8 RGB blocks (0..255, no colour
conversion) are centred and projected on an 8 x 192 ICA feature detector W; a feature
term over blocks selected by error and response strength is combined with a term on the
block means. Higher is better (1 for identical images). Asymmetric: the reference's
responses decide which blocks count.

The feature detector. `w=None` uses `data/sff_w.npy`, which this project LEARNED itself
(`learn_sff_w.py`, spec 10.2 procedure: 8x8 colour patches, DC removal, PCA whitening to
8 dimensions, symmetric FastICA with tanh, fixed seed) from colour photographs shipped
with scikit-image (astronaut, coffee, chelsea, rocket, motorcycle_left), because the
authors' W.mat (trained on their 9 JPEGs with MATLAB's legacy RNG) is not redistributed
here. Ours is a different basis of the same kind; SFF scores with it differ from scores
with the released W.mat by a few 1e-3 on the TID2013 I01 pair (tests/metrics/test_sff.py
states the measured number), more than the ~5e-4 that retraining on the authors' own
images gives. For the published numbers pass `w="path/to/W.mat"`.
"""
from __future__ import annotations

import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics import _inputs

CM, C, LAMBDA, TV, TX, TM = 0.001, 0.08, 0.8, 0.4, 1.0, 1.0
W_PATH = pathlib.Path(__file__).resolve().parent / "data" / "sff_w.npy"


@functools.lru_cache(maxsize=4)
def _load_file(path: str) -> np.ndarray:
  if path.endswith(".mat"):
    import scipy.io
    mat = scipy.io.loadmat(path)
    keys = [k for k in mat if not k.startswith("__")]
    return np.asarray(mat["W"] if "W" in mat else mat[keys[0]], np.float64)
  return np.asarray(np.load(path), np.float64)


def load_w(w=None) -> np.ndarray:
  """The feature detector as a float64 (k, 3 p^2) array (k = 8, p = 8 normally).

  Args:
    w: None (the shipped, project-learned W), a path to the authors' `W.mat`
      (read with scipy.io.loadmat, variable `W`) or to a `.npy` file, or an array.
  """
  if w is None:
    w = _load_file(str(W_PATH))
  elif isinstance(w, (str, os.PathLike)):
    w = _load_file(os.fspath(w))
  w = np.asarray(w, np.float64)
  p = int(round(np.sqrt(w.shape[-1] / 3))) if w.ndim == 2 else 0
  if w.ndim != 2 or 3 * p * p != w.shape[1]:
    raise ValueError(f"sff: W must be (k, 3 p^2), e.g. (8, 192); got shape {w.shape}")
  return w


def _median(v: jnp.ndarray) -> jnp.ndarray:
  """MATLAB median over the last axis (average of the middle pair for even counts)."""
  return jnp.median(v, axis=-1, keepdims=True)


def _once(v: jnp.ndarray) -> jnp.ndarray:
  return jax.lax.optimization_barrier(v)


def _masked_mean(v: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  count = jnp.sum(mask, axis=-1, keepdims=True)
  return jnp.sum(jnp.where(mask, v, 0.0), axis=-1, keepdims=True) / jnp.maximum(count, 1)


def _blocks(x: jnp.ndarray, p: int) -> jnp.ndarray:
  """(N, H, W, 3) -> (N, nb, p, p, 3) non-overlapping blocks [row i, col j, channel],
  nb = floor((H-1)/p) floor((W-1)/p) (SFF.m skips the last block when p divides H)."""
  n, h, w, ch = x.shape
  bh, bw = (h - 1) // p, (w - 1) // p
  b = x[:, :bh * p, :bw * p].reshape(n, bh, p, bw, p, ch)
  return b.transpose(0, 1, 3, 2, 4, 5).reshape(n, bh * bw, p, p, ch)


def sff_parts(x: jnp.ndarray, y: jnp.ndarray,
              w: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(SFF_m, SFF_f), each (N,), of prepared RGB pairs; see `sff_core`."""
  k, d = w.shape
  p = int(round((d // 3) ** 0.5))
  # W's columns are column-major over (row i, col j, channel): v[i + p j + p^2 ch].
  w_blocks = jnp.asarray(w, x.dtype).reshape(k, 3, p, p).transpose(0, 3, 2, 1)
  xr, xd = _blocks(x, p), _blocks(y, p)
  # MATLAB's mean = exact sum (integer-valued input) / 192, correctly rounded; the
  # median selection on |mr - md| below then breaks the many exact ties of uint8 images
  # by that rounding, exactly as MATLAB does in double precision (see `sff`).
  # XLA rewrites a division by a constant into a multiplication by its (rounded)
  # reciprocal, which breaks those ties differently; the barrier keeps a true division.
  sr, sd = jnp.sum(xr, axis=(2, 3, 4)), jnp.sum(xd, axis=(2, 3, 4))
  count = jax.lax.optimization_barrier(jnp.full_like(sr, 3 * p * p))
  mr, md = sr / count, sd / count
  xr = xr - mr[..., None, None, None]
  xd = xd - md[..., None, None, None]

  # Feature term.
  # Each statistic that is compared with its own median/mean is materialised once
  # (barrier): XLA may otherwise recompute it in two fusions with different rounding,
  # and the median block (or its exact ties) would fail `>=` against itself.
  err = _once(jnp.mean(jnp.abs(xr - xd), axis=(2, 3, 4)))            # (N, nb)
  sel = err >= TX * _median(err)
  hi = jax.lax.Precision.HIGHEST
  a = jnp.einsum("nbijc,kijc->nbk", xr, w_blocks, precision=hi)
  b = jnp.einsum("nbijc,kijc->nbk", xd, w_blocks, precision=hi)
  ri = _once(jnp.sum(a * a, axis=-1))
  strong = sel & (ri > TV * _masked_mean(ri, sel))
  keep = jnp.where(jnp.any(strong, axis=-1, keepdims=True), strong, sel)
  sim = jnp.mean((2 * a * b + C) / (a * a + b * b + C), axis=-1)
  sff_f = _masked_mean(sim, keep)[..., 0]

  # Luminance term on the block means.
  dm = _once(jnp.abs(mr - md))
  sel_m = dm >= TM * _median(dm)
  am = jnp.where(sel_m, mr - _masked_mean(mr, sel_m), 0.0)
  bm = jnp.where(sel_m, md - _masked_mean(md, sel_m), 0.0)
  prod = jnp.sum(am * am, axis=-1) * jnp.sum(bm * bm, axis=-1)
  root = jnp.sqrt(jnp.where(prod > 0, prod, 1.0)) * (prod > 0)
  sff_m = (jnp.sum(am * bm, axis=-1) + CM) / (root + CM)
  return sff_m, sff_f


@jax.jit
def sff_core(x: jnp.ndarray, y: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  """SFF of prepared RGB pairs (N, H, W, 3) 0..255, x = Ir, y = Id; w (k, 3 p^2) -> (N,).

  Data-dependent block selections are boolean masks (fixed shapes, jit-able). Guards
  (MATLAB gives NaN): if no block passes the response test (flat reference), the
  feature term averages over the error-selected blocks instead; square roots at 0
  use the double-where trick.
  """
  sff_m, sff_f = sff_parts(x, y, w)
  return LAMBDA * sff_m + (1 - LAMBDA) * sff_f


def sff(reference, distorted, *, w=None) -> jnp.ndarray:
  """SFF(Ir, Id, W) as SFF.m; higher is better (1 for identical images).

  Args:
    reference: Ir, float in [0, 1] or uint8, (N, H, W, 3) or (H, W, 3); grey (..., 1)
      is replicated to RGB. At least 2 blocks: min side >= 2 p + 1 = 17 px.
    distorted: Id, same shape (the roles are not symmetric).
    w: feature detector: None (the project-learned W, see the module docstring), a
      path to the authors' W.mat or a .npy, or a (8, 192) array.

  Returns:
    (N,) scores.
  """
  x, y = _inputs.prepare_pair(reference, distorted, "sff", channels=(1, 3),
                              min_size=17)
  return sff_core(_inputs.rgb(x), _inputs.rgb(y), jnp.asarray(load_w(w), x.dtype))
