"""The training loop: kill-and-resume equals an uninterrupted run, an existing run is
resumed (never overwritten), logs, data order, optimiser and schedule config."""
from __future__ import annotations

import io
import json
import os

import jax
import ml_collections
import numpy as np
import optax
import pytest

from deepfl_jax import train as tr
from tests.train import _tiny

STEPS = 7


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tr.to_host(tree))]


def _assert_same(a, b):
  for x, y in zip(_leaves(a), _leaves(b), strict=True):
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def _ckpt_steps(workdir):
  d = os.path.join(workdir, "checkpoints")
  return sorted(int(p) for p in os.listdir(d) if p.isdigit())


def _recording_batches(log):
  base = tr.array_batches(_tiny.dataset(), batch_size=8, seed=0)

  def batches(start):
    for i, b in enumerate(base(start)):
      log.append((start + i, b["image"][:, 0, 0, 0].copy()))
      yield b
  return batches


def _counting(counter):
  def wrap(step):
    def counted(state, batch):
      counter.append(1)
      return step(state, batch)
    return counted
  return wrap


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("full"))
  seen = []
  state = _tiny.run_loop(workdir, STEPS, batches=_recording_batches(seen))
  return workdir, state, seen


def test_uninterrupted_run_learns_and_logs(uninterrupted):
  workdir, state, _ = uninterrupted
  assert int(tr.to_host(state.step)) == STEPS
  assert _ckpt_steps(workdir) == [4, 6, 7]  # every 2 steps, keep 3, and at exit
  recs = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in recs] == [1, 2, 4, 6, 7]
  assert recs[-1]["loss"] < recs[0]["loss"]  # it learns
  assert all(r["images_per_s"] > 0 for r in recs[1:])
  events = os.listdir(os.path.join(workdir, "tensorboard"))
  assert any(e.startswith("events.out.tfevents") for e in events)


@pytest.mark.parametrize("k", [3, 4])
def test_kill_and_resume_equals_uninterrupted(uninterrupted, tmp_path, k):
  _, full, full_seen = uninterrupted
  workdir = str(tmp_path)
  seen, calls = [], []
  # A run stopped after step k (3: between checkpoints, saved at exit; 4: on one).
  _tiny.run_loop(workdir, k, batches=_recording_batches(seen))
  assert _ckpt_steps(workdir)[-1] == k
  # Everything in memory is discarded: a new run rebuilds it all from the workdir.
  resumed = _tiny.run_loop(workdir, STEPS, batches=_recording_batches(seen),
                           step_wrapper=_counting(calls))
  assert len(calls) == STEPS - k  # resumed at k, did not start over
  _assert_same(resumed.params, full.params)
  _assert_same(resumed.batch_stats, full.batch_stats)
  _assert_same(resumed.opt_state, full.opt_state)
  # Same data order: the same examples at every step.
  assert [s for s, _ in seen] == list(range(STEPS))
  for (s, a), (t, b) in zip(seen, full_seen):
    np.testing.assert_array_equal(a, b, err_msg=f"step {s}")
  # The logs read as one run (records after the last checkpoint are replaced).
  steps = [json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert steps == sorted(set(steps)) and steps[-1] == STEPS


def test_interrupt_checkpoints_at_exit_and_resumes(uninterrupted, tmp_path):
  _, full, _ = uninterrupted
  workdir = str(tmp_path)
  base = tr.array_batches(_tiny.dataset(), batch_size=8, seed=0)

  def preempted_at_5(start):
    for i, b in enumerate(base(start)):
      if start + i == 5:
        raise tr.Preempted("simulated SIGTERM")
      yield b

  with pytest.raises(KeyboardInterrupt):
    _tiny.run_loop(workdir, STEPS, batches=preempted_at_5, checkpoint_every=100)
  assert _ckpt_steps(workdir) == [5]  # only the save at exit
  resumed = _tiny.run_loop(workdir, STEPS, checkpoint_every=100)
  _assert_same(resumed.params, full.params)


def test_existing_run_is_resumed_never_overwritten(uninterrupted, tmp_path):
  _, full, _ = uninterrupted
  workdir = str(tmp_path)
  _tiny.run_loop(workdir, STEPS)
  ckdir = os.path.join(workdir, "checkpoints")
  before = {p: os.path.getmtime(os.path.join(ckdir, p)) for p in os.listdir(ckdir)}
  log_before = open(os.path.join(workdir, "metrics.jsonl")).read()
  calls = []
  again = _tiny.run_loop(workdir, STEPS, step_wrapper=_counting(calls))
  assert calls == []  # already complete: nothing retrained
  _assert_same(again.params, full.params)
  after = {p: os.path.getmtime(os.path.join(ckdir, p)) for p in os.listdir(ckdir)}
  assert after == before
  assert open(os.path.join(workdir, "metrics.jsonl")).read() == log_before
  # Other data-order settings would silently change the run: refused, not restarted.
  with pytest.raises(ValueError, match="batch_size: checkpoint 8 vs now 4"):
    _tiny.run_loop(workdir, STEPS + 2, batch_size=4)
  assert _ckpt_steps(workdir) == [4, 6, 7]


def test_step_indices_epochs_and_process_split():
  n, b = 10, 4
  steps = [tr.step_indices(s, num_examples=n, batch_size=b, seed=1) for s in range(5)]
  flat = np.concatenate(steps)
  # Epoch 0 covers steps 0..2 (first 10 positions): a permutation of all examples.
  assert sorted(flat[:10].tolist()) == list(range(n))
  assert sorted(flat[10:20].tolist()) == list(range(n))
  assert not np.array_equal(flat[:10], flat[10:20])  # reshuffled per epoch
  halves = [tr.step_indices(3, num_examples=n, batch_size=b, seed=1, process_index=i,
                            process_count=2) for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), steps[3])


def test_progress_bar_rate_and_eta():
  out = io.StringIO()
  bar = tr.Progress(100, 0, desc="stage1", examples_per_step=8, stream=out)
  bar.update(1)
  bar._t0 -= 2.0  # pretend 2 s passed since the first step
  bar.update(11, {"loss": 0.5}, force=True)
  line = out.getvalue().strip().splitlines()[-1]
  assert line.startswith("stage1 11/100")
  rate = float(line.split(" step/s")[0].split("| ")[-1])
  assert 4.0 < rate <= 5.0  # 10 steps in ~2 s
  assert "img/s" in line and "ETA 0:00:1" in line and "loss 0.5" in line


def test_schedules_and_optimizer_config():
  s = tr.make_schedule(schedule="cosine", learning_rate=1e-3, total_steps=100,
                       warmup_steps=10, end_factor=0.1)
  assert float(s(0)) == 0.0 and abs(float(s(10)) - 1e-3) < 1e-9
  assert abs(float(s(100)) - 1e-4) < 1e-9 and float(s(50)) < 1e-3
  st = tr.make_schedule(schedule="step", learning_rate=1.0, warmup_steps=2,
                        boundaries=(5, 8), decay=0.5)
  assert [float(st(i)) for i in (1, 2, 4, 5, 7, 8)] == [0.5, 1.0, 1.0, 0.5, 0.5, 0.25]
  with pytest.raises(ValueError, match="config.optim.schedule"):
    tr.make_schedule(schedule="linear")
  with pytest.raises(ValueError, match="config.optim.name"):
    tr.make_optimizer(name="sgd")
  with pytest.raises(ValueError, match="adamw"):
    tr.make_optimizer(name="adam", weight_decay=1e-4)
  cfg = ml_collections.ConfigDict({"train": tr.default_train_config(),
                                   "optim": tr.default_optim_config()})
  cfg.train.num_steps, cfg.optim.warmup_steps = 20, 5
  tx, sched = tr.from_config(cfg)
  assert isinstance(tx, optax.GradientTransformation) and abs(float(sched(5)) - 1e-4) < 1e-9
  with pytest.raises(ValueError, match="config.train.compute_dtype"):
    tr.compute_dtype("float16")
