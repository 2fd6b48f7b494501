"""The metrics demo (deepfl_jax/tools/fr_metrics_demo.py) runs as the "fr_metrics" stage
of configs/metrics_demo.py: every metric ranks the five noise and blur levels."""
from __future__ import annotations

import importlib
import json

import pytest

from deepfl_jax import stages
from deepfl_jax.metrics import fused
from deepfl_jax.tools import fr_metrics_demo


@pytest.mark.slow  # compiles the fused 11-metric call (~15 s)
def test_stage_scores_levels_in_order(tmp_path):
  config = importlib.import_module("configs.metrics_demo").get_config()
  config.images, config.size, config.batch_size = ("astronaut",), (192, 256), 1
  out = stages.fr_metrics(config, str(tmp_path))
  assert len(out["rows"]) == 2 * 5
  # Noise and blur at growing levels: every metric orders the levels (SROCC 1; a
  # metric that mixed up two levels, or its orientation, gives less).
  assert set(out["srocc_with_severity"]) == set(fused.METRIC_NAMES)
  assert min(out["srocc_with_severity"].values()) == pytest.approx(1.0)
  saved = json.loads((tmp_path / "fr_metrics.json").read_text())
  assert saved["srocc_with_severity"] == out["srocc_with_severity"]
  with pytest.raises(ValueError, match="config.images"):
    fr_metrics_demo.embedded_photos(("nope",), (192, 256))
