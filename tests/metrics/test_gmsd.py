"""GMSD (deepfl_jax.metrics.gmsd) against the MATLAB goldens recorded in piq's
tests (docs/matlab_parity.md section 3)."""
import importlib

import numpy as np
import pytest
import scipy.signal

from tests.metrics import _images

gmsd_module = importlib.import_module("deepfl_jax.metrics.gmsd")
gmsd = gmsd_module.gmsd


def test_matlab_golden_goldhill(golden, x64):
  v = np.asarray(gmsd(golden["goldhill"], golden["goldhill_jpeg"]))
  assert v.shape == (1,) and v.dtype == np.float64
  np.testing.assert_allclose(v, [0.138012587141798], rtol=0, atol=1e-9)
  # The GMS map is symmetric and std2 does not care about the order.
  np.testing.assert_allclose(gmsd(golden["goldhill_jpeg"], golden["goldhill"]), v,
                             rtol=0, atol=1e-12)


def test_matlab_golden_tid2013_luma(golden, x64):
  v = gmsd(golden["I01"], golden["i01_01_5"], color_mode="luma")
  np.testing.assert_allclose(v, [0.094124655829098], rtol=0, atol=1e-9)
  # Spec section 7: MATLAB rgb2gray(uint8) instead gives 0.094122 (6 digits).
  v_gray = gmsd(golden["I01"], golden["i01_01_5"], color_mode="rgb2gray_uint8")
  np.testing.assert_allclose(v_gray, [0.094122], rtol=0, atol=5e-7)


def test_float32_close_to_float64(golden):
  ref, dist = golden["goldhill"], golden["goldhill_jpeg"]
  v32, v64 = _images.float32_and_float64(gmsd, ref, dist)
  np.testing.assert_allclose(v32, v64, rtol=0, atol=1e-5)


def _numpy_gmsd(ref, dist):
  """GMSD.m written out in NumPy/SciPy for one grey image pair (0..255 doubles)."""

  def down(x):  # conv2(x, ones(2)/4, 'same'): mean of x[r:r+2, c:c+2], zeros beyond
    xp = np.pad(x, ((0, 1), (0, 1)))
    return ((xp[:-1, :-1] + xp[1:, :-1] + xp[:-1, 1:] + xp[1:, 1:]) / 4)[::2, ::2]

  dx = np.array([[1, 0, -1]] * 3) / 3.0
  def grad(x):  # odd kernel: SciPy's 'same' window equals MATLAB's
    return np.hypot(scipy.signal.convolve2d(x, dx, "same"),
                    scipy.signal.convolve2d(x, dx.T, "same"))
  g1, g2 = grad(down(ref)), grad(down(dist))
  gms = (2 * g1 * g2 + 170) / (g1 ** 2 + g2 ** 2 + 170)
  return np.std(gms, ddof=1)


@pytest.mark.parametrize("shape", [(33, 40), (30, 41)])
def test_odd_sizes_match_literal_numpy(x64, shape):
  """Odd sizes exercise flavour B (zero-padded last row/column before subsampling)."""
  rng = np.random.default_rng(sum(shape))
  ref = rng.integers(0, 256, shape).astype(np.uint8)
  dist = np.clip(ref + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
  v = gmsd(ref[..., None], dist[..., None])
  np.testing.assert_allclose(v, [_numpy_gmsd(ref.astype(float), dist.astype(float))],
                             rtol=0, atol=1e-12)
  np.testing.assert_allclose(gmsd(ref[..., None], ref[..., None]), [0.0], atol=1e-12)


def test_too_small_images_are_rejected():
  tiny = np.zeros((3, 8, 1), np.float32)
  with pytest.raises(ValueError, match="too small"):
    gmsd(tiny, tiny)


def test_identical_images_give_exactly_zero():
  x = np.random.default_rng(1).random((2, 176, 203, 3)).astype(np.float32)
  assert np.all(np.asarray(gmsd(x, x)) == 0.0)
  assert np.all(np.asarray(gmsd(x[..., :1] * 0 + 0.5, x[..., :1] * 0 + 0.5)) == 0.0)
