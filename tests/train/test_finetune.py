"""End-to-end fine-tuning (backbone + MLSP regressor on MOS): the loss falls, the best
validation epoch is kept, and the test predictions rank the images (small stand-in
backbone; the real network's compile takes minutes on a shared CPU)."""
from __future__ import annotations

import jax
import numpy as np

from deepfl_jax.train import finetune, stage3
from tests.pretext._tiny_backbone import TinyBackbone


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
  stats = stage3.evaluate(fit["pred"], y[40:])
  assert stats["srocc"] > 0.8, stats
