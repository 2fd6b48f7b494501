"""MATLAB kernels with traced parameters (deepfl_jax.ops.kernels)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.ops import kernels
from deepfl_jax.ops.matlab import fspecial_gaussian


def test_disk_documented_values():
  k = np.asarray(kernels.fspecial_disk(1.0, 1))
  # MATLAB documents fspecial('disk', 1) = 0.0251 0.1453 0.0251 / 0.1453 0.3183 ...
  np.testing.assert_allclose(k, [[0.0251, 0.1453, 0.0251], [0.1453, 0.3183, 0.1453],
                                 [0.0251, 0.1453, 0.0251]], atol=6e-5)


@pytest.mark.slow
@pytest.mark.parametrize("r", [2.0, 3.7, 6.0])
def test_disk_is_pixel_coverage(r):
  """Each weight is the area of the pixel square inside the disk (supersampled)."""
  half = int(np.ceil(r - 0.5))
  k = np.asarray(kernels.fspecial_disk(r, half + 2), np.float64)
  assert abs(k.sum() - 1) < 1e-6
  assert np.all(k[:2] == 0) and np.all(k[:, -2:] == 0)     # beyond ceil(r - 0.5)
  s = 200
  sub = (np.arange(s) + 0.5) / s - 0.5
  c = np.arange(-half - 2, half + 3)
  yy = c[:, None, None, None] + sub[None, None, :, None]
  xx = c[None, :, None, None] + sub[None, None, None, :]
  cover = np.mean((yy ** 2 + xx ** 2) <= r * r, axis=(2, 3))
  np.testing.assert_allclose(k, cover / cover.sum(), atol=2e-4)


def test_motion_documented_values():
  k = np.asarray(kernels.fspecial_motion(9.0, 0.0, 5))
  want = np.zeros((11, 11))
  want[5, 1:10] = 1 / 9
  np.testing.assert_allclose(k, want, atol=1e-6)
  k = np.asarray(kernels.fspecial_motion(3.0, 90.0, 2))
  want = np.zeros((5, 5))
  want[1:4, 2] = 1 / 3
  np.testing.assert_allclose(k, want, atol=1e-6)
  # len 1 is the identity at any angle.
  k = np.asarray(kernels.fspecial_motion(1.0, 37.0, 2))
  assert k[2, 2] == pytest.approx(1.0) and abs(k.sum() - 1) < 1e-6


@pytest.mark.parametrize("angle", [10.0, 30.0, 52.0, 75.0])
def test_motion_symmetries(angle):
  k = np.asarray(kernels.fspecial_motion(10.0, angle, 5))
  assert abs(k.sum() - 1) < 1e-5
  np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)            # point symmetric
  mirror = np.asarray(kernels.fspecial_motion(10.0, 180.0 - angle, 5))
  np.testing.assert_allclose(mirror, k[:, ::-1], atol=1e-6)          # theta -> 180-theta
  # The kernel's principal axis points along the angle (counter-clockwise, rows down).
  ys, xs = np.mgrid[-5:6, -5:6]
  cov = np.array([[np.sum(k * xs * xs), -np.sum(k * xs * ys)],
                  [-np.sum(k * xs * ys), np.sum(k * ys * ys)]])
  w, v = np.linalg.eigh(cov)
  direction = np.degrees(np.arctan2(v[1, -1], v[0, -1])) % 180
  assert abs(direction - angle) < 3.0, direction


def test_motion_traced_angle():
  f = jax.jit(lambda a: kernels.fspecial_motion(6.0, a, 3))
  np.testing.assert_allclose(f(jnp.float32(52.0)), kernels.fspecial_motion(6.0, 52.0, 3),
                             atol=1e-6)


def test_imgaussfilt_taps():
  np.testing.assert_allclose(kernels.imgaussfilt_taps(0.1, 3), [0, 0, 0, 1, 0, 0, 0])
  for sigma in (0.5, 1.0, 2.0, 5.0):
    half = kernels.gauss_support(sigma)
    taps = np.asarray(kernels.imgaussfilt_taps(sigma, 10), np.float64)
    assert np.count_nonzero(taps) == 2 * half + 1
    want = fspecial_gaussian((1, 2 * half + 1), sigma)[0]
    np.testing.assert_allclose(taps[10 - half:10 + half + 1], want, atol=1e-6)
