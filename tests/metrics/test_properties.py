"""Properties every metric must have, on real photographs (skimage.data, shipped with
scikit-image): best score for identical inputs, monotone worsening under growing noise
and blur, finite values and gradients on flat images, jit == eager, batch == per image.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from tests.metrics import _registry
from tests.metrics._images import blurred, noisy

NAMES = list(_registry.METRICS)


@functools.lru_cache(maxsize=None)
def photos():
  """Two 192x256 float32 RGB crops in [0, 1]."""
  a = skimage.data.astronaut()[40:232, 120:376]
  b = skimage.data.coffee()[100:292, 200:456]
  return np.stack([a, b]).astype(np.float32) / 255.0


def better(higher, a, b):
  """True where score a is strictly better than b."""
  return np.all(a > b) if higher else np.all(a < b)


@pytest.mark.parametrize("name", NAMES)
def test_identical_is_best(name):
  fn, higher = _registry.get(name)
  x = photos()
  same = np.asarray(fn(x, x))
  dist = np.asarray(fn(x, noisy(x, 0.05)))
  assert same.shape == (2,)
  assert np.all(np.isfinite(same))
  if name != "psnr":
    np.testing.assert_allclose(same, 1.0 if higher else 0.0, atol=1e-5)
  assert better(higher, same, dist)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_monotone_in_severity(name, kind):
  fn, higher = _registry.get(name)
  x = photos()
  make = noisy if kind == "noise" else blurred
  levels = (0.02, 0.06, 0.15) if kind == "noise" else (0.7, 1.5, 3.0)
  scores = [np.asarray(fn(x, make(x, s))) for s in levels]
  for mild, severe in zip(scores, scores[1:]):
    assert better(higher, mild, severe), (kind, scores)


@pytest.mark.parametrize("name", NAMES)
def test_flat_images_are_finite(name):
  fn, _ = _registry.get(name)
  flat = np.full((1, 192, 256, 3), 0.5, np.float32)
  other = np.full((1, 192, 256, 3), 0.3, np.float32)
  x = photos()[:1]
  for a, b in ((flat, flat), (flat, other), (x, flat), (flat, x)):
    assert np.all(np.isfinite(np.asarray(fn(a, b)))), name


@pytest.mark.parametrize("name", NAMES)
def test_jit_batch_and_grad(name):
  fn, _ = _registry.get(name)
  x = photos()
  y = noisy(x, 0.05)
  eager = np.asarray(fn(x, y))
  jitted = np.asarray(jax.jit(fn)(x, y))
  np.testing.assert_allclose(jitted, eager, rtol=1e-4, atol=1e-5)
  single = np.concatenate([np.asarray(fn(x[i], y[i])) for i in range(2)])
  np.testing.assert_allclose(single, eager, rtol=1e-4, atol=1e-5)
  grad = jax.grad(lambda d: jnp.sum(fn(x[:1], d)))(jnp.asarray(y[:1]))
  assert np.all(np.isfinite(np.asarray(grad))), name
  grad_same = jax.grad(lambda d: jnp.sum(fn(x[:1], d)))(jnp.asarray(x[:1]))
  assert np.all(np.isfinite(np.asarray(grad_same))), name


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_reported(name):
  fn, _ = _registry.get(name)
  x = photos()
  with pytest.raises(ValueError, match="shape"):
    fn(x, x[:, :100])
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    fn(x, x * 255.0)
  bad = x.copy()
  bad[0, 0, 0, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    fn(x, bad)
  with pytest.raises(ValueError, match="channel"):
    fn(x[..., :2], x[..., :2])
