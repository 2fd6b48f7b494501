"""VSI (MATLAB semantics, SDSP saliency) against its golden and NumPy-port cross-checks
(docs/matlab_parity.md section 3).

VSI(image1, image2) is symmetric. The only recorded golden, 0.96405 (I01 pair), was
computed in OCTAVE, whose imresize differs from MATLAB's; a MATLAB-faithful port gives
0.9639512, so the golden is checked at 2e-4 and the MATLAB-semantics values
at 1e-6 against an independent NumPy port (NOT MATLAB-verified cross-checks).
"""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import skimage.color

# The package namespace re-exports the function `vsi`, which hides the module.
vsi_lib = importlib.import_module("deepfl_jax.metrics.vsi")

OCTAVE_GOLDEN = 0.96405              # VSI(i01_01_5, I01), Octave (piq tests)
PORT_I01 = 0.9639512400              # NumPy port, MATLAB semantics, I01 vs i01_01_5
PORT_GOLDHILL = 0.9642491387         # NumPy port, goldhill x3 vs goldhill_jpeg x3


def test_i01_golden_port_and_symmetry(golden, x64):
  v = float(vsi_lib.vsi(golden["i01_01_5"], golden["I01"])[0])
  assert abs(v - OCTAVE_GOLDEN) <= 2e-4, v
  assert abs(v - PORT_I01) <= 1e-6, v             # NumPy-port cross-check
  swapped = float(vsi_lib.vsi(golden["I01"], golden["i01_01_5"])[0])
  assert abs(swapped - v) <= 1e-12


def test_goldhill_replicated_grey_port(golden, x64):
  # Grey (H, W, 1) input is replicated to RGB, as the port's "goldhill x3".
  v = float(vsi_lib.vsi(golden["goldhill"], golden["goldhill_jpeg"])[0])
  assert abs(v - PORT_GOLDHILL) <= 1e-6, v        # NumPy-port cross-check
  rgb = float(vsi_lib.vsi(np.repeat(golden["goldhill"], 3, -1),
                          np.repeat(golden["goldhill_jpeg"], 3, -1))[0])
  assert rgb == v


def test_float32_matches_float64(golden):
  ref, dist = golden["I01"], golden["i01_01_5"]
  v32 = np.asarray(vsi_lib.vsi(ref, dist))
  assert v32.dtype == np.float32
  with jax.enable_x64(True):
    v64 = np.asarray(vsi_lib.vsi(ref, dist))
  np.testing.assert_allclose(v32, v64, rtol=0, atol=1e-6)   # measured about 5e-8


def test_sdsp_lab_is_rounded_d50_cielab(x64):
  """SDSP's Lab differs from CIELAB(D50) only by the rounded white and the 903.3
  constant: within a few hundredths of scikit-image's D50 conversion."""
  rgb = np.random.default_rng(0).random((500, 3))
  rgb[:3] = [[1, 1, 1], [0, 0, 0], [0.02, 0.01, 0.03]]   # white, black, dark branch
  ours = np.asarray(vsi_lib.rgb2lab_sdsp_d50(jnp.asarray(rgb * 255)))
  ref = skimage.color.rgb2lab(rgb, illuminant="D50")
  np.testing.assert_allclose(ours, ref, rtol=0, atol=0.03)
  # The D65 matrix under a D50 white: white is not neutral (about 100, -2.4, -19.4),
  # unlike MATLAB's rgb2lab default (100, 0, 0).
  np.testing.assert_allclose(ours[0], [100.0, -2.385, -19.38], atol=0.01)


def test_sdsp_filter_and_saliency(golden, x64):
  lg = vsi_lib.sdsp_log_gabor(256, 256)
  assert lg[0, 0] == 0 and lg.max() <= 1
  # Real and even (so rfft2/irfft2 reproduce real(ifft2(fft2(.) .* LG))).
  np.testing.assert_array_equal(lg, np.roll(lg[::-1, ::-1], 1, axis=(0, 1)))
  r = np.hypot(*np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256)))
  assert np.all(lg[r > 0.5] == 0) and np.all(lg[(r > 0) & (r <= 0.5)] > 0)
  img = jnp.asarray(golden["I01"][None, ::2, ::2], jnp.float64)
  vs = np.asarray(jax.jit(vsi_lib.sdsp)(img))
  assert vs.shape == (1, 192, 256)
  assert vs.min() == 0 and vs.max() == 1
