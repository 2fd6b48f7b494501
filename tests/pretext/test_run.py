"""The pretext tasks as Stage 1: 4 simulated devices = 1 device (negatives gathered
across devices), and `run_pretext` trains, logs and resumes through the Stage 1 loop.

A small stand-in backbone keeps this fast (`_tiny_backbone`)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from deepfl_jax import config_defaults
from deepfl_jax.pretext import run
from deepfl_jax.train import stage1, weights
from tests.pretext import _tiny_backbone

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
  out = tmp_path_factory.mktemp("dp") / "result.json"
  env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, str(HERE / "_dp_worker.py"), str(out)], env=env,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ranking", "ranking_mlsp", "contrastive"])
def test_four_devices_equal_one_device(four_devices, task):
  r = four_devices[task]
  np.testing.assert_allclose(r["losses_4"], r["losses_1"], rtol=1e-5, atol=1e-6)
  assert r["param_change"] > 1e-3           # the steps did train
  assert r["param_maxdiff"] < 1e-5 + 1e-3 * r["param_change"]


@pytest.mark.slow
def test_contrastive_without_gathered_negatives_differs(four_devices):
  # Negative control: each device with only its own negatives is a different loss.
  r = four_devices["contrastive_local"]
  assert abs(r["losses_4"][0] - r["losses_1"][0]) > 1e-2


def _config(task, tmp_steps):
  config = config_defaults.base_config("pretext_test")
  config.stage1.task = task
  config.stage1.photos = config.stage1.photos[:2]
  config.stage1.image_size = (40, 40)
  config.stage1.crop_size = (32, 32)
  config.stage1.types = (16,)
  config.stage1.ops = (16,)
  config.stage1.second_order_prob = 0.0
  config.stage1.view_size = (24, 24)
  config.stage1.iou_range = (0.2, 0.8)
  config.stage1.proj_hidden, config.stage1.proj_dim = 16, 8
  config.model.input_scale = "unit"
  config.model.init_from = "scratch"
  config.train.batch_size = 12 if task.startswith("ranking") else 8
  config.train.num_steps = tmp_steps
  config.train.log_every = 1
  config.train.checkpoint_every = 2
  config.train.progress = False
  config.optim.warmup_steps = 0
  return config


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ranking", "contrastive"])
def test_run_pretext_trains_logs_and_resumes(tmp_path, monkeypatch, task):
  def tiny_network(task, config, axis_name="data"):
    return run.attach_head(task, _tiny_backbone.TinyBackbone(), config.stage1,
                           config.model)
  monkeypatch.setattr(run, "make_network", tiny_network)
  state = stage1.run_stage1(_config(task, 2), str(tmp_path))
  assert int(state.step) == 2
  state = stage1.run_stage1(_config(task, 3), str(tmp_path))  # resumes at 2
  assert int(state.step) == 3
  assert set(state.params) == {"backbone", "head"}
  out = tmp_path / "stage1"
  steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]
  assert steps == [1, 2, 3]
  rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
  key = "rank_loss" if task == "ranking" else "info_nce"
  assert np.isfinite(rec["loss"]) and key in rec
  assert sorted(os.listdir(out / "checkpoints"))
  # Stage 2 reads the backbone alone: the task head (projection, ranking) is dropped.
  v, _ = weights.stage1_variables(str(tmp_path), "stage1/checkpoints")
  assert set(v["params"]) == set(state.params["backbone"])
  assert (v["params"]["Conv_0"]["kernel"].shape
          == state.params["backbone"]["Conv_0"]["kernel"].shape)
  # Validation on the held-out content, as the FR-proxy task's.
  val = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()
         if "val/loss" in l]
  assert val and all(np.isfinite(r["val/loss"]) for r in val)


def test_bad_batch_and_task_errors(tmp_path):
  config = _config("ranking", 1)
  config.train.batch_size = 8
  with pytest.raises(ValueError, match="whole groups of 6"):
    stage1.run_stage1(config, str(tmp_path))
  config.stage1.task = "jigsaw"
  with pytest.raises(ValueError, match="unknown task 'jigsaw'"):
    stage1.run_stage1(config, str(tmp_path))
