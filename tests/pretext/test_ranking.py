"""RankIQA's efficient Siamese loss against a plain NumPy double loop, its sign
convention (higher = better) and pair count, and the ranking batches."""
from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from deepfl_jax.pretext import ranking


def _reference(scores, group, level, margin):
  """Literal definition: every ordered pair (i less distorted than j, same group)."""
  total, pairs = 0.0, 0
  for i, j in itertools.product(range(len(scores)), repeat=2):
    if group[i] == group[j] and level[i] < level[j]:
      total += max(0.0, margin - (scores[i] - scores[j]))
      pairs += 1
  return total / len(scores), pairs


def test_loss_equals_numpy_reference_on_hand_made_batch():
  rng = np.random.default_rng(0)
  group = np.repeat([0, 1, 2], 6)
  level = np.tile(np.arange(6), 3)
  scores = rng.normal(scale=8.0, size=18).astype(np.float32)
  for margin in (10.0, 1.0, 0.0):
    want, pairs = _reference(scores, group, level, margin)
    got = float(ranking.ranking_loss(scores, group, level, margin=margin))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  assert pairs == 3 * 15  # 6 images per group: C(6, 2) ordered pairs each
  assert int(ranking.pair_mask(group, level).sum()) == 45


def test_sign_convention_higher_is_better():
  group = np.zeros(6, np.int32)
  level = np.arange(6)
  good = -20.0 * level.astype(np.float32)  # quality falls with the level, 20 apart
  # Correct order with gaps >= margin: no loss; the reverse order: every pair costs.
  assert float(ranking.ranking_loss(good, group, level, margin=10.0)) == 0.0
  bad = -good
  want, _ = _reference(bad, group, level, 10.0)
  assert want > 0
  np.testing.assert_allclose(float(ranking.ranking_loss(bad, group, level)), want,
                             rtol=1e-6)
  assert float(ranking.pair_accuracy(good, group, level)) == 1.0
  assert float(ranking.pair_accuracy(bad, group, level)) == 0.0


def test_divided_by_batch_size_not_pair_count():
  # Two images, one pair at hinge 10 + 1: loss (11) / 2 images, not / 1 pair.
  got = float(ranking.ranking_loss(np.array([0.0, 1.0]), np.array([0, 0]),
                                   np.array([0, 1]), margin=10.0))
  assert got == pytest.approx(11.0 / 2)
  # Pairs across groups never count; equal levels never count.
  assert float(ranking.ranking_loss(np.array([0.0, 5.0]), np.array([0, 1]),
                                    np.array([0, 1]))) == 0.0
  assert float(ranking.ranking_loss(np.array([0.0, 5.0]), np.array([0, 0]),
                                    np.array([2, 2]))) == 0.0


def test_groups_layout_and_whole_groups_per_device():
  crops = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), np.uint8)
  b = ranking.make_groups(crops, np.array([1, 16]), jax.random.PRNGKey(0))
  assert b["image"].shape == (12, 16, 16, 3)
  np.testing.assert_array_equal(b["level"], np.tile(np.arange(6), 2))
  np.testing.assert_array_equal(b["group"], np.repeat([0, 1], 6))
  np.testing.assert_allclose(np.asarray(b["image"][0]), crops[0] / 255.0, atol=1e-6)
  # Brightening (16) grows with the level: the mean rises level by level.
  means = np.asarray(b["image"][6:]).mean(axis=(1, 2, 3))
  assert np.all(np.diff(means) > 0)
  assert ranking.check_groups(24, 4, 6) == 4
  with pytest.raises(ValueError, match="whole groups of 6"):
    ranking.check_groups(12, 4, 6)
