"""The Stage 2 feature cache: reused for the same weights, a new entry for any other
weights or kind, and the backbone reloaded (and checked) from what it recorded."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from deepfl_jax.train import feature_cache, features, weights
from tests.train._small_backbone import NUM_FEATURES, SMALL


def _cached(work, variables, source, info, kind="narrow"):
  return feature_cache.cached_features(work, "random", variables, info, source,
                                       model=SMALL, kind=kind, batch_size=3,
                                       progress=False)


@pytest.mark.slow
def test_cache_reused_and_invalidated_by_other_weights(tmp_path, small_variables,
                                                      tiny_source, monkeypatch):
  work = str(tmp_path)
  calls = []
  real = features.extract_features
  monkeypatch.setattr(features, "extract_features",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  info = {"kind": "random", "seed": 3}
  first = _cached(work, small_variables, tiny_source, info)
  assert not first.reused and len(calls) == 1
  saved = json.loads((first.path / "index.json").read_text())
  assert saved["identity"]["weights_digest"] == weights.weights_digest(small_variables)
  assert saved["records"]["name"] == list(tiny_source.index["name"])
  assert saved["shape"] == [len(tiny_source), NUM_FEATURES]
  # The sizes the features were taken at (deepfl-iqa score names the most frequent).
  shapes = [tuple(np.asarray(tiny_source.records[i]["image"]).shape[:2])
            for i in range(len(tiny_source))]
  assert {(h, w): n for h, w, n in saved["image_sizes"]} == {
      s: shapes.count(s) for s in set(shapes)}
  assert saved["image_sizes"][0][2] == max(shapes.count(s) for s in shapes)

  again = _cached(work, small_variables, tiny_source, info)
  assert again.reused and len(calls) == 1 and again.path == first.path
  np.testing.assert_array_equal(np.asarray(again.features), first.features)
  loaded = feature_cache.load_feature_set(first.path)
  assert list(loaded.columns["name"]) == list(tiny_source.index["name"])
  assert loaded.metadata["score_name"] == "mos"

  # One changed weight -> a new cache entry, never the stale one.
  other = jax.tree.map(np.copy, small_variables)
  other["params"]["conv2d_1"]["kernel"] = other["params"]["conv2d_1"]["kernel"] * 1.5
  changed = _cached(work, other, tiny_source, info)
  assert not changed.reused and len(calls) == 2 and changed.path != first.path
  assert not np.allclose(changed.features, first.features)

  # The wide kind is another cache entry too.
  wide = _cached(work, small_variables, tiny_source, info, kind="wide")
  assert not wide.reused and wide.features.shape == (len(tiny_source), 5, 5, NUM_FEATURES)


def test_backbone_reloaded_from_record_and_checked(tmp_path, small_variables, tiny_source):
  fs = _cached(str(tmp_path), small_variables, tiny_source, {"kind": "random", "seed": 3})
  model, v = feature_cache.backbone_from_feature_set(fs, str(tmp_path))
  assert model.width == SMALL.width and tuple(model.blocks) == SMALL.blocks
  assert weights.weights_digest(v) == weights.weights_digest(small_variables)
  # Recorded as seed 4 but extracted with seed 3's weights: the digest check refuses.
  fs.info["weights"] = {"kind": "random", "seed": 4}
  with pytest.raises(ValueError, match="changed since Stage 2"):
    feature_cache.backbone_from_feature_set(fs, str(tmp_path))
  fs.info["weights"] = {"kind": "given"}
  with pytest.raises(ValueError, match="cannot be reloaded"):
    feature_cache.backbone_from_feature_set(fs, str(tmp_path))
  with pytest.raises(FileNotFoundError, match="run Stage 2"):
    feature_cache.feature_sets(str(tmp_path / "empty"))
