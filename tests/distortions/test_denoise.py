"""Denoise (type 15, deepfl_jax.distortions.denoise): noise + a substitute denoiser for
MATLAB's DnCNN. No reference exists; test what the substitute must still do."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from deepfl_jax.distortions import denoise

VARIANCES = (0.01, 0.03, 0.05, 0.1, 0.15)
_denoise = jax.jit(denoise.denoise)                 # variance traced: one compile


@pytest.fixture(scope="module")
def image():
  u8 = skimage.data.astronaut()[40:232:2, 64:320:2]           # 96x128
  return jnp.asarray(u8 / 255.0, jnp.float32)


def _psnr(a, b):
  return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b)) ** 2))


@pytest.fixture(scope="module")
def results(image):
  key = jax.random.PRNGKey(3)
  noise = jax.random.normal(key, image.shape, jnp.float32)      # denoise's own draw
  out = {}
  for v in VARIANCES:
    noisy = np.clip(np.asarray(image) + np.sqrt(v) * np.asarray(noise), 0, 1)
    out[v] = (_psnr(image, noisy), _psnr(image, _denoise(image, jnp.float32(v), key)))
  return out


def test_denoising_improves_on_the_noisy_input(results):
  # Measured on this crop (noisy -> denoised dB): 20.4->26.2, 16.0->23.3, 14.1->21.9,
  # 11.7->19.8, 10.5->18.4 (a 384x512 crop: 20.7->29.0, 16.3->25.4, 14.4->23.6,
  # 11.9->20.9, 10.6->19.3).
  for v, (noisy, den) in results.items():
    assert den > noisy + 4.0, (v, noisy, den)


def test_severity_ordered_by_variance(results):
  den = [results[v][1] for v in VARIANCES]
  assert all(a > b for a, b in zip(den, den[1:])), den


def test_deterministic_per_key(image):
  k1, k2 = jax.random.PRNGKey(0), jax.random.PRNGKey(1)
  a = np.asarray(_denoise(image, jnp.float32(0.05), k1))
  np.testing.assert_array_equal(a, np.asarray(_denoise(image, jnp.float32(0.05), k1)))
  b = np.asarray(_denoise(image, jnp.float32(0.05), k2))
  assert np.abs(a - b).max() > 1e-3
  assert a.shape == image.shape and a.min() >= 0 and a.max() <= 1


def test_denoiser_is_nearly_identity_without_noise(image):
  # With (almost) no noise the shrinkage keeps (almost) everything: the artefacts come
  # from removing noise, not from the filter itself.
  out = jax.jit(denoise.denoise_with_noise)(image, 1e-8, jnp.zeros_like(image))
  assert _psnr(image, out) > 45.0
