"""SSIM and MS-SSIM (deepfl_jax.metrics.ssim) against the MATLAB goldens
recorded in piq's tests and NumPy-port cross-checks (docs/matlab_parity.md section 3)."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from deepfl_jax.ops import color
from tests.metrics import _images

ssim_module = importlib.import_module("deepfl_jax.metrics.ssim")
ssim, ms_ssim = ssim_module.ssim, ssim_module.ms_ssim


# --- MATLAB goldens. They have 4 digits, so 5e-5 is the rounding
# bound of the recorded value itself (tighter than 1e-4). --------------------

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


# --- NumPy-port cross-checks: NOT MATLAB goldens, regression checks against an
# independent NumPy port, which reproduces the goldens above. -------------

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


def _msssim_m(img1: np.ndarray, img2: np.ndarray) -> float:
  """msssim.m + ssim_index_new.m transcribed literally in NumPy/SciPy (float64): per
  level filter2(win, ., 'valid') moments, ssim and cs maps, mean2; then
  imfilter(., ones(2)/4, 'symmetric', 'same') and (1:2:end, 1:2:end); finally
  prod(mcs(1:4).^w(1:4)) * mssim(5)^w(5)."""
  win = ssim_module.gaussian_window()
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  f = lambda a: scipy.signal.correlate2d(a, win, mode="valid")
  mssim, mcs = [], []
  for _ in range(5):
    mu1, mu2 = f(img1), f(img2)
    s11, s22 = f(img1 * img1) - mu1 ** 2, f(img2 * img2) - mu2 ** 2
    s12 = f(img1 * img2) - mu1 * mu2
    cs = (2 * s12 + c2) / (s11 + s22 + c2)
    mssim.append(np.mean((2 * mu1 * mu2 + c1) / (mu1 ** 2 + mu2 ** 2 + c1) * cs))
    mcs.append(np.mean(cs))
    # imfilter anchors a 2x2 kernel at its top-left: rows/cols r, r + 1, mirrored.
    down = lambda a: (lambda p: (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]) / 4)(
        np.pad(a, ((0, 1), (0, 1)), mode="symmetric"))[::2, ::2]
    img1, img2 = down(img1), down(img2)
  w = np.array(ssim_module.MS_SSIM_WEIGHTS)
  return float(np.prod(np.array(mcs[:4]) ** w[:4]) * mssim[4] ** w[4])


@pytest.mark.parametrize("name", ["I03.bmp", "I19.bmp"])
def test_ms_ssim_is_msssim_m_step_by_step(tid_pairs, x64, name):
  """Issue 11 item 7: on the two low-quality TID2013 pairs (MS-SSIM 0.67 and 0.84) ours
  equals a literal transcription of Wang's msssim.m on MATLAB's rgb2gray(uint8) images
  to 1e-12. (Checked while investigating a reported 0.4-0.5% gap to a MATLAB value on
  such pairs: no mcs is negative there, every pyramid size of 384x512 is even so the
  mirror boundary never acts; the 9/7 low-pass of MeTriX MuX's variant, the unrounded
  luma, SSIM instead of cs at every level and separately pooled c and s move these
  pairs by other amounts: none explains the gap, see experiments/RESULTS.md.)"""
  ref, dist = {n: (r, d) for n, r, d in tid_pairs}[name]
  grey = lambda u: np.floor(u.astype(np.float64) @ color.RGB2GRAY + 0.5)
  want = _msssim_m(grey(ref), grey(dist))
  np.testing.assert_allclose(ms_ssim(ref, dist), [want], rtol=0, atol=1e-12)


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
