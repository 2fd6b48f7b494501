"""The training loop: kill-and-resume equals an uninterrupted run, an existing run is
resumed (never overwritten), logs, optimiser and schedule config."""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from deepfl_jax import config_defaults
from deepfl_jax import train as tr
from deepfl_jax.data import pipeline
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
  cfg = ml_collections.ConfigDict({"train": config_defaults.train_config(),
                                   "optim": config_defaults.optim_config()})
  cfg.train.num_steps, cfg.optim.warmup_steps = 20, 5
  tx, sched = tr.from_config(cfg)
  assert isinstance(tx, optax.GradientTransformation) and abs(float(sched(5)) - 1e-4) < 1e-9
  with pytest.raises(ValueError, match="config.train.compute_dtype"):
    tr.compute_dtype("float16")


# ------------------------------------------------- non-finite values, model selection


def _with_nan_target(data, row=3, task=1):
  target = data["target"].copy()
  target[row, task] = np.nan
  return dict(data, target=target)


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory):
  """The uninterrupted run with Stage 1's masked multi-task loss (clean data)."""
  workdir = str(tmp_path_factory.mktemp("masked"))
  return _tiny.run_loop(workdir, STEPS, masked=True)


def test_nan_target_is_masked_counted_and_training_continues(tmp_path):
  data = _with_nan_target(_tiny.dataset())
  workdir = str(tmp_path)
  state = _tiny.run_loop(workdir, STEPS, masked=True,
                         batches=tr.array_batches(data, batch_size=8, seed=0))
  assert int(tr.to_host(state.step)) == STEPS
  assert all(np.isfinite(x).all() for x in _leaves(state.params))
  assert _ckpt_steps(workdir) == [4, 6, 7]
  recs = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  expected = sum(3 in tr.step_indices(s, num_examples=24, batch_size=8, seed=0)
                 for s in range(STEPS))
  assert expected > 0
  assert sum(r["count/masked_targets/task1"] for r in recs) == expected
  assert sum(r["count/masked_targets/task0"] for r in recs) == 0
  assert all(np.isfinite(r["loss"]) and np.isfinite(r["loss/task1"]) for r in recs)


def test_nan_loss_stops_before_checkpoint_and_resume_works(masked_run, tmp_path):
  workdir = str(tmp_path)
  base = tr.array_batches(_tiny.dataset(), batch_size=8, seed=0)

  def poisoned(start):  # the batch of step 5 (index 4) has a NaN image
    for i, b in enumerate(base(start)):
      if start + i == 4:
        b = dict(b, image=np.where(np.arange(8)[:, None, None, None] == 2, np.nan,
                                   b["image"]).astype(np.float32))
      yield b

  with pytest.raises(tr.NonFiniteError) as err:
    _tiny.run_loop(workdir, STEPS, masked=True, batches=poisoned)
  e = err.value
  assert e.step == 5 and e.tasks == ["task0", "task1"] and e.last_checkpoint == 4
  assert "step 5" in str(e) and "task0, task1" in str(e)
  # Steps 5 and 6 were NaN: no checkpoint of them (6 was due), not even at exit.
  assert _ckpt_steps(workdir) == [2, 4]
  recs = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in recs] == [1, 2, 4]
  # The last good checkpoint is intact: resuming from it (clean data) gives exactly
  # the uninterrupted run.
  calls = []
  resumed = _tiny.run_loop(workdir, STEPS, masked=True, step_wrapper=_counting(calls))
  assert len(calls) == STEPS - 4
  _assert_same(resumed.params, masked_run.params)
  _assert_same(resumed.opt_state, masked_run.opt_state)


def test_nan_gradient_with_finite_loss_stops(tmp_path):
  model = _tiny.TinyNet()
  base_loss = _tiny.loss_fn_for(model, masked=True)

  def loss_fn(params, batch_stats, batch, rng):
    loss, aux = base_loss(params, batch_stats, batch, rng)
    # Value 0, gradient 0 * inf = NaN (sqrt at 0) on poisoned batches only.
    extra = jax.lax.cond(batch["poison"].sum() > 0,
                         lambda b: jnp.sum(jnp.sqrt(b * 0.0)), lambda b: jnp.sum(b * 0.0),
                         params["dense"]["bias"])
    return loss + extra, aux

  base = tr.array_batches(dict(_tiny.dataset(), poison=np.zeros(24, np.float32)),
                          batch_size=8, seed=0)

  def batches(start):
    for i, b in enumerate(base(start)):
      yield dict(b, poison=b["poison"] + (start + i == 2))

  mesh = tr.make_mesh()
  step = tr.make_train_step(loss_fn, _tiny.optimizer(), mesh)
  with pytest.raises(tr.NonFiniteError, match="gradient") as err:
    tr.train(workdir=str(tmp_path), init_state=_tiny.initial_state, train_step=step,
             batches=batches, num_steps=STEPS, mesh=mesh, batch_size=8,
             checkpoint_every=2, log_every=2, progress=False)
  assert err.value.step == 3 and err.value.gradient and err.value.values == {}
  assert _ckpt_steps(str(tmp_path)) == [2]


def test_best_checkpoint_is_the_best_validation_step(tmp_path):
  val = _tiny.dataset(n=16, seed=1)
  model = _tiny.TinyNet(axis_name=None)

  @jax.jit
  def val_mse(params, batch_stats):
    pred = model.apply({"params": params, "batch_stats": batch_stats}, val["image"])
    return jnp.mean(jnp.square(pred - val["target"]))

  def evaluate(state):
    return {"val/loss": float(val_mse(*tr.to_host((state.params, state.batch_stats))))}

  base = tr.array_batches(_tiny.dataset(), batch_size=8, seed=0)

  def batches(start):  # from step 5 on the targets are wrong: validation worsens
    for i, b in enumerate(base(start)):
      yield b if start + i < 4 else dict(b, target=-5.0 * b["target"])

  workdir = str(tmp_path)
  _tiny.run_loop(workdir, STEPS, batches=batches, evaluate=evaluate, eval_every=1)
  recs = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  val_by_step = {r["step"]: r["val/loss"] for r in recs if "val/loss" in r}
  assert sorted(val_by_step) == list(range(1, STEPS + 1))
  best_step = min(val_by_step, key=val_by_step.get)
  assert best_step < STEPS and val_by_step[STEPS] > val_by_step[best_step]
  best = tr.Checkpointer(os.path.join(workdir, "best"))
  assert best.all_steps() == [best_step]
  assert best.saved_meta()["selection"] == {"metric": "val/loss",
                                            "value": val_by_step[best_step]}
  state = best.restore(jax.eval_shape(_tiny.initial_state))
  best.close()
  assert evaluate(state)["val/loss"] == pytest.approx(val_by_step[best_step], rel=1e-6)
  assert _ckpt_steps(workdir)[-1] == STEPS  # the latest is kept beside it


def test_grain_iterator_state_is_checkpointed_and_restored(uninterrupted, tmp_path):
  _, full, _ = uninterrupted
  data = _tiny.dataset()
  examples = [{"image": data["image"][i], "target": data["target"][i]}
              for i in range(len(data["image"]))]
  restored = []

  def batches(start):
    it = pipeline.batches(examples, batch_size=8, seed=0, start_step=start,
                          fields=("image", "target"))
    set_state = it.set_state

    def recording(state):
      restored.append(state)
      set_state(state)
    it.set_state = recording
    return it

  workdir = str(tmp_path)
  _tiny.run_loop(workdir, 3, batches=batches)
  saved = os.path.join(workdir, "checkpoints", "3", "data", "process_0-of-1.json")
  assert json.loads(open(saved).read())["step"] == 3
  resumed = _tiny.run_loop(workdir, STEPS, batches=batches)
  assert len(restored) == 1 and json.loads(restored[0])["step"] == 3
  # Grain's batches over the same records in the same order: the same training.
  _assert_same(resumed.params, full.params)
