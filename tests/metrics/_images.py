"""Real test images and degradations shared by the metric tests (scikit-image photos)."""
import functools

import jax
import numpy as np
import scipy.ndimage
import skimage.data
import skimage.metrics

from deepfl_jax.metrics import correlation


@functools.lru_cache(maxsize=None)
def small_photos():
  """Four 96x128 RGB crops in [0, 1] (float32)."""
  ims = [skimage.data.astronaut()[60:156, 180:308], skimage.data.coffee()[150:246, 250:378],
         skimage.data.chelsea()[50:146, 120:248], skimage.data.rocket()[200:296, 200:328]]
  return np.stack(ims).astype(np.float32) / 255.0


def noisy(x, sigma, seed=0):
  """White Gaussian noise of std `sigma`, clipped to [0, 1]."""
  rng = np.random.default_rng(seed)
  return np.clip(x + rng.normal(0, sigma, x.shape), 0, 1).astype(np.float32)


def blurred(x, sigma):
  """Gaussian blur over the two image axes of (..., H, W, C)."""
  axes = (0,) * (x.ndim - 3) + (sigma, sigma, 0)
  return scipy.ndimage.gaussian_filter(x, axes).astype(np.float32)


def ssim_rank_agreement(fn, kind: str):
  """`fn` on the 4 small photos x 4 levels of noise or blur.

  Returns (scores (4 photos, 4 levels), Spearman correlation of all 16 scores with
  skimage's SSIM (Gaussian window)).
  """
  x = small_photos()
  levels = (0.01, 0.03, 0.06, 0.1) if kind == "noise" else (0.5, 1.0, 2.0, 3.0)
  make = noisy if kind == "noise" else blurred
  ref = np.repeat(x, len(levels), axis=0)
  dist = np.stack([make(im, s) for im in x for s in levels])
  ours = np.asarray(fn(ref, dist))
  ssim = [skimage.metrics.structural_similarity(
      r, d, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False) for r, d in zip(ref, dist)]
  return ours.reshape(len(x), len(levels)), correlation.srocc(ours, ssim)


def float32_and_float64(fn, reference, distorted):
  """`fn` of one pair in float32 (the default) and under x64; both as NumPy, with
  their dtypes checked (uint8 input follows the enabled float precision)."""
  v32 = np.asarray(fn(reference, distorted))
  assert v32.dtype == np.float32
  with jax.enable_x64(True):
    v64 = np.asarray(fn(reference, distorted))
  assert v64.dtype == np.float64
  return v32, v64
