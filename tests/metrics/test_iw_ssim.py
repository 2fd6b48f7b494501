"""IW-SSIM (deepfl_jax.metrics.iw_ssim) against the MATLAB goldens
recorded in piq's tests and NumPy-port cross-checks (docs/matlab_parity.md section 3)."""
import importlib

import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.ops import resize
from tests.metrics import _images

iw_module = importlib.import_module("deepfl_jax.metrics.iw_ssim")
iw_ssim = iw_module.iw_ssim


@pytest.mark.slow
def test_matlab_golden_goldhill_and_port_crosscheck_swapped(golden, x64):
  # MATLAB golden: iwssim(oimg = goldhill (reference), img = goldhill_jpeg).
  v = np.asarray(iw_ssim(golden["goldhill"], golden["goldhill_jpeg"]))
  assert v.shape == (1,) and v.dtype == np.float64
  np.testing.assert_allclose(v, [0.886297251092821], rtol=0, atol=1e-8)
  # NumPy-port cross-check (NOT a MATLAB golden): swapped roles. Also shows
  # the metric is asymmetric, as iwssim.m is.
  swapped = iw_ssim(golden["goldhill_jpeg"], golden["goldhill"])
  np.testing.assert_allclose(swapped, [0.886254404583], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_matlab_golden_tid2013_and_port_crosscheck_correct_roles(golden, x64):
  # MATLAB golden as piq's test computes it: the DISTORTED image in the reference slot,
  # iwssim(oimg = Y(i01_01_5), img = Y(I01)), Y = 0.299 R + 0.587 G + 0.114 B.
  v = iw_ssim(golden["i01_01_5"], golden["I01"], color_mode="luma")
  np.testing.assert_allclose(v, [0.946804801436296], rtol=0, atol=1e-8)
  # NumPy-port cross-check (NOT a MATLAB golden): the correct roles.
  correct = iw_ssim(golden["I01"], golden["i01_01_5"], color_mode="luma")
  np.testing.assert_allclose(correct, [0.946239578523], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_float32_close_to_float64(golden):
  ref, dist = golden["goldhill"], golden["goldhill_jpeg"]
  v32, v64 = _images.float32_and_float64(iw_ssim, ref, dist)
  np.testing.assert_allclose(v32, v64, rtol=0, atol=1e-5)


def test_too_small_images_are_rejected():
  # iwssim.m needs min(H, W) >= 11 * 2^(5-1) = 176.
  small = np.zeros((200, 175, 1), np.float32)
  with pytest.raises(ValueError, match="176"):
    iw_ssim(small, small)


def test_enlarge_parent_matches_literal_imenlarge2(x64):
  """imenlarge2 written out: bilinear imresize to (4M-3) x (4N-3), placed inside a
  (4M-1) x (4N-1) array, first/last rows then columns linearly extrapolated, every
  second row and column; then cropped to the child band size."""
  rng = np.random.default_rng(1)
  m, n = 6, 9
  band = rng.normal(size=(m, n))
  t1 = np.asarray(resize.imresize(jnp.asarray(band), (4 * m - 3, 4 * n - 3),
                                  method="bilinear"))
  t2 = np.zeros((4 * m - 1, 4 * n - 1))
  t2[1:-1, 1:-1] = t1
  t2[0] = 2 * t2[1] - t2[2]
  t2[-1] = 2 * t2[-2] - t2[-3]
  t2[:, 0] = 2 * t2[:, 1] - t2[:, 2]
  t2[:, -1] = 2 * t2[:, -2] - t2[:, -3]
  want = t2[::2, ::2][:11, :17]
  got = iw_module._enlarge_parent(jnp.asarray(band)[None], (11, 17))[0]
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [11, 12])
def test_pyramid_matrices_match_literal_corrdn_upconv(n):
  """Reduce: reflect1 padding (NumPy 'reflect'), binom5 correlation, samples 0, 2, ...
  Expand: samples at even positions of 2m zeros, reflect1 padding, binom5, first n."""
  b = np.sqrt(2) / 16 * np.array([1, 4, 6, 4, 1])
  v = np.random.default_rng(n).normal(size=n)
  reduced = np.correlate(np.pad(v, 2, mode="reflect"), b, "valid")[::2]
  np.testing.assert_allclose(iw_module._reduce_matrix(n) @ v, reduced, atol=1e-13)
  m = len(reduced)
  z = np.zeros(2 * m)
  z[::2] = reduced
  expanded = np.correlate(np.pad(z, 2, mode="reflect"), b, "valid")[:n]
  np.testing.assert_allclose(iw_module._expand_matrix(m, n) @ reduced, expanded,
                             atol=1e-13)


def test_laplacian_pyramid_shapes_and_flat_image(x64):
  x = jnp.full((1, 37, 50), 100.0)
  bands = iw_module._laplacian_pyramid(x)
  assert [b.shape[-2:] for b in bands] == [(37, 50), (19, 25), (10, 13), (5, 7), (3, 4)]
  # A constant image has empty Laplacian bands (reflect1 edges keep it flat), and the
  # residual carries the DC gain 2 per level of the sqrt(2)-scaled binom5 filter.
  for band in bands[:-1]:
    np.testing.assert_allclose(band, 0.0, atol=1e-10)
  np.testing.assert_allclose(bands[-1], 100.0 * 2 ** 4, rtol=1e-12)
