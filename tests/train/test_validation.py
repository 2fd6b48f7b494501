"""Stage 1 validation: a content-disjoint hold-out chosen by its own seed, per-task MSE
and SROCC that leave NaN targets out, and the data-parallel evaluation of a model."""
from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import stats

from deepfl_jax import train as tr
from deepfl_jax.train import stage1, validation
from tests.train.test_stage1 import _data, _model


def test_hold_out_is_content_disjoint_and_fixed_by_its_seed():
  content = np.repeat(np.arange(100), 3)  # three records per content
  index = {"content": content, "name": np.arange(300)}
  tr_idx, va_idx = validation.split_validation(index, 0.02, seed=0)
  assert len(set(content[va_idx])) == 2 and len(va_idx) == 6
  assert not set(content[va_idx]) & set(content[tr_idx])
  assert sorted(np.concatenate([tr_idx, va_idx]).tolist()) == list(range(300))
  again = validation.split_validation(index, 0.02, seed=0)[1]
  np.testing.assert_array_equal(again, va_idx)
  assert not np.array_equal(validation.split_validation(index, 0.02, seed=1)[1], va_idx)
  # Tiny sets: at least one content held out; none when the fraction is 0.
  assert len(validation.split_validation({"content": np.arange(8)}, 0.02)[1]) == 1
  assert len(validation.split_validation({"content": np.arange(8)}, 0.0)[1]) == 0
  with pytest.raises(ValueError, match="config.stage1.val_fraction"):
    validation.split_validation({"content": np.arange(1)}, 0.5)


def test_metrics_per_task_leave_nan_targets_out():
  rng = np.random.default_rng(0)
  target = rng.uniform(size=(20, 3))
  pred = target + rng.normal(scale=0.1, size=target.shape)
  pred[:, 2] = -target[:, 2]  # a task predicted in reverse order
  target_nan = target.copy()
  target_nan[4, 1] = np.nan
  m = validation.validation_metrics(pred, target_nan, ("a", "b", "c"))
  ok = np.arange(20) != 4
  assert m["val/mse/b"] == pytest.approx(np.mean((pred[ok, 1] - target[ok, 1]) ** 2))
  assert m["val/srocc/a"] == pytest.approx(stats.spearmanr(pred[:, 0], target[:, 0])[0])
  assert m["val/srocc/b"] == pytest.approx(stats.spearmanr(pred[ok, 1],
                                                           target[ok, 1])[0])
  assert m["val/srocc/c"] == pytest.approx(-1.0)
  assert m["val/loss"] == pytest.approx(np.mean([m[f"val/mse/{t}"] for t in "abc"]))
  assert m["val/masked_targets"] == 1


@pytest.mark.slow
def test_evaluate_runs_the_model_in_inference_mode_over_the_mesh():
  model = _model(jax.numpy.float32)
  v = stage1.init_variables(model, jax.random.PRNGKey(0), (16, 16))
  mesh = tr.make_mesh(jax.devices()[:1])
  data = _data()
  images = np.round(data["image"] * 255).astype(np.uint8)
  batches = [{"image": images[:4], "target": data["target"][:4]},
             {"image": images[4:], "target": data["target"][4:]}]
  state = tr.TrainState.create(params=v["params"], batch_stats=v["batch_stats"],
                               tx=tr.make_optimizer(), rng=jax.random.PRNGKey(1))
  got = validation.make_evaluate(model, mesh, batches)(tr.replicate(state, mesh))
  pred = model.apply(v, images.astype(np.float32) / 255.0, train=False)
  want = validation.validation_metrics(np.asarray(pred), data["target"],
                                       validation.task_names(data["target"].shape[1]))
  assert set(got) == set(want) and "val/srocc/ssim" in got
  for k in want:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
