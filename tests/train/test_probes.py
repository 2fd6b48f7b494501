"""The ridge probe: closed-form ridge on standardised features, penalty by validation."""
from __future__ import annotations

from deepfl_jax.metrics import correlation
from deepfl_jax.train import probes
from tests.train._linear_features import _linear_data


def test_ridge_probe_recovers_linear_target():
  x, y, _ = _linear_data()
  pred, alpha = probes.ridge_probe(x[:360], y[:360], x[360:480], y[360:480], x[480:])
  assert correlation.srocc(pred, y[480:]) > 0.97
  assert alpha > 0
