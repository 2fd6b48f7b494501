"""MLSP features of whole images, batched by size: each row is its image's features."""
from __future__ import annotations

import numpy as np
import pytest

from deepfl_jax.models import mlsp_extractor
from deepfl_jax.train import features
from tests.train._small_backbone import NUM_FEATURES, SMALL


def test_extraction_matches_per_image_features(small_variables, tiny_source):
  feats = features.extract_features(small_variables, tiny_source.records, model=SMALL,
                                    batch_size=3, progress=False)
  assert feats.shape == (len(tiny_source), NUM_FEATURES) and feats.dtype == np.float32
  fn = mlsp_extractor(small_variables, model=SMALL)
  for i in (0, 1, 3, 6):  # both sizes, padded and full batches
    img = tiny_source.records[i]["image"][None].astype(np.float32) / 255.0
    np.testing.assert_allclose(feats[i], np.asarray(fn(img))[0], rtol=2e-4, atol=2e-5)
  assert np.all(np.isfinite(feats)) and np.std(feats) > 0
  assert not np.allclose(feats[1], feats[2])  # each row is its own image


def test_wide_features_shape(small_variables, tiny_source):
  feats = features.extract_features(small_variables, tiny_source.records[:2], model=SMALL,
                                    kind="wide", batch_size=2, progress=False)
  assert feats.shape == (2, 5, 5, NUM_FEATURES)


def test_size_batches_group_sizes_and_pad():
  imgs = [np.full(s, i, np.uint8) for i, s in
          enumerate([(75, 75, 3), (80, 96, 3), (75, 75, 3), (75, 75, 3)])]
  out = list(features.size_batches([{"image": im} for im in imgs], 2))
  assert [idx.tolist() for idx, _ in out] == [[0, 2], [1, -1], [3, -1]]
  _, batch = out[2]
  assert batch.shape == (2, 75, 75, 3) and np.all(batch[1] == 3)  # padded by a repeat
  with pytest.raises(ValueError, match="minimum side"):
    list(features.size_batches([{"image": np.zeros((40, 80, 3), np.uint8)}], 2))
