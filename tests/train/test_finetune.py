"""End-to-end fine-tuning (backbone + MLSP regressor on MOS): the loss falls, the best
validation epoch is kept, and the test predictions rank the images (small stand-in
backbone; the real network's compile takes minutes on a shared CPU)."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from deepfl_jax.train import finetune, reporting
from tests.pretext._tiny_backbone import TinyBackbone


@pytest.mark.slow
def test_finetune_learns_brightness():
  rng = np.random.default_rng(0)
  n = 48
  level = rng.uniform(0.1, 0.9, n)
  images = (255 * level[:, None, None, None] * rng.uniform(0.7, 1.0, (n, 16, 16, 3))
            ).astype(np.uint8)
  y = 100 * level
  bb = TinyBackbone(bn_axis_name=None)
  v = bb.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32), taps=True,
              final=False)
  net = finetune.FineTuneNet(bb, hidden=(16,), dropout=(0.0,))
  split = {"train": np.arange(32), "validation": np.arange(32, 40),
           "test": np.arange(40, 48)}
  fit = finetune.finetune(net, v, images, y, split, epochs=12, batch_size=8,
                          learning_rate=3e-2, seed=0)
  assert len(fit["val_loss"]) == 12
  assert fit["val_loss"][fit["best_epoch"] - 1] == min(fit["val_loss"])
  assert fit["train_loss"][-1] < 0.5 * fit["train_loss"][0]
  stats = reporting.evaluate(fit["pred"], y[40:])
  assert stats["srocc"] > 0.8, stats


@pytest.mark.slow
def test_run_finetune_end_to_end(tmp_path, monkeypatch):
  """The stage: Stage 2's database and weights, Stage 3's splits, results files (the
  real backbone at 1/8 width, one block per stage; a small in-memory database)."""
  import json

  from configs import demo
  from deepfl_jax.data import pipeline
  from deepfl_jax.train import stage2

  rng = np.random.default_rng(1)
  recs = []
  for c in range(5):
    for k in range(4):
      level = 0.2 + 0.15 * k
      img = (255 * level * rng.uniform(0.6, 1.0, (80, 80, 3))).astype(np.uint8)
      recs.append({"image": img, "name": f"c{c}_{k}", "content": f"c{c}",
                   "score": 100 * level})
  source = pipeline.in_memory_source(recs, index_fields=("name", "content", "score"),
                                     metadata={"name": "tiny", "split_kind": "content"})
  monkeypatch.setattr(stage2, "open_dataset", lambda c, wd: source)
  config = demo.get_config()
  config.stage2.weights = "random"
  config.stage3.num_repeats = 2
  config.stage3.hidden, config.stage3.dropout = (8,), (0.0,)
  config.finetune = {"epochs": 1, "batch_size": 4, "learning_rate": 1e-4,
                     "num_repeats": 0, "compare_random": False, "progress": False}
  res = finetune.run_finetune(config, str(tmp_path))
  assert [r["features"] for r in res["runs"]] == ["random"]
  reps = res["runs"][0]["repeats"]
  assert len(reps) == 2 and all(np.isfinite(r["srocc"]) for r in reps)
  saved = json.loads((tmp_path / "finetune" / "results.json").read_text())
  assert saved["split_kind"] == "content" and saved["num_repeats"] == 2
  assert "finetuned" in (tmp_path / "finetune" / "results.md").read_text()
