"""Backbone weights for Stage 2: Stage 1's best or latest checkpoint (read as Stage 1
wrote it), random, or a file; the digest identifies their values."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from deepfl_jax.train import weights
from tests.train._small_backbone import SMALL, init_small_variables, save_stage1


def test_digest_follows_values_not_names(small_variables):
  d = weights.weights_digest(small_variables)
  assert weights.weights_digest(jax.tree.map(np.copy, small_variables)) == d
  other = jax.tree.map(np.copy, small_variables)
  other["params"]["conv2d_1"]["kernel"][0, 0, 0, 0] += 1e-3
  assert weights.weights_digest(other) != d


def test_stage1_best_checkpoint_by_default_latest_by_choice(tmp_path, small_variables):
  work = str(tmp_path)
  later = jax.tree.map(lambda a: a * np.float32(0.5), small_variables)
  with pytest.raises(FileNotFoundError, match="Stage 1"):
    weights.resolve_weights("stage1", work, model=SMALL)
  save_stage1(tmp_path / "stage1" / "checkpoints", 30, later)
  # No validation checkpoint: "best" falls back to the latest (and says so).
  v, info = weights.resolve_weights("stage1", work, model=SMALL)
  assert info["step"] == 30 and info["selection"] == "latest" and info["kind"] == "stage1"
  assert weights.weights_digest(v) == weights.weights_digest(later)
  save_stage1(tmp_path / "stage1" / "best", 10, small_variables)
  files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
  v, info = weights.resolve_weights("stage1", work, model=SMALL)
  assert info["step"] == 10 and info["selection"] == "best"
  # Stage 1's folders are only read.
  assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == files
  assert weights.weights_digest(v) == weights.weights_digest(small_variables)
  # The recorded checkpoint folder reloads the same backbone (for scoring).
  again, _ = weights.stage1_backbone(info["checkpoint"])
  assert weights.weights_digest(again) == weights.weights_digest(small_variables)
  _, info = weights.resolve_weights("stage1", work, model=SMALL,
                                    stage1_checkpoint="latest")
  assert info["step"] == 30 and info["selection"] == "latest"
  with pytest.raises(ValueError, match="config.stage2.stage1_checkpoint"):
    weights.resolve_weights("stage1", work, model=SMALL, stage1_checkpoint="newest")
  # NaN weights (a checkpoint written before Stage 1 stopped on them) are refused.
  save_stage1(tmp_path / "stage1" / "best", 40,
              jax.tree.map(lambda a: a * np.float32(np.nan), small_variables))
  with pytest.raises(ValueError, match="non-finite weights"):
    weights.resolve_weights("stage1", work, model=SMALL)


def test_random_and_missing_file(tmp_path):
  v, info = weights.resolve_weights("random", str(tmp_path), model=SMALL, seed=3)
  assert info == {"kind": "random", "seed": 3}
  assert weights.weights_digest(v) == weights.weights_digest(init_small_variables(3))
  with pytest.raises(FileNotFoundError, match="config.stage2.weights"):
    weights.resolve_weights(str(tmp_path / "missing.h5"), str(tmp_path), model=SMALL)
  assert [weights.weights_label(w) for w in ("stage1", "random", "/w.h5")] == [
      "stage1", "random", "imported"]
