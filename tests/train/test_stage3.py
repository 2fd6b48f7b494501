"""Stage 3: `run_stage3` over repeated content splits on every feature set, its results
files and the exported scoring model. Synthetic features (a linear target) keep it
fast; the parts have their own tests (test_regressor, test_probes, test_reporting)."""
from __future__ import annotations

import json
import pathlib

import ml_collections
import numpy as np
import pytest
from PIL import Image

from deepfl_jax import config_defaults
from deepfl_jax.data import splits
from deepfl_jax.metrics import correlation
from deepfl_jax.train import feature_cache, regressor, stage3
from tests.train._linear_features import HIDDEN, LR, _linear_data


def _write_feature_set(workdir, label, feats, y, content, metadata):
  """A Stage 2 cache folder as `feature_cache.cached_features` writes it."""
  folder = pathlib.Path(workdir) / feature_cache.STAGE_DIR / f"{label}-narrow-test"
  folder.mkdir(parents=True)
  np.save(folder / "features.npy", feats)
  info = {"label": label, "key": "test", "shape": list(feats.shape),
          "identity": {"kind": "narrow", "input_scale": "unit"},
          "weights": {"kind": "given"}, "metadata": metadata,
          "records": {"name": [f"im{i:03d}.png" for i in range(len(y))],
                      "content": list(content), "score": [float(v) for v in y]}}
  (folder / "index.json").write_text(json.dumps(info))
  return folder.name


@pytest.mark.slow
def test_run_stage3_writes_results(tmp_path):
  x, y, content = _linear_data()
  noise = np.random.default_rng(5).normal(size=x.shape).astype(np.float32)
  meta = {"name": "synthetic", "score_name": "dmos", "split_kind": "content",
          "higher_is_better": True}
  sets = {"trained": _write_feature_set(tmp_path, "trained", x, y, content, meta),
          "random": _write_feature_set(tmp_path, "random", noise, y, content, meta)}
  (tmp_path / feature_cache.STAGE_DIR / feature_cache.POINTER).write_text(
      json.dumps({"primary": "trained", "sets": sets}))
  config = ml_collections.ConfigDict()
  config.stage3 = config_defaults.stage3_config()
  config.stage3.update(epochs=10, batch_size=32, learning_rate=LR, hidden=HIDDEN,
                       num_repeats=3, ridge=True, progress=False, plcc_fit="logistic4",
                       export="repeat")
  res = stage3.run_stage3(config, str(tmp_path))

  out = tmp_path / stage3.STAGE_DIR
  saved = json.loads((out / "results.json").read_text())
  assert saved["plcc_fit"] == "logistic4" and "VQEG" in saved["plcc_fit_formula"]
  assert saved["split_kind"] == "content" and saved["num_repeats"] == 3
  assert [(r["features"], r["model"]) for r in saved["runs"]] == [
      ("trained", "regressor"), ("trained", "ridge"), ("random", "regressor"),
      ("random", "ridge")]
  for run in saved["runs"]:
    assert len(run["repeats"]) == 3
    for m in ("srocc", "plcc", "plcc_fitted", "krocc"):
      s = run["summary"][m]
      vals = [r[m] for r in run["repeats"]]
      assert s["mean"] == pytest.approx(np.mean(vals))
      assert s["std"] == pytest.approx(np.std(vals, ddof=1))
      assert s["median"] == pytest.approx(np.median(vals))
  by = {(r["features"], r["model"]): r for r in saved["runs"]}
  reg = by[("trained", "regressor")]
  # 40 contents of 15 images -> 24/8/8 contents per split.
  assert {(r["n_train"], r["n_val"], r["n_test"]) for r in reg["repeats"]} == {
      (360, 120, 120)}
  for r in reg["repeats"]:
    assert r["best_epoch"] == int(np.argmin(r["val_loss"])) + 1
  assert reg["summary"]["srocc"]["mean"] > 0.85
  assert by[("trained", "ridge")]["summary"]["srocc"]["mean"] > 0.9
  assert by[("random", "regressor")]["summary"]["srocc"]["mean"] < 0.5
  assert res["runs"][0]["summary"] == saved["runs"][0]["summary"]

  table = (out / "results.md").read_text()
  assert "| features | model | SROCC | PLCC | PLCC (logistic4) | KROCC |" in table
  assert table.count("\n| trained |") == 2 and table.count("\n| random |") == 2
  for name in ("scatter_trained_regressor.png", "scatter_random_ridge.png"):
    img = np.asarray(Image.open(out / name).convert("RGB"))
    assert img.shape == (640, 640, 3)
    blue = (img[..., 2] > 150) & (img[..., 0] < 150)  # the drawn points
    assert blue.sum() > 100

  # The exported regressor reproduces repeat 0's test predictions.
  variables, model = regressor.load_regressor(tmp_path)
  assert model["features"] == "trained" and model["repeat"] == 0
  assert model["best_epoch"] == reg["repeats"][0]["best_epoch"]
  test = splits.content_split(content, seed=0)["test"]
  pred = regressor.predict(variables, x[test], hidden=model["hidden"])
  assert correlation.srocc(pred, y[test]) == pytest.approx(
      reg["repeats"][0]["srocc"], abs=1e-9)


def _synthetic_workdir(tmp_path):
  x, y, content = _linear_data()
  meta = {"name": "synthetic", "score_name": "dmos", "split_kind": "content",
          "higher_is_better": True}
  sets = {"trained": _write_feature_set(tmp_path, "trained", x, y, content, meta)}
  (tmp_path / feature_cache.STAGE_DIR / feature_cache.POINTER).write_text(
      json.dumps({"primary": "trained", "sets": sets}))
  return x, y, content


@pytest.mark.slow
def test_final_scoring_model_is_fit_on_all_contents(tmp_path):
  # The default export: one regressor on every record for the median best epoch of
  # the splits; model.json says so, and it fits the (training) data it saw.
  x, y, content = _synthetic_workdir(tmp_path)
  config = ml_collections.ConfigDict({"stage3": config_defaults.stage3_config()})
  config.stage3.update(epochs=8, batch_size=32, learning_rate=LR, hidden=HIDDEN,
                       num_repeats=3, progress=False)
  res = stage3.run_stage3(config, str(tmp_path))
  best = [r["best_epoch"] for r in res["runs"][0]["repeats"]]
  final = res["final"]
  assert final["epochs"] == int(round(float(np.median(best))))
  assert final["num_records"] == len(y) and len(final["contents"]) == 40
  variables, model = regressor.load_regressor(tmp_path)
  assert model["repeat"] is None and model["fit"] == final["fit"]
  assert model["fit"].startswith("final: all 600 images (40 contents)")
  assert "Scoring model of `deepfl-iqa score`: final" in (
      tmp_path / stage3.STAGE_DIR / "results.md").read_text()
  pred = regressor.predict(variables, x, hidden=model["hidden"])
  assert correlation.srocc(pred, y) > 0.9
  config.stage3.export = "best"
  with pytest.raises(ValueError, match="config.stage3.export"):
    stage3.run_stage3(config, str(tmp_path))


def test_stage3_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="Stage 2"):
    stage3.run_stage3(None, str(tmp_path))
  config = ml_collections.ConfigDict({"stage3": {"plcc_fit": "cubic"}})
  with pytest.raises(ValueError, match="plcc_fit"):
    stage3.run_stage3(config, str(tmp_path))
