"""SFF: sparse feature fidelity (Chang, Yang, Gan, Wang, IEEE TIP 2013; SFF.m v2.0).

Follows SFF.m's scoring. Non-overlapping 8x8 RGB blocks (0..255, no colour
conversion) are centred and projected on an 8 x 192 ICA feature detector W; a feature
term over blocks selected by error and response strength is combined with a term on the
block means. Higher is better (1 for identical images). Asymmetric: the reference's
responses decide which blocks count.

The feature detector. `w=None` uses `data/sff_w.npy`, which this project LEARNED itself
(`tools/learn_sff_w.py`, TrainW.m's procedure (docs/matlab_parity.md section 5): 8x8
colour patches, DC removal, PCA whitening to 8 dimensions, symmetric FastICA with tanh,
fixed seed) from colour photographs shipped with scikit-image (astronaut, coffee,
chelsea, rocket, motorcycle_left), because the authors' W.mat (trained on their 9 JPEGs
with MATLAB's legacy RNG) is not redistributed here. Ours is a different basis of the
same kind (whitening, sparse outputs), but not the same matrix: on the TID2013 pair
SFF(I01, i01_01_5) it gives 0.969610 against 0.968490 with the released W (a NumPy-port
value), i.e. +1.1e-3 (feature term SFF_f +5.6e-3; the luminance term does not involve W
and agrees to 1e-12). Retraining on the authors' own images moves SFF by ~5e-4;
retraining ours with seeds 0..15 spans -3e-4 .. +1.8e-3. One of our 8 outputs is a
colour-opponent block mean with ~0 excess kurtosis (the released W's outputs are all
super-Gaussian on its data). Scores are therefore comparable across this project but not
digit-for-digit with published SFF numbers; for those pass `w="path/to/W.mat"`.

Ties: uint8 images give many exactly tied block-mean differences at the median. MATLAB
breaks them by double rounding of sum/192; `sff_core` reproduces that (true division,
selection on the sorted buffer), so float64 matches the reference port, and float32
differs by ~1e-5 at most in our checks.
"""
from __future__ import annotations

import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import scipy.io

from deepfl_jax.metrics import _inputs

CM, C, LAMBDA, TV, TX, TM = 0.001, 0.08, 0.8, 0.4, 1.0, 1.0
W_PATH = pathlib.Path(__file__).resolve().parent / "data" / "sff_w.npy"


@functools.lru_cache(maxsize=4)
def _load_file(path: str) -> np.ndarray:
  if path.endswith(".mat"):
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


def _sorted_with_median(key: jnp.ndarray, *values: jnp.ndarray):
  """Sorts (N, n) `key` along the last axis, carrying `values` (N, n) along, and
  returns (sorted key, sorted values..., MATLAB median (N, 1)).

  Selections `key >= median` are then made on the sorted buffer itself. Comparing the
  unsorted key with its own order statistic went wrong under jit (jax 0.10.2 on CPU,
  XLA's YNN fusions): the median block, or its exact ties (common for uint8 images),
  failed `>=` against itself, moving SFF by up to 0.1 for some batch elements.
  """
  out = jax.lax.sort((key,) + values, dimension=key.ndim - 1, num_keys=1)
  s, n = out[0], key.shape[-1]
  med = s[..., n // 2:n // 2 + 1]
  if n % 2 == 0:
    med = 0.5 * (s[..., n // 2 - 1:n // 2] + med)
  return (*out, med)


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
  # XLA rewrites a division by a constant (or by a broadcast, as under vmap) into a
  # multiplication by the rounded reciprocal, which breaks those ties differently. A
  # full-shape, data-dependent divisor behind a barrier keeps a true division.
  sr, sd = jnp.sum(xr, axis=(2, 3, 4)), jnp.sum(xd, axis=(2, 3, 4))
  count = jax.lax.optimization_barrier(sr * 0 + 3 * p * p)
  mr, md = sr / count, sd / count
  xr = xr - mr[..., None, None, None]
  xd = xd - md[..., None, None, None]

  # Feature term. Blocks are handled in the order of increasing error (see
  # `_sorted_with_median`); the pooled results do not depend on the order.
  err = jnp.mean(jnp.abs(xr - xd), axis=(2, 3, 4))                    # (N, nb)
  hi = jax.lax.Precision.HIGHEST
  a = jnp.einsum("nbijc,kijc->nbk", xr, w_blocks, precision=hi)
  b = jnp.einsum("nbijc,kijc->nbk", xd, w_blocks, precision=hi)
  order = jax.lax.broadcasted_iota(jnp.int32, err.shape, err.ndim - 1)
  err, order, med = _sorted_with_median(err, order)
  a = jnp.take_along_axis(a, order[..., None], axis=1)
  b = jnp.take_along_axis(b, order[..., None], axis=1)
  sel = err >= TX * med
  ri = jnp.sum(a * a, axis=-1)
  strong = sel & (ri > TV * _masked_mean(ri, sel))
  sim = jnp.mean((2 * a * b + C) / (a * a + b * b + C), axis=-1)
  # No block passes the response test (a flat reference): MATLAB's mean over the
  # empty selection is NaN, and so is SFF.
  sff_f = jnp.where(jnp.any(strong, axis=-1), _masked_mean(sim, strong)[..., 0], jnp.nan)

  # Luminance term on the block means.
  dm, mr, md, med = _sorted_with_median(jnp.abs(mr - md), mr, md)
  sel_m = dm >= TM * med
  am = jnp.where(sel_m, mr - _masked_mean(mr, sel_m), 0.0)
  bm = jnp.where(sel_m, md - _masked_mean(md, sel_m), 0.0)
  prod = jnp.sum(am * am, axis=-1) * jnp.sum(bm * bm, axis=-1)
  root = jnp.sqrt(jnp.where(prod > 0, prod, 1.0)) * (prod > 0)
  sff_m = (jnp.sum(am * bm, axis=-1) + CM) / (root + CM)
  return sff_m, sff_f


@jax.jit
def sff_core(x: jnp.ndarray, y: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  """SFF of prepared RGB pairs (N, H, W, 3) 0..255, x = Ir, y = Id; w (k, 3 p^2) -> (N,).

  Data-dependent block selections are boolean masks (fixed shapes, jit-able). If no
  block passes the response test (a flat reference, e.g. black vs white), the result
  is NaN, as MATLAB's mean over an empty selection; square roots at 0 use the
  double-where trick.
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

  MATLAB input: SFF.m gets RGB doubles 0..255 (double() of the uint8 `imread` images,
  unrounded, no colour conversion: the 8 x 8 x 3 RGB patches are projected on W).
  uint8 input is taken as is; float input in [0, 1] is scaled by 255.

  Returns:
    (N,) scores; NaN where the reference is flat (no block passes the response test).
  """
  x, y = _inputs.prepare_pair(reference, distorted, "sff", channels=(1, 3),
                              min_size=17)
  return sff_core(_inputs.rgb(x), _inputs.rgb(y), jnp.asarray(load_w(w), x.dtype))
