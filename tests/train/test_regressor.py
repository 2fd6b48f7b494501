"""The MOS regressor: it learns, keeps the best validation epoch (or the last when
asked), and its export round-trips through orbax (and old msgpack exports still load)."""
from __future__ import annotations

import pathlib

import flax.serialization
import numpy as np
import pytest

from deepfl_jax.metrics import correlation
from deepfl_jax.train import regressor
from tests.train._linear_features import HIDDEN, LR, _linear_data


@pytest.mark.slow
def test_regressor_learns_linear_target_and_beats_untrained_head():
  x, y, _ = _linear_data()
  tr, va, te = np.arange(0, 360), np.arange(360, 480), np.arange(480, 600)
  fit = regressor.train_regressor(x[tr], y[tr], x[va], y[va], epochs=30, batch_size=32,
                               learning_rate=LR, hidden=HIDDEN, seed=0)
  pred = regressor.predict(fit.variables, x[te], hidden=HIDDEN)
  before = regressor.predict(fit.initial_variables, x[te], hidden=HIDDEN)
  s_after = correlation.srocc(pred, y[te])
  s_before = abs(correlation.srocc(before, y[te]))
  mse_after = np.mean((pred - y[te]) ** 2)
  mse_before = np.mean((before - y[te]) ** 2)
  assert s_after > 0.9, s_after
  assert s_after > s_before + 0.3, (s_after, s_before)
  assert mse_after < 0.2 * mse_before and mse_after < 0.5 * np.var(y[te])
  assert fit.train_loss[-1] < fit.train_loss[0]


def test_best_validation_epoch_is_kept():
  # Validation targets are the NEGATED relation: learning the training target makes
  # the validation loss worse, so the best epoch is early and the last is not it.
  x, y, _ = _linear_data()
  tr, va = np.arange(0, 240), np.arange(240, 360)
  y_val = 6.0 - y[va]
  fit = regressor.train_regressor(x[tr], y[tr], x[va], y_val, epochs=12, batch_size=32,
                               learning_rate=LR, hidden=HIDDEN, seed=1)
  hist = np.asarray(fit.val_loss)
  assert len(hist) == 12
  assert fit.best_epoch == int(np.argmin(hist)) + 1
  assert fit.best_val_loss == pytest.approx(hist.min(), rel=1e-6)
  assert hist[-1] > 1.2 * hist.min()
  kept = np.mean((regressor.predict(fit.variables, x[va], hidden=HIDDEN) - y_val) ** 2)
  assert kept == pytest.approx(hist.min(), rel=1e-4)
  assert kept < hist[-1]


def test_keep_last_returns_the_last_epoch():
  x, y, _ = _linear_data()
  fit = regressor.train_regressor(x[:240], y[:240], x[240:360], 6.0 - y[240:360],
                               epochs=6, batch_size=32, learning_rate=LR,
                               hidden=HIDDEN, seed=1, keep_best=False)
  assert fit.best_epoch == 6 and fit.best_val_loss == pytest.approx(fit.val_loss[-1])
  kept = np.mean((regressor.predict(fit.variables, x[240:360], hidden=HIDDEN)
                  - (6.0 - y[240:360])) ** 2)
  assert kept == pytest.approx(fit.val_loss[-1], rel=1e-4)


@pytest.mark.slow
def test_export_round_trip_and_old_msgpack(tmp_path):
  x, y, _ = _linear_data(n_contents=8)
  fit = regressor.train_regressor(x[:80], y[:80], x[80:], y[80:], epochs=2,
                                  batch_size=32, hidden=HIDDEN, seed=0)
  with pytest.raises(FileNotFoundError, match="run Stage 3"):
    regressor.load_regressor(tmp_path)
  out = regressor.save_regressor(tmp_path, fit.variables, {"hidden": list(HIDDEN)})
  assert (out / regressor.REGRESSOR_DIR).is_dir()
  variables, meta = regressor.load_regressor(tmp_path)
  assert meta == {"hidden": list(HIDDEN)}
  want = regressor.predict(fit.variables, x, hidden=HIDDEN)
  np.testing.assert_array_equal(regressor.predict(variables, x, hidden=HIDDEN), want)
  # A work directory from before the orbax export: regressor.msgpack beside model.json.
  old = tmp_path / "old"
  (old / regressor.STAGE_DIR).mkdir(parents=True)
  (old / regressor.STAGE_DIR / regressor.LEGACY_REGRESSOR).write_bytes(
      flax.serialization.msgpack_serialize(fit.variables))
  (old / regressor.STAGE_DIR / regressor.MODEL_JSON).write_text("{}")
  variables, _ = regressor.load_regressor(old)
  np.testing.assert_array_equal(regressor.predict(variables, x, hidden=HIDDEN), want)
  (old / regressor.STAGE_DIR / regressor.LEGACY_REGRESSOR).unlink()
  with pytest.raises(FileNotFoundError, match="rerun Stage 3"):
    regressor.load_regressor(pathlib.Path(old))


def test_output_starts_at_the_training_mean():
  x, y, _ = _linear_data()
  y = y + 3.0  # scores on a DMOS-like scale
  fit = regressor.train_regressor(x[:240], y[:240], x[240:360], y[240:360], epochs=1,
                                  batch_size=32, learning_rate=LR, hidden=HIDDEN, seed=0)
  bias = fit.initial_variables["params"][f"Dense_{len(HIDDEN)}"]["bias"]
  np.testing.assert_allclose(bias, [np.mean(y[:240])], rtol=1e-6)
