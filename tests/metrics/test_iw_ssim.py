"""IW-SSIM (deepfl_jax.metrics.iw_ssim) against spec fr_metrics.md sections 4, 15 (MATLAB
goldens recorded in piq's tests) and 16 (NumPy-port cross-checks)."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

iw_module = importlib.import_module("deepfl_jax.metrics.iw_ssim")
iw_ssim = iw_module.iw_ssim


def test_matlab_golden_goldhill_and_port_crosscheck_swapped(golden, x64):
  # MATLAB golden: iwssim(oimg = goldhill (reference), img = goldhill_jpeg).
  v = np.asarray(iw_ssim(golden["goldhill"], golden["goldhill_jpeg"]))
  assert v.shape == (1,) and v.dtype == np.float64
  np.testing.assert_allclose(v, [0.886297251092821], rtol=0, atol=1e-8)
  # NumPy-port cross-check (spec 16, NOT a MATLAB golden): swapped roles. Also shows
  # the metric is asymmetric, as iwssim.m is.
  swapped = iw_ssim(golden["goldhill_jpeg"], golden["goldhill"])
  np.testing.assert_allclose(swapped, [0.886254404583], rtol=0, atol=1e-6)


def test_matlab_golden_tid2013_and_port_crosscheck_correct_roles(golden, x64):
  # MATLAB golden as piq's test computes it: the DISTORTED image in the reference slot,
  # iwssim(oimg = Y(i01_01_5), img = Y(I01)), Y = 0.299 R + 0.587 G + 0.114 B.
  v = iw_ssim(golden["i01_01_5"], golden["I01"], color_mode="luma")
  np.testing.assert_allclose(v, [0.946804801436296], rtol=0, atol=1e-8)
  # NumPy-port cross-check (spec 16, NOT a MATLAB golden): the correct roles.
  correct = iw_ssim(golden["I01"], golden["i01_01_5"])
  np.testing.assert_allclose(correct, [0.946239578523], rtol=0, atol=1e-6)


def test_float32_close_to_float64(golden):
  ref, dist = golden["goldhill"], golden["goldhill_jpeg"]
  v32 = np.asarray(iw_ssim(ref, dist))
  assert v32.dtype == np.float32
  with jax.enable_x64(True):
    v64 = np.asarray(iw_ssim(ref, dist))
  np.testing.assert_allclose(v32, v64, rtol=0, atol=1e-4)


def test_too_small_images_are_rejected():
  # iwssim.m needs min(H, W) >= 11 * 2^(5-1) = 176.
  small = np.zeros((200, 175, 1), np.float32)
  with pytest.raises(ValueError, match="176"):
    iw_ssim(small, small)


def test_enlarge_matrix_matches_imenlarge2_definition():
  """imenlarge2 along one axis: bilinear imresize to 4m-3, linear end extrapolation,
  every second sample. A linear ramp must stay exactly linear (slope halves)."""
  m = 7
  e = iw_module._enlarge_matrix(m, 2 * m)
  ramp = np.arange(m, dtype=np.float64)
  # Enlarged sample k sits at (k - 0.5) / 2 in input coordinates (0-based).
  np.testing.assert_allclose(e @ ramp, (np.arange(2 * m) - 0.5) / 2, atol=1e-12)
  np.testing.assert_allclose(e.sum(axis=1), 1.0, atol=1e-12)


def test_laplacian_pyramid_reconstructs_and_shapes(x64):
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, 37, 50)))
  bands = iw_module._laplacian_pyramid(x)
  assert [b.shape[-2:] for b in bands] == [(37, 50), (19, 25), (10, 13), (5, 7), (3, 4)]
  # Collapsing the pyramid (expand and add, coarse to fine) gives the image back.
  img = bands[-1]
  for band in bands[-2::-1]:
    up = iw_module._expand_axis(img, band.shape[-2], img.ndim - 2)
    img = band + iw_module._expand_axis(up, band.shape[-1], img.ndim - 1)
  np.testing.assert_allclose(img, x, atol=1e-9)
  # A constant image has (numerically) empty Laplacian bands: reflect1 keeps it flat.
  flat = iw_module._laplacian_pyramid(jnp.full((1, 37, 50), 100.0))
  for band in flat[:-1]:
    np.testing.assert_allclose(band, 0.0, atol=1e-10)
