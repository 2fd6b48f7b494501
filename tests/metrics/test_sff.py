"""SFF (Chang et al., TIP 2013; SFF.m) and the project-learned feature detector W.

No MATLAB golden exists for SFF. Checks: a literal NumPy transcription of SFF.m's
scoring, the NumPy port's cross-checks (docs/matlab_parity.md section 3; the luminance
term does not depend on W, so it is checked exactly), the properties of W
(docs/matlab_parity.md section 5), and the effect of our own W compared with the
authors' released W.mat.
"""
import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from deepfl_jax.metrics.sff import sff

# The package exports the function `sff`, which shadows the module attribute.
sff_lib = importlib.import_module("deepfl_jax.metrics.sff")
learn_lib = importlib.import_module("deepfl_jax.tools.learn_sff_w")

# Spec section 16 (NumPy port with the authors' W.mat): SFF(I01, i01_01_5).
RELEASED_W_SFF = 0.968489952106
RELEASED_W_SFF_M = 0.996992049117
# Our W is trained on other images (tools/learn_sff_w.py). Retraining it with seeds 0..15
# (same images and settings) moved SFF(I01, i01_01_5) by -3.1e-4 .. +1.81e-3 from the
# released-W value (mean +6.0e-4, sd 5.7e-4); the shipped seed 0 gives +1.12e-3 (SFF_f
# +5.6e-3). The band covers that whole range with ~40 % margin; retraining on the authors'
# own images moved it by +1.4e-4 .. +5.0e-4.
RELEASED_W_BAND = 2.5e-3


def literal_sff(ir, id_, w):
  """SFF.m's scoring with explicit block loops (small images only)."""
  ir, id_ = ir.astype(np.float64), id_.astype(np.float64)
  p = int(round(np.sqrt(w.shape[1] / 3)))
  h, wd = ir.shape[:2]
  cols_r, cols_d = [], []
  for c in range(0, wd - p, p):
    for r in range(0, h - p, p):
      # column-major over (row i, col j, channel): v[i + p j + p^2 ch]
      cols_r.append(ir[r:r + p, c:c + p].transpose(2, 1, 0).ravel())
      cols_d.append(id_[r:r + p, c:c + p].transpose(2, 1, 0).ravel())
  xr, xd = np.array(cols_r).T, np.array(cols_d).T
  mr, md = xr.mean(axis=0), xd.mean(axis=0)
  xr, xd = xr - mr, xd - md
  e = np.mean(np.abs(xr - xd), axis=0)
  sel = e >= np.median(e)
  a, b = w @ xr[:, sel], w @ xd[:, sel]
  ri = np.sum(a ** 2, axis=0)
  keep = ri > 0.4 * ri.mean()
  a, b = a[:, keep], b[:, keep]
  sff_f = np.mean((2 * a * b + 0.08) / (a ** 2 + b ** 2 + 0.08))
  dm = np.abs(mr - md)
  selm = dm >= np.median(dm)
  am, bm = mr[selm] - mr[selm].mean(), md[selm] - md[selm].mean()
  sff_m = (am @ bm + 0.001) / (np.sqrt((am @ am) * (bm @ bm)) + 0.001)
  return 0.8 * sff_m + 0.2 * sff_f


def _prepared(img):
  return jnp.asarray(img, jnp.float64)[None]


def test_matches_literal_transcription(x64):
  """Random W and uint8 images with many tied block-mean differences; 41x58 has a
  partial last block row/column that SFF.m skips."""
  rng = np.random.default_rng(3)
  ref = rng.integers(0, 256, (41, 58, 3)).astype(np.uint8)
  ref = np.repeat(np.repeat(ref[::4, ::4], 4, 0), 4, 1)[:41, :58]
  dist = np.clip(ref + rng.normal(0, 12, ref.shape), 0, 255).astype(np.uint8)
  w = rng.normal(0, 0.05, (8, 192))
  want = literal_sff(ref, dist, w)
  got = float(sff(ref, dist, w=w)[0])
  assert abs(got - want) < 1e-12
  assert abs(float(sff(dist, ref, w=w)[0]) - literal_sff(dist, ref, w)) < 1e-12


def test_block_grid():
  """512x384 -> 47 x 63 blocks (the last block row and column are skipped)."""
  blocks = sff_lib._blocks(jnp.zeros((1, 384, 512, 3)), 8)
  assert blocks.shape == (1, 47 * 63, 8, 8, 3)


def test_luminance_term_matches_port(golden, x64):
  """SFF_m does not involve W: it must equal the port's 0.996992049117. This also
  pins MATLAB's tie-breaking at the median (true division of exact block sums)."""
  sff_m, _ = sff_lib.sff_parts(_prepared(golden["I01"]), _prepared(golden["i01_01_5"]),
                               jnp.asarray(sff_lib.load_w()))
  assert abs(float(sff_m[0]) - RELEASED_W_SFF_M) < 1e-9


def test_i01_within_band_of_released_w(golden, x64):
  got = float(sff(golden["I01"], golden["i01_01_5"])[0])
  assert abs(got - RELEASED_W_SFF) < RELEASED_W_BAND
  assert got < 1.0


def test_float32_close_to_float64(golden, x64):
  ref, dist = golden["I01"], golden["i01_01_5"]
  v64 = float(sff(ref, dist)[0])
  with jax.enable_x64(False):
    v32 = sff(ref, dist)
    assert v32.dtype == jnp.float32
  assert abs(float(v32[0]) - v64) < 5e-5


def test_shipped_w_and_record():
  w = sff_lib.load_w()
  assert w.shape == (8, 192) and np.all(np.isfinite(w))
  record = json.loads(sff_lib.W_PATH.with_suffix(".json").read_text())
  assert record["converged"] and record["patches"] >= 9 * 2000
  assert record["images"] == [f"skimage.data.{n}" for n in learn_lib.IMAGES]


@pytest.fixture(scope="module")
def patches():
  """Held-out patches (a seed other than the training one), DC removed: (192, n)."""
  x = learn_lib.sample_patches(learn_lib.load_images(), 18000, 8,
                               np.random.default_rng(12345))
  return x - x.mean(axis=0, keepdims=True)


def test_w_whitens_patches(patches):
  """Spec 10.2: W Sigma W^T ~= I (released W on its data: diagonal 0.95..1.05,
  off-diagonal <= 0.044). Ours, on held-out patches of its training images."""
  w = sff_lib.load_w()
  m = w @ (patches @ patches.T / patches.shape[1]) @ w.T
  assert np.all(np.abs(np.diag(m) - 1) < 0.08), np.diag(m)
  assert np.max(np.abs(m - np.diag(np.diag(m)))) < 0.07


def test_w_outputs_are_super_gaussian(patches):
  """Spec 10.2: sparse (super-Gaussian) outputs. With our images 7 of the 8 are
  strongly so; the 8th is a colour-opponent block mean (blue minus green), whose
  excess kurtosis is ~0 for every seed we tried: the colour statistics of 5 photographs
  are a mixture, not a sparse source. That component is identified, not ignored."""
  w = sff_lib.load_w()
  y = w @ patches
  y = y - y.mean(axis=1, keepdims=True)
  kurt = np.mean(y ** 4, axis=1) / np.var(y, axis=1) ** 2 - 3
  order = np.argsort(kurt)
  assert np.all(kurt[order[1:]] > 3), kurt
  assert kurt[order[0]] > -0.5, kurt
  flat = w[order[0]].reshape(3, 8, 8)              # channel, col, row
  dc = flat.mean(axis=(1, 2), keepdims=True)
  assert np.sum(dc ** 2) * 64 > 0.9 * np.sum(flat ** 2)


def test_user_w_is_used(golden, tmp_path, x64):
  ref, dist = golden["I01"][:96, :128], golden["i01_01_5"][:96, :128]
  w = sff_lib.load_w()
  base = float(sff(ref, dist, w=w)[0])
  assert base == float(sff(ref, dist)[0])
  # SFF is invariant to sign flips and permutations of W's rows ...
  flipped = (w * np.array([1, -1, 1, 1, -1, 1, -1, 1])[:, None])[::-1]
  assert abs(float(sff(ref, dist, w=flipped)[0]) - base) < 1e-12
  # ... but not to another detector.
  other = np.random.default_rng(0).normal(0, np.abs(w).mean(), w.shape)
  assert abs(float(sff(ref, dist, w=other)[0]) - base) > 1e-4
  # Files: the authors' W.mat format (variable W) and .npy.
  scipy.io.savemat(tmp_path / "W.mat", {"W": other})
  np.save(tmp_path / "w.npy", other)
  for path in (tmp_path / "W.mat", str(tmp_path / "w.npy")):
    assert float(sff(ref, dist, w=path)[0]) == float(sff(ref, dist, w=other)[0])
  with pytest.raises(ValueError, match="W must be"):
    sff(ref, dist, w=np.zeros((8, 100)))


def test_jit_vmap_batch_agree_on_tied_uint8():
  """uint8 images have many exactly tied block statistics; the selection at the median
  must not depend on how XLA compiles the graph (eager, jit, vmap, batch)."""
  rng = np.random.default_rng(1)
  ref = rng.integers(0, 256, (3, 64, 80, 3)).astype(np.uint8)
  dist = np.clip(ref + rng.normal(0, 12, ref.shape), 0, 255).astype(np.uint8)
  single = np.array([float(sff(ref[i], dist[i])[0]) for i in range(3)])
  np.testing.assert_allclose(sff(ref, dist), single, rtol=0, atol=1e-6)
  np.testing.assert_allclose(jax.jit(sff)(ref, dist), single, rtol=0, atol=1e-6)
  mapped = jax.vmap(lambda a, b: sff(a, b)[0])(ref, dist)
  np.testing.assert_allclose(mapped, single, rtol=0, atol=1e-6)
