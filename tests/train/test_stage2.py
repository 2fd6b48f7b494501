"""Stage 2: MLSP features of every image, batched by size, cached by weight identity.

A width-reduced InceptionResNetV2 (width 1/8, one block per stage: 556 features) on a
few tiny images of two sizes keeps this fast.
"""
from __future__ import annotations

import json

import jax
import ml_collections
import numpy as np
import pytest

from deepfl_jax.data.pipeline import in_memory_source
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.models import mlsp_extractor
from deepfl_jax.train import stage2
from deepfl_jax.train.checkpoint import Checkpointer

WIDTH, BLOCKS = 0.125, (1, 1, 1)
SMALL = irv2.InceptionResNetV2(width=WIDTH, blocks=BLOCKS)
NUM_FEATURES = sum(irv2.tap_widths(WIDTH, BLOCKS))


def _source(n=7):
  """n images: sizes alternate 75x75 / 80x96 (so size groups interleave), scores."""
  rng = np.random.default_rng(0)
  examples = []
  for i in range(n):
    shape = (75, 75, 3) if i % 3 else (80, 96, 3)
    examples.append({"image": rng.integers(0, 256, shape, dtype=np.uint8),
                     "name": f"im{i}.png", "content": f"c{i % 4}",
                     "score": float(i) / 2})
  return in_memory_source(examples, index_fields=("name", "content", "score"),
                          metadata={"name": "tiny", "split_kind": "content",
                                    "score_name": "mos"})


def _config(**kw):
  c = ml_collections.ConfigDict()
  c.stage2 = stage2.default_config()
  c.stage2.update(width=WIDTH, blocks=BLOCKS, batch_size=3, progress=False,
                  compare_random=False, weights="random")
  c.stage2.update(**kw)
  return c


@pytest.fixture(scope="module")
def variables():
  return jax.tree.map(np.asarray, irv2.init_variables(SMALL, seed=3))


@pytest.fixture(scope="module")
def source():
  return _source()


def test_extraction_matches_per_image_features(variables, source):
  feats = stage2.extract_features(variables, source.records, model=SMALL, batch_size=3,
                                  progress=False)
  assert feats.shape == (len(source), NUM_FEATURES) and feats.dtype == np.float32
  fn = mlsp_extractor(variables, model=SMALL)
  for i in (0, 1, 3, 6):  # both sizes, padded and full batches
    img = source.records[i]["image"][None].astype(np.float32) / 255.0
    np.testing.assert_allclose(feats[i], np.asarray(fn(img))[0], rtol=2e-4, atol=2e-5)
  assert np.all(np.isfinite(feats)) and np.std(feats) > 0
  assert not np.allclose(feats[1], feats[2])  # each row is its own image


def test_wide_features_shape(variables, source):
  feats = stage2.extract_features(variables, source.records[:2], model=SMALL,
                                  kind="wide", batch_size=2, progress=False)
  assert feats.shape == (2, 5, 5, NUM_FEATURES)


def test_cache_reused_and_invalidated_by_other_weights(tmp_path, variables, source,
                                                      monkeypatch):
  work = str(tmp_path)
  calls = []
  real = stage2.extract_features
  monkeypatch.setattr(stage2, "extract_features",
                      lambda *a, **k: calls.append(1) or real(*a, **k))
  info = {"kind": "random", "seed": 3}
  first = stage2.run_stage2(_config(), work, source=source, variables=variables,
                            weights_info=info, model=SMALL)["random"]
  assert not first.reused and len(calls) == 1
  saved = json.loads((first.path / "index.json").read_text())
  assert saved["identity"]["weights_digest"] == stage2.weights_digest(variables)
  assert saved["records"]["name"] == list(source.index["name"])
  assert saved["shape"] == [len(source), NUM_FEATURES]
  # The sizes the features were taken at (deepfl-iqa score names the most frequent).
  shapes = [tuple(np.asarray(source.records[i]["image"]).shape[:2])
            for i in range(len(source))]
  assert {(h, w): n for h, w, n in saved["image_sizes"]} == {
      s: shapes.count(s) for s in set(shapes)}
  assert saved["image_sizes"][0][2] == max(shapes.count(s) for s in shapes)

  again = stage2.run_stage2(_config(), work, source=source, variables=variables,
                            weights_info=info, model=SMALL)["random"]
  assert again.reused and len(calls) == 1 and again.path == first.path
  np.testing.assert_array_equal(np.asarray(again.features), first.features)

  # One changed weight -> a new cache entry, never the stale one.
  other = jax.tree.map(np.copy, variables)
  other["params"]["conv2d_1"]["kernel"] = other["params"]["conv2d_1"]["kernel"] * 1.5
  changed = stage2.run_stage2(_config(), work, source=source, variables=other,
                              weights_info=info, model=SMALL)["random"]
  assert not changed.reused and len(calls) == 2 and changed.path != first.path
  assert not np.allclose(changed.features, first.features)
  primary, sets = stage2.feature_sets(work)
  assert primary == "random" and sets["random"] == changed.path

  # The wide kind is another cache entry too.
  wide = stage2.run_stage2(_config(kind="wide"), work, source=source,
                           variables=variables, weights_info=info,
                           model=SMALL)["random"]
  assert not wide.reused and wide.features.shape == (len(source), 5, 5, NUM_FEATURES)


def test_stage1_checkpoints_and_random_comparison(tmp_path, variables, source):
  work = str(tmp_path)
  with pytest.raises(FileNotFoundError, match="Stage 1"):
    stage2.run_stage2(_config(weights="stage1"), work, source=source)

  def save(step, v):
    state = {"step": np.int32(step),
             "params": {"backbone": v["params"], "head": {"w": np.ones(2, np.float32)}},
             "batch_stats": {"backbone": v["batch_stats"], "head": {}}}
    with Checkpointer(tmp_path / "stage1" / "checkpoints", save_every=1, async_save=False) as c:
      c.save(step, state, force=True)

  save(10, variables)
  out = stage2.run_stage2(_config(weights="stage1", compare_random=True), work,
                          source=source)
  assert list(out) == ["stage1", "random"]
  s1 = out["stage1"]
  assert not s1.reused and s1.info["weights"]["step"] == 10
  ref = stage2.extract_features(variables, source.records, model=SMALL, batch_size=3,
                                progress=False)
  np.testing.assert_allclose(s1.features, ref, rtol=1e-6, atol=1e-7)
  assert not np.allclose(out["random"].features, s1.features)
  assert stage2.feature_sets(work)[0] == "stage1"

  # The same checkpoint again: reused. A newer checkpoint: extracted again.
  assert stage2.run_stage2(_config(weights="stage1"), work,
                           source=source)["stage1"].reused
  newer = jax.tree.map(lambda a: a * np.float32(0.9), variables)
  save(20, newer)
  s2 = stage2.run_stage2(_config(weights="stage1"), work, source=source)["stage1"]
  assert not s2.reused and s2.info["weights"]["step"] == 20 and s2.path != s1.path

  # The backbone is reloaded (and checked) from the recorded checkpoint for scoring.
  model, v = stage2.backbone_from_feature_set(s2, work)
  assert model.width == WIDTH and stage2.weights_digest(v) == stage2.weights_digest(
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


def test_stage1_best_checkpoint_by_default_latest_by_choice(tmp_path, variables, source):
  work = str(tmp_path)
  later = jax.tree.map(lambda a: a * np.float32(0.5), variables)

  def save(folder, step, v):
    state = {"step": np.int32(step),
             "params": {"backbone": v["params"], "head": {"w": np.ones(2, np.float32)}},
             "batch_stats": {"backbone": v["batch_stats"], "head": {}}}
    with Checkpointer(tmp_path / "stage1" / folder, save_every=1, async_save=False) as c:
      c.save(step, state, force=True)

  save("checkpoints", 30, later)
  # No validation checkpoint: "best" falls back to the latest (and says so).
  s = stage2.run_stage2(_config(weights="stage1"), work, source=source)["stage1"]
  assert s.info["weights"]["step"] == 30 and s.info["weights"]["selection"] == "latest"
  save("best", 10, variables)
  s = stage2.run_stage2(_config(weights="stage1"), work, source=source)["stage1"]
  assert s.info["weights"]["step"] == 10 and s.info["weights"]["selection"] == "best"
  assert stage2.weights_digest(stage2.backbone_from_feature_set(s, work)[1]) == \
      stage2.weights_digest(variables)
  s = stage2.run_stage2(_config(weights="stage1", stage1_checkpoint="latest"), work,
                        source=source)["stage1"]
  assert s.info["weights"]["step"] == 30 and s.info["weights"]["selection"] == "latest"
  with pytest.raises(ValueError, match="config.stage2.stage1_checkpoint"):
    stage2.run_stage2(_config(weights="stage1", stage1_checkpoint="newest"), work,
                      source=source)
  # NaN weights (a checkpoint written before Stage 1 stopped on them) are refused.
  save("best", 40, jax.tree.map(lambda a: a * np.float32(np.nan), variables))
  with pytest.raises(ValueError, match="non-finite weights"):
    stage2.run_stage2(_config(weights="stage1"), work, source=source)
