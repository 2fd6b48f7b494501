"""Stage 3's reporting: statistics over splits, and the scatter plot's legend."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfl_jax.train import reporting


def test_evaluate_and_summarize():
  rng = np.random.default_rng(0)
  human = rng.uniform(1, 5, 100)
  stats = reporting.evaluate(human + rng.normal(0, 0.1, 100), human)
  assert set(stats) == set(reporting.METRICS)
  assert stats["srocc"] > 0.95 and 0.05 < stats["rmse"] < 0.2
  s = reporting.summarize([0.5, 0.7, float("nan"), 0.9])
  assert s["n"] == 3 and s["mean"] == pytest.approx(0.7) and s["median"] == 0.7
  assert s["std"] == pytest.approx(0.2)  # sample std, ddof=1
  assert reporting.summarize([])["n"] == 0


def test_scatter_png_legend(tmp_path):
  rng = np.random.default_rng(0)
  human = rng.uniform(1, 5, 200)
  pred = human + rng.normal(0, 0.3, 200)
  xs = np.linspace(pred.min(), pred.max(), 50)
  labels = reporting.scatter_png(tmp_path / "s.png", pred, human, curve=(xs, xs),
                              points_label="test images of all 3 repeats (n=200)",
                              curve_label="fitted logistic5 (pooled)")
  assert labels == ["identity (predicted = human)", "fitted logistic5 (pooled)",
                    "test images of all 3 repeats (n=200)"]
  img = np.asarray(Image.open(tmp_path / "s.png").convert("RGB")).astype(int)
  box = img[48:48 + 6 + 16 * 3, 78:110]  # the legend's marks, top left of the axes
  red = (box[..., 0] > 180) & (box[..., 1] < 80)
  blue = (box[..., 2] > 150) & (box[..., 0] < 150)
  grey = (abs(box[..., 0] - 120) < 10) & (abs(box[..., 2] - 120) < 10)
  assert red.sum() > 10 and blue.sum() > 5 and grey.sum() > 5
  # Without a curve the legend names only what is drawn.
  assert reporting.scatter_png(tmp_path / "t.png", pred, human) == [
      "identity (predicted = human)", "images"]
