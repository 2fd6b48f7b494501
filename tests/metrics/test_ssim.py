"""SSIM and MS-SSIM (deepfl_jax.metrics.ssim) against spec fr_metrics.md sections 2, 3,
15 (MATLAB goldens recorded in piq's tests) and 16 (NumPy-port cross-checks)."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.metrics import _images

ssim_module = importlib.import_module("deepfl_jax.metrics.ssim")
ssim, ms_ssim = ssim_module.ssim, ssim_module.ms_ssim


# --- MATLAB goldens (spec section 15). They have 4 digits, so 5e-5 is the rounding
# bound of the recorded value itself (tighter than the spec's 1e-4). --------------------

def test_ssim_matlab_golden_goldhill(golden, x64):
  v = np.asarray(ssim(golden["goldhill_jpeg"], golden["goldhill"]))
  assert v.shape == (1,) and v.dtype == np.float64
  np.testing.assert_allclose(v, [0.8202], atol=5e-5)
  # ssim.m is symmetric in its arguments.
  np.testing.assert_allclose(ssim(golden["goldhill"], golden["goldhill_jpeg"]), v,
                             rtol=0, atol=1e-12)


def test_ssim_matlab_golden_per_channel_tid2013(golden, x64):
  v = ssim(golden["i01_01_5"], golden["I01"], color_mode="per_channel")
  np.testing.assert_allclose(v, [0.7820], atol=5e-5)


# --- NumPy-port cross-checks (spec section 16): NOT MATLAB goldens, regression checks
# against the spec author's port, which reproduces the section-15 goldens. -------------

@pytest.mark.parametrize("color_mode, want", [
    ("luma", 0.880026535754),            # Y = 0.299 R + 0.587 G + 0.114 B, unrounded
    ("rgb2gray_uint8", 0.879877889466),  # MATLAB rgb2gray on uint8 (rounded)
])
def test_ssim_numpy_port_crosscheck_tid2013(golden, x64, color_mode, want):
  v = ssim(golden["I01"], golden["i01_01_5"], color_mode=color_mode)
  np.testing.assert_allclose(v, [want], rtol=0, atol=1e-6)


def test_ms_ssim_numpy_port_crosscheck_goldhill(golden, x64):
  v = ms_ssim(golden["goldhill"], golden["goldhill_jpeg"])
  np.testing.assert_allclose(v, [0.901162564537], rtol=0, atol=1e-6)
  # Float input in [0, 1] is the same image as the uint8 one.
  as_float = ms_ssim(golden["goldhill"] / 255.0, golden["goldhill_jpeg"] / 255.0)
  np.testing.assert_allclose(as_float, v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("color_mode, want", [
    ("luma", 0.935429811791),
    ("per_channel", 0.879965581313),
    ("rgb2gray_uint8", 0.935356221438),
])
def test_ms_ssim_numpy_port_crosscheck_tid2013(golden, x64, color_mode, want):
  v = ms_ssim(golden["I01"], golden["i01_01_5"], color_mode=color_mode)
  np.testing.assert_allclose(v, [want], rtol=0, atol=1e-6)


# --- float32 against float64 ------------------------------------------------------------

@pytest.mark.parametrize("name", ["ssim", "ms_ssim"])
def test_float32_close_to_float64(golden, name):
  fn = getattr(ssim_module, name)
  ref, dist = golden["goldhill"], golden["goldhill_jpeg"]
  v32, v64 = _images.float32_and_float64(fn, ref, dist)
  np.testing.assert_allclose(v32, v64, rtol=0, atol=1e-5)


# --- errors and the complex-power rule ----------------------------------------------------

def test_too_small_images_are_rejected():
  with pytest.raises(ValueError, match="too small"):
    ssim(np.zeros((10, 40, 1), np.float32), np.zeros((10, 40, 1), np.float32))
  # msssim.m needs min(H, W) / 2^4 >= 11, i.e. 176 pixels.
  small = np.zeros((175, 300, 3), np.float32)
  with pytest.raises(ValueError, match="176"):
    ms_ssim(small, small)


def test_weighted_product_is_real_part_of_principal_power(x64):
  values = np.array([[0.9, -0.5, 0.8, 0.7, 0.95],
                     [0.9, -0.5, -0.2, 0.7, 0.95],
                     [0.9, 0.6, 0.8, 0.7, 0.95]])
  w = np.array(ssim_module.MS_SSIM_WEIGHTS)
  want = np.real(np.prod(values.astype(complex) ** w, axis=-1))
  got = ssim_module.weighted_product(jnp.asarray(values), w)
  np.testing.assert_allclose(got, want, rtol=1e-12)
  # Not the abs() (piq's IW-SSIM) nor the clamp-to-0 (piq's MS-SSIM) convention.
  assert 0 < got[0] < np.prod(np.abs(values[0]) ** w) - 0.1
  assert got[1] < 0
  # A zero factor gives 0 with finite gradients (|x|^p has an infinite slope at 0).
  zero = jnp.asarray(values[2]).at[1].set(0.0)
  assert float(ssim_module.weighted_product(zero, w)) == 0.0
  grad = jax.grad(lambda v: ssim_module.weighted_product(v, w))(zero)
  assert np.all(np.isfinite(np.asarray(grad)))
