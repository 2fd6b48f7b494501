"""Stage 2: `run_stage2` resolves the weights, extracts or reuses each feature set and
records them for Stage 3 (the parts have their own tests: test_weights,
test_features, test_feature_cache)."""
from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from deepfl_jax import config_defaults
from deepfl_jax.train import feature_cache, features, stage2, weights
from tests.train._small_backbone import BLOCKS, SMALL, WIDTH, save_stage1


def _config(**kw):
  c = ml_collections.ConfigDict()
  c.stage2 = config_defaults.stage2_config()
  c.stage2.update(width=WIDTH, blocks=BLOCKS, batch_size=3, progress=False,
                  compare_random=False, weights="random")
  c.stage2.update(**kw)
  return c


def test_stage1_checkpoints_and_random_comparison(tmp_path, small_variables, tiny_source):
  work = str(tmp_path)
  with pytest.raises(FileNotFoundError, match="Stage 1"):
    stage2.run_stage2(_config(weights="stage1"), work, source=tiny_source)

  def save(step, v):
    save_stage1(tmp_path / "stage1" / "checkpoints", step, v)

  save(10, small_variables)
  out = stage2.run_stage2(_config(weights="stage1", compare_random=True), work,
                          source=tiny_source)
  assert list(out) == ["stage1", "random"]
  s1 = out["stage1"]
  assert not s1.reused and s1.info["weights"]["step"] == 10
  ref = features.extract_features(small_variables, tiny_source.records, model=SMALL,
                                  batch_size=3, progress=False)
  np.testing.assert_allclose(s1.features, ref, rtol=1e-6, atol=1e-7)
  assert not np.allclose(out["random"].features, s1.features)
  assert feature_cache.feature_sets(work)[0] == "stage1"

  # The same checkpoint again: reused. A newer checkpoint: extracted again.
  assert stage2.run_stage2(_config(weights="stage1"), work,
                           source=tiny_source)["stage1"].reused
  newer = jax.tree.map(lambda a: a * np.float32(0.9), small_variables)
  save(20, newer)
  s2 = stage2.run_stage2(_config(weights="stage1"), work, source=tiny_source)["stage1"]
  assert not s2.reused and s2.info["weights"]["step"] == 20 and s2.path != s1.path

  # The backbone is reloaded (and checked) from the recorded checkpoint for scoring.
  model, v = feature_cache.backbone_from_feature_set(s2, work)
  assert model.width == WIDTH and weights.weights_digest(v) == weights.weights_digest(
      newer)


def test_bad_settings(tmp_path, tiny_source):
  with pytest.raises(ValueError, match="config.stage2.dataset"):
    stage2.run_stage2(_config(dataset="nope"), str(tmp_path))
  with pytest.raises(FileNotFoundError, match="config.stage2.weights"):
    stage2.run_stage2(_config(weights=str(tmp_path / "missing.h5")), str(tmp_path),
                      source=tiny_source)
  with pytest.raises(ValueError, match="kind"):
    stage2.run_stage2(_config(kind="medium"), str(tmp_path), source=tiny_source)
