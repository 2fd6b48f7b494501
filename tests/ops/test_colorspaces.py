"""MATLAB colour spaces (deepfl_jax.ops.colorspaces): documented MATLAB values,
round trips, and agreement with scikit-image where the definitions coincide."""
import jax
import jax.numpy as jnp
import numpy as np
from skimage.color import rgb2hsv, rgb2lab

from deepfl_jax.ops import colorspaces as cs


def _rgb(n=500, seed=0):
  return np.random.default_rng(seed).uniform(size=(n, 3))


def test_lab_documented_values(x64):
  np.testing.assert_allclose(cs.rgb2lab(jnp.ones(3)), [100, 0, 0], atol=1e-10)
  np.testing.assert_allclose(cs.rgb2lab(jnp.zeros(3)), [0, 0, 0], atol=1e-10)
  # MATLAB documentation example: lab2rgb([70 5 10]) = 0.7359 0.6566 0.6010.
  np.testing.assert_allclose(cs.lab2rgb(jnp.array([70.0, 5.0, 10.0])),
                             [0.7359, 0.6566, 0.6010], atol=6e-5)
  # The XYZ matrix maps white to the D65 white point.
  np.testing.assert_allclose(cs.RGB2XYZ.sum(axis=1), cs.D65, atol=1e-15)


def test_lab_round_trip_and_skimage(x64):
  rgb = _rgb()
  lab = cs.rgb2lab(jnp.asarray(rgb))
  np.testing.assert_allclose(cs.lab2rgb(lab), rgb, atol=1e-10)
  # scikit-image uses the rounded textbook matrix (rows sum to D65 only to 1e-4).
  np.testing.assert_allclose(lab, rgb2lab(rgb[None])[0], atol=0.05)


def test_lab2rgb_does_not_clip(x64):
  out = cs.lab2rgb(jnp.array([50.0, 120.0, 0.0]))
  assert float(out.max()) > 1.0 or float(out.min()) < 0.0


def test_hsv_values_and_ties():
  cases = {(1, 0, 0): (0, 1, 1), (0, 1, 0): (1 / 3, 1, 1), (0, 0, 1): (2 / 3, 1, 1),
           (1, 1, 0): (1 / 6, 1, 1), (0.5, 0.5, 0.5): (0, 0, 0.5), (0, 0, 0): (0, 0, 0),
           (1, 0, 1): (5 / 6, 1, 1)}
  for rgb, hsv in cases.items():
    np.testing.assert_allclose(cs.rgb2hsv(jnp.array(rgb, jnp.float32)), hsv, atol=1e-6)
    np.testing.assert_allclose(cs.hsv2rgb(jnp.array(hsv, jnp.float32)), rgb, atol=1e-6)


def test_hsv_round_trip_and_skimage():
  rgb = _rgb().astype(np.float32)
  hsv = cs.rgb2hsv(jnp.asarray(rgb))
  np.testing.assert_allclose(hsv, rgb2hsv(rgb[None])[0], atol=1e-6)
  np.testing.assert_allclose(cs.hsv2rgb(hsv), rgb, atol=1e-6)


def test_hsv2rgb_global_rescale():
  """MATLAB divides by the image's max(r, g, b), visible for saturation outside
  [0, 1] (type 7 level 5 uses -0.4)."""
  img = jnp.asarray(_rgb(48).reshape(4, 4, 3 * 1, 3)[:, :, 0], jnp.float32)
  hsv = cs.rgb2hsv(img).at[..., 1].multiply(-0.4)
  plain = cs.hsv2rgb(hsv)
  scaled = cs.hsv2rgb(hsv, global_rescale=True)
  unscaled = plain / hsv[..., 2:]
  np.testing.assert_allclose(scaled, plain / jnp.max(unscaled), rtol=1e-5)
  assert float(jnp.max(unscaled)) > 1.0


def test_ycbcr_matlab_values_and_round_trip(x64):
  np.testing.assert_allclose(cs.rgb2ycbcr(jnp.ones(3)), np.array([235, 128, 128]) / 255,
                             atol=1e-12)
  np.testing.assert_allclose(cs.rgb2ycbcr(jnp.zeros(3)), np.array([16, 128, 128]) / 255,
                             atol=1e-12)
  rgb = _rgb()
  np.testing.assert_allclose(cs.ycbcr2rgb(cs.rgb2ycbcr(jnp.asarray(rgb))), rgb, atol=1e-12)
  # ycbcr2rgb clips (MATLAB on doubles): full-scale chroma leaves the RGB cube.
  out = cs.ycbcr2rgb(jnp.array([0.5, 1.0, 1.0]))
  assert float(out.min()) == 0.0 and float(out.max()) == 1.0


def test_jit_and_batch_shapes():
  x = jnp.asarray(_rgb(24).reshape(2, 3, 4, 3), jnp.float32)
  for fwd, inv in ((cs.rgb2lab, cs.lab2rgb), (cs.rgb2hsv, cs.hsv2rgb),
                   (cs.rgb2ycbcr, cs.ycbcr2rgb)):
    y = jax.jit(fwd)(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(jax.jit(inv)(y), x, atol=2e-5)


def test_lab_float32_close_to_float64(x64):
  # The powers are exp(p log x) (faster on XLA:CPU than pow): float32 results stay
  # within float32 rounding of the float64 ones, dark colours (linear branches) too
  # (measured max errors: 7.1e-5 Lab, 3.1e-6 RGB; with pow 6.3e-5 and 3.1e-6).
  rgb = np.concatenate([_rgb(), 0.05 * _rgb(seed=1)])
  ref = np.asarray(cs.rgb2lab(jnp.asarray(rgb)))
  lab32 = cs.rgb2lab(jnp.asarray(rgb, jnp.float32))
  assert lab32.dtype == jnp.float32
  np.testing.assert_allclose(lab32, ref, atol=2e-4)
  np.testing.assert_allclose(cs.lab2rgb(jnp.asarray(ref, jnp.float32)), rgb, atol=5e-6)
