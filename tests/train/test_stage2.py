"""Stage 2: `run_stage2` resolves the weights, extracts or reuses each feature set and
records them for Stage 3 (the parts have their own tests: test_weights,
test_features, test_feature_cache)."""
from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from deepfl_jax.train import feature_cache, features, stage2, weights
from tests.train._small_backbone import (BLOCKS, SMALL, WIDTH, save_stage1,
                                         small_variables, tiny_source)


def _config(**kw):
  c = ml_collections.ConfigDict()
  c.stage2 = stage2.default_config()
  c.stage2.update(width=WIDTH, blocks=BLOCKS, batch_size=3, progress=False,
                  compare_random=False, weights="random")
  c.stage2.update(**kw)
  return c


@pytest.fixture(scope="module")
def variables():
  return small_variables()


@pytest.fixture(scope="module")
def source():
  return tiny_source()


def test_stage1_checkpoints_and_random_comparison(tmp_path, variables, source):
  work = str(tmp_path)
  with pytest.raises(FileNotFoundError, match="Stage 1"):
    stage2.run_stage2(_config(weights="stage1"), work, source=source)

  def save(step, v):
    save_stage1(tmp_path / "stage1" / "checkpoints", step, v)

  save(10, variables)
  out = stage2.run_stage2(_config(weights="stage1", compare_random=True), work,
                          source=source)
  assert list(out) == ["stage1", "random"]
  s1 = out["stage1"]
  assert not s1.reused and s1.info["weights"]["step"] == 10
  ref = features.extract_features(variables, source.records, model=SMALL,
                                  batch_size=3, progress=False)
  np.testing.assert_allclose(s1.features, ref, rtol=1e-6, atol=1e-7)
  assert not np.allclose(out["random"].features, s1.features)
  assert feature_cache.feature_sets(work)[0] == "stage1"

  # The same checkpoint again: reused. A newer checkpoint: extracted again.
  assert stage2.run_stage2(_config(weights="stage1"), work,
                           source=source)["stage1"].reused
  newer = jax.tree.map(lambda a: a * np.float32(0.9), variables)
  save(20, newer)
  s2 = stage2.run_stage2(_config(weights="stage1"), work, source=source)["stage1"]
  assert not s2.reused and s2.info["weights"]["step"] == 20 and s2.path != s1.path

  # The backbone is reloaded (and checked) from the recorded checkpoint for scoring.
  model, v = feature_cache.backbone_from_feature_set(s2, work)
  assert model.width == WIDTH and weights.weights_digest(v) == weights.weights_digest(
      newer)


def test_bad_settings(tmp_path, source):
  with pytest.raises(ValueError, match="config.stage2.dataset"):
    stage2.run_stage2(_config(dataset="nope"), str(tmp_path))
  with pytest.raises(FileNotFoundError, match="config.stage2.weights"):
    stage2.run_stage2(_config(weights=str(tmp_path / "missing.h5")), str(tmp_path),
                      source=source)
  with pytest.raises(ValueError, match="kind"):
    stage2.run_stage2(_config(kind="medium"), str(tmp_path), source=source)


def test_backbone_settings_default_to_config_model():
  c = ml_collections.ConfigDict({"model": {"width": 0.5, "blocks": (2, 2, 2),
                                           "input_scale": "keras"},
                                 "stage2": {"blocks": (1, 1, 1)}})
  s = stage2._stage2_section(c)  # pylint: disable=protected-access
  assert s.width == 0.5 and tuple(s.blocks) == (1, 1, 1) and s.input_scale == "keras"
  assert s.checkpoint_dir == "stage1/checkpoints" and s.kind == "narrow"
  d = stage2._stage2_section(ml_collections.ConfigDict())  # pylint: disable=protected-access
  assert d.width == 1.0 and tuple(d.blocks) == (10, 20, 10) and d.input_scale == "unit"
