"""The transfer stage's statistics and its behaviour without independent contents
(the end-to-end run is in tests/test_demo.py)."""
from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from deepfl_jax import config_defaults
from deepfl_jax.train import transfer


def test_within_groups_srocc_averages_per_group():
  groups = np.repeat(["a", "b", "c"], 5)
  target = np.tile(np.arange(5.0), 3)
  pred = np.concatenate([np.arange(5.0), -np.arange(5.0), np.arange(5.0)])
  assert transfer.within_groups_srocc(pred, target, groups) == pytest.approx(1 / 3)
  flat = np.concatenate([target[:10], np.full(5, 2.0)])  # group c has no order: skipped
  assert transfer.within_groups_srocc(pred, flat, groups) == pytest.approx(0.0)


def test_no_independent_contents_is_said_plainly(tmp_path):
  config = ml_collections.ConfigDict({"transfer": config_defaults.transfer_config()})
  config.transfer.update(sklearn=False, shared_dir="")
  res = transfer.run_transfer(config, str(tmp_path))
  assert res["contents"] == [] and "scikit-learn" in res["note"]
  assert "Transfer check skipped" in transfer.markdown(res)
  saved = json.loads((tmp_path / "stage3" / "transfer.json").read_text())
  assert saved["contents"] == []


def test_each_feature_set_is_fit_for_its_own_splits_epochs():
  def run(label, model, epochs):
    return {"features": label, "model": model,
            "repeats": [{"best_epoch": e, "alpha": 1.0} for e in epochs]}
  results = {"runs": [run("stage1", "regressor", [67, 100, 100, 3, 2]),
                      run("stage1", "ridge", [1, 1, 1, 1, 1]),
                      run("random", "regressor", [93, 64, 76, 92, 79])]}
  assert transfer._final_epochs(results, "stage1", 7) == 67
  assert transfer._final_epochs(results, "random", 7) == 79   # not stage1's 67
  assert transfer._final_epochs(results, "other", 7) == 7     # no splits: the default
