"""PSNR (deepfl_jax.metrics.psnr): no MATLAB golden; checked against the definition
10 log10(255^2 / MSE) evaluated independently in NumPy."""
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

psnr_module = importlib.import_module("deepfl_jax.metrics.psnr")
psnr = psnr_module.psnr


def _numpy_psnr(a, b):
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  return 10 * np.log10(255.0 ** 2 / mse)


def test_matches_definition_on_tid2013_pair(golden, x64):
  ref, dist = golden["I01"], golden["i01_01_5"]
  v = np.asarray(psnr(ref, dist))
  assert v.shape == (1,) and v.dtype == np.float64
  np.testing.assert_allclose(v, [_numpy_psnr(ref, dist)], rtol=0, atol=1e-10)
  # Per-channel mode averages the three channel PSNRs.
  per = np.mean([_numpy_psnr(ref[..., c], dist[..., c]) for c in range(3)])
  np.testing.assert_allclose(psnr(ref, dist, color_mode="per_channel"), [per], atol=1e-10)
  # Float input in [0, 1] is the same image.
  np.testing.assert_allclose(psnr(ref / 255.0, dist / 255.0), v, atol=1e-9)


def test_grey_and_batch(golden, x64):
  ref, dist = golden["goldhill"], golden["goldhill_jpeg"]
  v = psnr(np.stack([ref, ref]), np.stack([dist, ref]))
  np.testing.assert_allclose(v[0], _numpy_psnr(ref, dist), atol=1e-10)
  # Identical images: MSE is floored, giving a finite, large value.
  want_max = 10 * np.log10(255.0 ** 2 / psnr_module.MSE_FLOOR)
  np.testing.assert_allclose(v[1], want_max, rtol=1e-12)


def test_float32_close_to_float64(golden):
  ref, dist = golden["I01"], golden["i01_01_5"]
  v32 = np.asarray(psnr(ref, dist))
  assert v32.dtype == np.float32
  np.testing.assert_allclose(v32, [_numpy_psnr(ref, dist)], rtol=1e-5)


def test_identical_images_have_finite_gradient():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(1, 16, 16, 3)), jnp.float32)
  g = jax.grad(lambda d: psnr(x, d)[0])(x)
  assert np.all(np.isfinite(np.asarray(g)))
  assert np.isfinite(float(psnr(x, x)[0]))


def test_unknown_color_mode_is_rejected():
  x = np.zeros((1, 8, 8, 3), np.float32)
  with pytest.raises(ValueError, match="color_mode"):
    psnr(x, x, color_mode="lab")
