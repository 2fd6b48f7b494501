"""A generic, resumable data-parallel training loop.

`train` restores the latest checkpoint of the work directory (or initialises), asks the
data for an iterator positioned at that step (so a resumed run sees the same batches
as an uninterrupted one), runs the step function, logs metrics as JSON lines
(`metrics.jsonl`) and TensorBoard summaries (`tensorboard/`, via tensorboardX when
installed), shows a progress bar with rate and ETA on stderr, and checkpoints every N
steps and at exit (also on Ctrl-C / SIGTERM, as at preemption: one process stops after
the current step; several stop together at the next log / evaluation / checkpoint
step, where they agree on the signal, so steady-state steps need no host round trip).
A NaN/inf loss, task loss or gradient stops the run (`NonFiniteError`, naming the step
and tasks) before any checkpoint of the bad state.
With a validation function, the state with the best validation score is kept in
`best/` beside the latest checkpoints (model selection for Stage 2).

`fit` wires it from an experiment config (`config.train`, `config.optim`).
"""
from __future__ import annotations

import math
import os
import signal
import threading
import time
from typing import Any, Callable

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from deepfl_jax.data.order import BatchesFn
from deepfl_jax.train import optim, parallel
from deepfl_jax.train.checkpoint import Checkpointer
from deepfl_jax.train.progress import MetricWriter, Progress
from deepfl_jax.train.state import TrainState


class Preempted(KeyboardInterrupt):
  """Raised by `train` once it has checkpointed the step reached, when the process got
  SIGTERM (preemption) or SIGINT (Ctrl-C). `exit_code` is the shell's convention for
  that signal (143, 130); `str(e)` is one line saying where the run stopped."""

  def __init__(self, message: str = "", *, signum: int = signal.SIGTERM,
               step: int | None = None):
    super().__init__(message or f"stopped by {signal.Signals(signum).name}")
    self.signum, self.step = int(signum), step

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class _StopSignals:
  """While entered (main thread only), SIGTERM and SIGINT only record the signal; the
  loop checks `signum` between steps, so a signal never lands inside a step whose
  donated state a checkpoint still needs. A second SIGINT (Ctrl-C twice) stops at once.

  Stop step. One process stops before the next step. With several processes the flag
  is agreed (a tiny all-gather) only at boundaries every process reaches at the same
  step: the start and every log / evaluation / checkpoint step, which read the device
  anyway; so a signal to any process stops all at the first such boundary after it (at
  most `log_every` steps later), and steady-state steps make no host round trip.
  """

  def __init__(self):
    self.signum: int | None = None
    self.saved = True  # whether the exit checkpoint was written
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signum == signal.SIGINT and signum == signal.SIGINT:
      raise Preempted("stopped at once by a second Ctrl-C", signum=signum)
    self.signum = self.signum or signum

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle)
                        for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)

  def requested(self, boundary: bool = True) -> bool:
    """Whether to stop before the next step. With several processes all must agree
    (else one would wait forever in the next step's collectives): the flag is gathered
    only when `boundary` (a step every process reaches together), else False."""
    if jax.process_count() == 1:
      return self.signum is not None
    if not boundary:
      return False
    seen = multihost_utils.process_allgather(np.int32(self.signum or 0))
    if self.signum is None and np.any(seen):
      self.signum = int(np.max(seen))
    return self.signum is not None

  def raise_if_stopped(self, step: int, workdir: str):
    if self.signum is not None:
      where = (f"checkpoint saved in {workdir}" if self.saved else
               "it could not be checkpointed (see the warning above)")
      raise Preempted(f"stopped by {signal.Signals(self.signum).name} at step {step}; "
                      f"{where}: rerun the same command to resume", signum=self.signum,
                      step=step)


# ------------------------------------------------------------------- finite checks

# Metrics whose names start with COUNT_PREFIX are counts: summed over a log window
# (e.g. "count/masked_targets/ssim"), not averaged. Per-task losses are named
# TASK_LOSS_PREFIX + task (e.g. "loss/ssim"), so a non-finite one names its task.
COUNT_PREFIX = "count/"
TASK_LOSS_PREFIX = "loss/"


class NonFiniteError(FloatingPointError):
  """A step produced a NaN or inf loss, task loss or gradient: the run stops before
  any checkpoint of that state. `step`: the first bad step (as in metrics.jsonl);
  `tasks`: the tasks whose losses were not finite; `values`: the offending metrics."""

  def __init__(self, step: int, tasks: list[str], values: dict[str, float],
               gradient: bool, last_checkpoint: int | None):
    self.step, self.tasks, self.values = step, tasks, values
    self.gradient, self.last_checkpoint = gradient, last_checkpoint
    what = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
    if gradient:
      what = (what + ", " if what else "") + "gradient has NaN/inf entries"
    kept = ("no checkpoint was written yet" if last_checkpoint is None else
            f"the last checkpoint (step {last_checkpoint}) is intact and a rerun "
            f"resumes from it")
    super().__init__(
        f"non-finite values at step {step}: {what}; tasks involved: "
        f"{', '.join(tasks) if tasks else 'none singled out (see the values)'}. "
        f"Training stopped and did not checkpoint this state; {kept}. Find the cause "
        "(learning rate, inputs, labels) before resuming: the same data follows.")


def check_finite(step: int, metrics: dict[str, float],
                 last_checkpoint: int | None = None) -> None:
  """Raises NonFiniteError if a metric of `step` is NaN/inf or the step's gradient
  was flagged non-finite (`parallel.NONFINITE_GRAD`)."""
  grad_bad = bool(metrics.get(parallel.NONFINITE_GRAD, 0.0))
  bad = {k: float(v) for k, v in metrics.items()
         if k != parallel.NONFINITE_GRAD and not math.isfinite(float(v))}
  if bad or grad_bad:
    tasks = sorted(k[len(TASK_LOSS_PREFIX):] for k in bad
                   if k.startswith(TASK_LOSS_PREFIX))
    raise NonFiniteError(step, tasks, bad, grad_bad, last_checkpoint)


def _check_pending(pending: list[tuple[int, dict]], last_checkpoint: int | None
                   ) -> list[dict[str, float]]:
  """Device metrics of the steps in `pending` -> host dicts, checked step by step (the
  first bad step is reported). The one host sync of a log / checkpoint boundary."""
  host = parallel.to_host([m for _, m in pending])
  out = []
  for (step, _), m in zip(pending, host):
    m = {k: float(v) for k, v in m.items()}
    check_finite(step, m, last_checkpoint)
    m.pop(parallel.NONFINITE_GRAD, None)
    out.append(m)
  return out


def summarise(window: list[dict[str, float]]) -> dict[str, float]:
  """Metrics of a log window: counts (COUNT_PREFIX) summed, the rest averaged."""
  out = {}
  for k in window[0]:
    vals = [m[k] for m in window if k in m]
    out[k] = float(np.sum(vals) if k.startswith(COUNT_PREFIX) else np.mean(vals))
  return out


def _warn_masked(step: int, avg: dict[str, float]) -> None:
  masked = {k[len(COUNT_PREFIX):]: int(v) for k, v in avg.items()
            if k.startswith(COUNT_PREFIX) and v}
  if masked:
    logging.warning("step %d: non-finite targets masked out of the loss in this log "
                    "window: %s", step, masked)


# --------------------------------------------------------------- model selection


class BestCheckpoint:
  """Keeps the checkpoint with the lowest validation `metric` in `directory` (one
  checkpoint, beside the latest ones). Its score is stored with it, so a resumed run
  compares against it."""

  def __init__(self, directory: str, *, metric: str, meta: dict | None = None):
    self.metric = metric
    self.ckpt = Checkpointer(directory, save_every=1, keep=1, meta=meta)
    last = self.ckpt.latest_step()
    self.step, self.value = None, math.inf
    if last is not None:
      sel = self.ckpt.saved_meta(last).get("selection", {})
      if sel.get("metric") == metric:
        self.step, self.value = last, float(sel["value"])

  def offer(self, step: int, state: TrainState, metrics: dict[str, float]) -> bool:
    """Saves `state` if `metrics[metric]` beats the best so far; True if it did."""
    if self.metric not in metrics:
      raise KeyError(f"the validation returned no {self.metric!r} (it returned "
                     f"{sorted(metrics)}); it is the model-selection metric")
    v = float(metrics[self.metric])
    if not math.isfinite(v):
      logging.warning("step %d: validation %s is %s; not a candidate for the best "
                      "checkpoint", step, self.metric, v)
      return False
    if v >= self.value:
      return False
    if self.ckpt.save(step, state, force=True,
                      extra_meta={"selection": {"metric": self.metric, "value": v}}):
      self.step, self.value = step, v
      logging.info("step %d: best %s so far (%.6g), checkpointed", step, self.metric, v)
      return True
    return False

  def close(self):
    self.ckpt.close()


# ------------------------------------------------------------------------------ loop


def _save_at_exit(ckpt: Checkpointer, step: int, state: TrainState,
                  pending: list[tuple[int, dict]], data=None) -> bool:
  """The exit checkpoint (also on Ctrl-C / SIGTERM), only of a state whose unchecked
  steps are all finite. True when `step` is checkpointed (now or before)."""
  try:
    if pending:
      _check_pending(pending, ckpt.latest_step())
    ckpt.save(step, state, force=True, data=data)
    return True
  except NonFiniteError as e:
    logging.error("not checkpointing step %d at exit: %s", step, e)
  except Exception as e:  # pylint: disable=broad-except
    # e.g. the state was donated to a step that failed: keep the last checkpoint.
    logging.warning("could not checkpoint step %d at exit: %s", step, e)
  return False


def train(*, workdir: str, init_state: Callable[[], TrainState],
          train_step: Callable[[TrainState, Any], tuple[TrainState, dict]],
          batches: BatchesFn, num_steps: int, mesh: jax.sharding.Mesh,
          batch_size: int, checkpoint_every: int = 1000, keep_checkpoints: int = 3,
          log_every: int = 50, progress: bool = True, meta: dict | None = None,
          desc: str = "train",
          evaluate: Callable[[TrainState], dict[str, float]] | None = None,
          eval_every: int = 1000, select_metric: str = "val/loss") -> TrainState:
  """Runs (or resumes) training in `workdir` up to `num_steps`; returns the state.

  Non-finite values stop the run: every step reports its loss, per-task losses and a
  gradient flag (device values, read at log / evaluation / checkpoint boundaries, so no
  extra host sync); the first NaN/inf raises `NonFiniteError` naming the step and
  tasks, before any checkpoint of the state after it.

  SIGTERM / SIGINT checkpoint the step reached and raise `Preempted`. One process
  stops before the next step; with several, the signal is agreed at the first step
  after it that is a log, evaluation or checkpoint step (the same step on every
  process), so all stop there and save the same checkpoint.

  Args:
    workdir: checkpoints in `workdir/checkpoints`, logs in `workdir/metrics.jsonl` and
      `workdir/tensorboard`. A directory that already holds a run is resumed from its
      latest checkpoint, never overwritten.
    init_state: `() -> TrainState` on the host or one device (replicated here); also
      traced abstractly as the template of a restore.
    train_step: `(replicated state, sharded batch) -> (state, metrics)`, e.g. from
      `parallel.make_train_step`.
    batches: `batches(start_step)` -> iterator of this process's batches. An
      iterator with `get_state` / `set_state` (`data.pipeline.Batches`) has its state
      saved with each checkpoint and restored on resume.
    batch_size: global batch (for images/s and the checkpoint's data-order record).
    meta: extra JSON values that must match on resume (e.g. the seed).
    evaluate: `state -> {name: float}` validation metrics (same on every process),
      run every `eval_every` steps and at the end, logged with the step; the state
      with the lowest `select_metric` is kept in `workdir/best`.
  """
  parallel.check_batch_size(batch_size, mesh)
  if evaluate is not None and eval_every <= 0:
    raise ValueError(f"config.train.eval_every must be >= 1, got {eval_every}")
  meta = dict(meta or {}, batch_size=int(batch_size))
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), save_every=checkpoint_every,
                      keep=keep_checkpoints, meta=meta)
  latest = ckpt.latest_step()
  if latest is not None:
    state = ckpt.restore(jax.eval_shape(init_state), latest, mesh=mesh)
    start = latest
    logging.info("resuming %s from step %d", workdir, start)
  else:
    state = parallel.replicate(init_state(), mesh)
    start = 0
  if start >= num_steps:
    logging.info("%s is already at step %d >= num_steps=%d", workdir, start, num_steps)
    ckpt.close()
    return state
  best = (BestCheckpoint(os.path.join(workdir, "best"), metric=select_metric, meta=meta)
          if evaluate is not None else None)

  writer = MetricWriter(workdir, resume_step=start)
  bar = Progress(num_steps, start, desc=desc, examples_per_step=batch_size,
                 enabled=progress and jax.process_index() == 0)
  bar.begin()
  data = iter(batches(start))
  if latest is not None and hasattr(data, "set_state"):
    ckpt.restore_data(data, latest)  # the input position saved with the state
  data_state = data if hasattr(data, "get_state") else None
  step, t_log, step_log = start, time.perf_counter(), start
  pending: list[tuple[int, dict]] = []  # device metrics not yet checked
  window: list[dict[str, float]] = []   # checked host metrics of this log window
  failed = False
  stop = _StopSignals()
  boundary = True  # the start: every process is here (see _StopSignals)
  with stop:
    try:
      # Signals stop between steps; several processes agree at a boundary (also the
      # last step, so all end alike).
      while not stop.requested(boundary) and step < num_steps:
        try:
          local = next(data)
        except StopIteration:
          raise RuntimeError(f"the data ran out at step {step} of {num_steps}") from None
        state, metrics = train_step(state, parallel.shard_batch(local, mesh))
        step += 1
        pending.append((step, metrics))
        log_due = step == start + 1 or step % log_every == 0 or step == num_steps
        eval_due = evaluate is not None and (step % eval_every == 0 or step == num_steps)
        save_due = ckpt.is_due(step)
        boundary = log_due or eval_due or save_due  # the same steps on every process
        if not boundary:
          bar.update(step)
          continue
        window += _check_pending(pending, ckpt.latest_step())  # waits for the device
        pending = []
        record = {}
        if log_due:
          now = time.perf_counter()
          record = summarise(window)
          if step > start + 1:  # the first step includes compilation
            record["images_per_s"] = (step - step_log) * batch_size / (now - t_log)
          _warn_masked(step, record)
          window, t_log, step_log = [], now, step
        if eval_due:
          t0 = time.perf_counter()
          val = {k: float(v) for k, v in evaluate(state).items()}
          t_log += time.perf_counter() - t0  # evaluation time is not training rate
          best.offer(step, state, val)
          record.update(val)
        if record:
          writer.write(step, record)
        bar.update(step, record, force=log_due)
        ckpt.save(step, state, data=data_state)
    except NonFiniteError:
      failed = True
      raise
    finally:
      bar.close()
      writer.close()
      if not failed:
        stop.saved = _save_at_exit(ckpt, step, state, pending, data_state)
      if hasattr(data, "close"):
        data.close()  # stops input threads / worker processes
      ckpt.close()
      if best is not None:
        best.close()
  stop.raise_if_stopped(step, workdir)
  return state


def fit(config: Any, workdir: str, *, init_variables: Callable[[jax.Array], dict],
        loss_fn: parallel.LossFn, batches: BatchesFn,
        mesh: jax.sharding.Mesh | None = None, desc: str = "train",
        evaluate: Callable[[TrainState], dict[str, float]] | None = None
        ) -> TrainState:
  """`train` from an experiment config: `config.train` (see
  `deepfl_jax.config_defaults.train_config`) and `config.optim`.

  `init_variables(rng) -> {"params": ..., "batch_stats": ...}` builds the model's
  variables (or loads pretrained ones); `loss_fn` is the per-device loss of
  `parallel.make_train_step`; `evaluate` the validation of `train` (every
  `config.train.eval_every` steps; best checkpoint in `workdir/best`).
  """
  t = config.train
  mesh = parallel.make_mesh() if mesh is None else mesh
  tx, schedule = optim.from_config(config)
  init_rng, state_rng = jax.random.split(jax.random.PRNGKey(int(t.seed)))

  def init_state() -> TrainState:
    v = init_variables(init_rng)
    return TrainState.create(params=v["params"], batch_stats=v.get("batch_stats", {}),
                             tx=tx, rng=state_rng)

  step = parallel.make_train_step(loss_fn, tx, mesh, learning_rate_fn=schedule)
  return train(workdir=workdir, init_state=init_state, train_step=step,
               batches=batches, num_steps=int(t.num_steps), mesh=mesh,
               batch_size=int(t.batch_size), checkpoint_every=int(t.checkpoint_every),
               keep_checkpoints=int(t.keep_checkpoints), log_every=int(t.log_every),
               progress=bool(t.get("progress", True)), meta={"seed": int(t.seed)},
               desc=desc, evaluate=evaluate,
               eval_every=int(t.get("eval_every", t.checkpoint_every)))
