"""QPT's InfoNCE against a NumPy loop, positive views' IoU, hard negatives and the
batch layout."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from deepfl_jax.pretext import contrastive, degradations


def _reference(z, t):
  """Literal InfoNCE: anchor i, positive i ^ 1, negatives every other row."""
  z = z / np.linalg.norm(z, axis=1, keepdims=True)
  total = 0.0
  for i in range(len(z)):
    s = z @ z[i] / t
    p = i ^ 1
    den = sum(np.exp(s[j]) for j in range(len(z)) if j != i)
    total += -np.log(np.exp(s[p]) / den)
  return total / len(z)


@pytest.mark.parametrize("t", [0.1, 0.2, 1.0])
def test_info_nce_equals_numpy_reference(t):
  z = np.random.default_rng(0).normal(size=(8, 5))
  got = float(contrastive.info_nce(z.astype(np.float32), t))
  np.testing.assert_allclose(got, _reference(z, t), rtol=2e-5)


def test_info_nce_low_when_positives_align():
  rng = np.random.default_rng(1)
  base = rng.normal(size=(4, 16))
  aligned = np.repeat(base, 2, axis=0) + 1e-3 * rng.normal(size=(8, 16))
  shuffled = aligned[[0, 2, 1, 4, 3, 6, 5, 7]]  # positives broken
  assert (float(contrastive.info_nce(aligned.astype(np.float32), 0.1))
          < float(contrastive.info_nce(shuffled.astype(np.float32), 0.1)) - 1.0)


def test_view_pairs_iou_within_range():
  rng = np.random.default_rng(2)
  for lo, hi in ((0.1, 0.3), (0.5, 0.7), (0.0, 1.0)):
    for _ in range(20):
      (t1, l1), (t2, l2) = contrastive.view_pair(rng, (64, 80), (32, 32), (lo, hi))
      assert 0 <= t1 <= 32 and 0 <= t2 <= 32 and 0 <= l1 <= 48 and 0 <= l2 <= 48
      iou = contrastive.iou_same_size(t2 - t1, l2 - l1, 32, 32)
      assert lo <= iou <= hi
  with pytest.raises(ValueError, match="iou_range"):
    contrastive.view_pair(rng, (32, 32), (32, 32), (0.1, 0.3))  # only IoU 1 possible


@pytest.mark.slow
def test_batch_hard_negatives_share_content_and_differ_in_degradation():
  crops = np.random.default_rng(3).integers(0, 256, (2, 48, 48, 3), np.uint8)
  cfg = contrastive.DataConfig(crop_size=(48, 48), view_size=(24, 24),
                               iou_range=(0.1, 0.5), per_content=3, flip=True,
                               space=degradations.DegradationSpace(ops=(16, 17),
                                                                   second_order_prob=0.0))
  b = contrastive.make_views(crops, jax.random.PRNGKey(0), cfg)
  assert b["image"].shape == (12, 24, 24, 3)
  np.testing.assert_array_equal(b["content"], np.repeat([0, 1], 6))
  np.testing.assert_array_equal(b["degradation"], np.repeat(np.arange(6), 2))
  for c in range(2):
    plans = b["plans"][c]
    assert len(set(plans)) == 3  # hard negatives: same content, other degradations
  imgs = np.asarray(b["image"])
  # Positives come from one degraded image, negatives of a content from others: the
  # mean brightness of the two views of a degraded image agrees better than across.
  # (Exact pixels differ: other crops, flips.)
  assert np.all((imgs >= 0) & (imgs <= 1))
  np.testing.assert_allclose(imgs * 255, np.round(imgs * 255), atol=1e-3)
  for r in range(6):
    (t1, l1), (t2, l2) = b["boxes"][2 * r], b["boxes"][2 * r + 1]
    assert 0.1 <= contrastive.iou_same_size(t2 - t1, l2 - l1, 24, 24) <= 0.5


@pytest.mark.slow
def test_positive_views_are_crops_of_one_degraded_image():
  crops = np.random.default_rng(4).integers(0, 256, (1, 40, 40, 3), np.uint8)
  cfg = contrastive.DataConfig(crop_size=(40, 40), view_size=(24, 24),
                               iou_range=(0.2, 0.6), per_content=2, flip=False,
                               space=degradations.DegradationSpace(ops=(16,),
                                                                   second_order_prob=0.0))
  key = jax.random.PRNGKey(5)
  b = contrastive.make_views(crops, key, cfg)
  k_plan, k_img, _, _ = jax.random.split(key, 4)
  img_keys = jax.random.split(k_img, 2)
  for k in range(2):
    full = degradations.apply(crops[0] / np.float32(255.0), b["plans"][0][k], img_keys[k])
    full = np.round(np.asarray(full) * 255) / 255
    for v in (2 * k, 2 * k + 1):
      t, l = b["boxes"][v]
      np.testing.assert_allclose(np.asarray(b["image"][v]), full[t:t + 24, l:l + 24],
                                 atol=1e-6)
