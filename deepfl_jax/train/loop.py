"""A generic, resumable data-parallel training loop.

`train` restores the latest checkpoint of the work directory (or initialises), asks the
data for an iterator positioned at that step (so a resumed run sees the same batches
as an uninterrupted one), runs the step function, logs metrics as JSON lines
(`metrics.jsonl`) and TensorBoard summaries (`tensorboard/`, via tensorboardX when
installed), shows a progress bar with rate and ETA on stderr, and checkpoints every N
steps and at exit (also on Ctrl-C / SIGTERM, as at preemption).

`fit` wires it from an experiment config (`config.train`, `config.optim`).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
from absl import logging

from deepfl_jax.train import optim, parallel
from deepfl_jax.train.checkpoint import Checkpointer
from deepfl_jax.train.state import TrainState

# batches(start_step) -> iterator of THIS process's batches for steps start_step, ...
BatchesFn = Callable[[int], Iterable[Any]]


# ------------------------------------------------------------------------ data order


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
  perm.flags.writeable = False
  return perm


def step_indices(step: int, *, num_examples: int, batch_size: int, seed: int,
                 process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """Example indices of `step`'s batch for one process: a deterministic function of
  the step, so an iterator can be positioned anywhere without replaying the data.

  Each epoch is a fresh permutation (`seed`, epoch); batches run across epoch ends.
  The global batch (batch_size) is cut into `process_count` equal contiguous parts.
  """
  if num_examples <= 0:
    raise ValueError("the training set is empty")
  if batch_size % process_count:
    raise ValueError(f"config.train.batch_size={batch_size} is not divisible by the "
                     f"{process_count} processes")
  first = step * batch_size
  pos = first + np.arange(batch_size)
  epochs = pos // num_examples
  out = np.empty(batch_size, np.int64)
  for e in np.unique(epochs):
    perm = _epoch_permutation(int(seed), int(e), int(num_examples))
    sel = epochs == e
    out[sel] = perm[pos[sel] % num_examples]
  local = batch_size // process_count
  return out[process_index * local:(process_index + 1) * local]


def array_batches(arrays: dict[str, np.ndarray], *, batch_size: int, seed: int
                  ) -> BatchesFn:
  """`batches(start_step)` over in-memory arrays (same leading length), for this
  process (`jax.process_index()` of `jax.process_count()`)."""
  n = len(next(iter(arrays.values())))

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      idx = step_indices(step, num_examples=n, batch_size=batch_size, seed=seed,
                         process_index=jax.process_index(),
                         process_count=jax.process_count())
      yield {k: v[idx] for k, v in arrays.items()}
      step += 1

  return batches


# ------------------------------------------------------------------ progress, metrics


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  s = int(round(seconds))
  return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
  """A progress bar on stderr: step, percent, steps/s, examples/s, ETA, last metrics.

  Rates are measured from the first completed step on, so compilation does not skew
  them. On a terminal the line is redrawn in place (at most 4 times a second);
  otherwise one line is printed per `update(..., force=True)`.
  """

  def __init__(self, total: int, start: int = 0, *, desc: str = "train",
               examples_per_step: int = 0, stream=None, enabled: bool = True):
    self.total, self.start, self.desc = total, start, desc
    self.examples_per_step = examples_per_step
    self.stream = sys.stderr if stream is None else stream
    self.enabled = enabled
    self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
    self._t0 = self._step0 = None
    self._last_draw = 0.0
    self.line = ""

  def rate(self, step: int) -> float:
    """Steps per second since the first completed step (nan before two)."""
    if self._t0 is None or step <= self._step0:
      return float("nan")
    return (step - self._step0) / max(time.perf_counter() - self._t0, 1e-9)

  def update(self, step: int, metrics: dict[str, float] | None = None,
             force: bool = False):
    if self._t0 is None:
      self._t0, self._step0 = time.perf_counter(), step
    rate = self.rate(step)
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    parts = [f"{self.desc} {step}/{self.total}",
             f"{100.0 * step / max(self.total, 1):5.1f}%"]
    if math.isfinite(rate):
      parts.append(f"{rate:.3g} step/s")
      if self.examples_per_step:
        parts.append(f"{rate * self.examples_per_step:.4g} img/s")
    parts.append(f"ETA {_fmt_time(eta)}")
    if metrics:
      parts += [f"{k} {v:.4g}" for k, v in sorted(metrics.items())
                if k in ("loss", "learning_rate")]
    self.line = " | ".join(parts)
    if not self.enabled:
      return
    now = time.perf_counter()
    if self.tty and (force or now - self._last_draw > 0.25 or step == self.total):
      self.stream.write("\r\x1b[K" + self.line)
      self.stream.flush()
      self._last_draw = now
    elif not self.tty and force:
      self.stream.write(self.line + "\n")
      self.stream.flush()

  def close(self):
    if self.enabled and self.tty:
      self.stream.write("\n")
      self.stream.flush()


class MetricWriter:
  """Scalars to `<logdir>/metrics.jsonl` (one JSON object per log step) and TensorBoard
  event files in `<logdir>/tensorboard` (tensorboardX; skipped with a warning when it
  is not installed). Only process 0 writes. On resume from `resume_step`, records of
  later steps (written after the last checkpoint) are dropped from both, so the logs
  read as one uninterrupted run.
  """

  def __init__(self, logdir: str, *, resume_step: int = 0, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self.path = os.path.join(logdir, "metrics.jsonl")
    self._tb = None
    if not self.enabled:
      return
    os.makedirs(logdir, exist_ok=True)
    if os.path.exists(self.path):
      with open(self.path) as f:
        keep = [l for l in f if l.strip() and json.loads(l)["step"] <= resume_step]
      with open(self.path, "w") as f:
        f.writelines(keep)
    try:
      import tensorboardX
    except ImportError:
      logging.warning("tensorboardX is not installed: no TensorBoard summaries "
                      "(pip install tensorboardX); metrics.jsonl is still written")
    else:
      # purge_step drops events from an interrupted run past the restored step.
      self._tb = tensorboardX.SummaryWriter(os.path.join(logdir, "tensorboard"),
                                            purge_step=resume_step + 1 if resume_step
                                            else None)

  def write(self, step: int, metrics: dict[str, float]):
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in
                                                 metrics.items()}}) + "\n")
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


class Preempted(KeyboardInterrupt):
  """Raised in the loop when the process receives SIGTERM (preemption)."""


@contextlib.contextmanager
def _sigterm_raises():
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    raise Preempted(f"signal {signum}")

  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------ loop


def train(*, workdir: str, init_state: Callable[[], TrainState],
          train_step: Callable[[TrainState, Any], tuple[TrainState, dict]],
          batches: BatchesFn, num_steps: int, mesh: jax.sharding.Mesh,
          batch_size: int, checkpoint_every: int = 1000, keep_checkpoints: int = 3,
          log_every: int = 50, progress: bool = True, meta: dict | None = None,
          desc: str = "train") -> TrainState:
  """Runs (or resumes) training in `workdir` up to `num_steps`; returns the state.

  Args:
    workdir: checkpoints in `workdir/checkpoints`, logs in `workdir/metrics.jsonl` and
      `workdir/tensorboard`. A directory that already holds a run is resumed from its
      latest checkpoint, never overwritten.
    init_state: `() -> TrainState` on the host or one device (replicated here); also
      traced abstractly as the template of a restore.
    train_step: `(replicated state, sharded batch) -> (state, metrics)`, e.g. from
      `parallel.make_train_step`.
    batches: `batches(start_step)` -> iterator of this process's batches.
    batch_size: global batch (for images/s and the checkpoint's data-order record).
    meta: extra JSON values that must match on resume (e.g. the seed).
  """
  parallel.check_batch_size(batch_size, mesh)
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

  writer = MetricWriter(workdir, resume_step=start)
  bar = Progress(num_steps, start, desc=desc, examples_per_step=batch_size,
                 enabled=progress and jax.process_index() == 0)
  data = iter(batches(start))
  step, pending, t_log, step_log = start, [], time.perf_counter(), start
  try:
    with _sigterm_raises():
      while step < num_steps:
        try:
          local = next(data)
        except StopIteration:
          raise RuntimeError(f"the data ran out at step {step} of {num_steps}") from None
        state, metrics = train_step(state, parallel.shard_batch(local, mesh))
        step += 1
        pending.append(metrics)
        if step == start + 1 or step % log_every == 0 or step == num_steps:
          host = parallel.to_host(pending)  # waits for the device
          now = time.perf_counter()
          avg = {k: float(np.mean([m[k] for m in host])) for k in host[0]}
          if step > start + 1:  # the first step includes compilation
            avg["images_per_s"] = (step - step_log) * batch_size / (now - t_log)
          if not all(math.isfinite(v) for v in avg.values()):
            logging.warning("non-finite metrics at step %d: %s", step, avg)
          writer.write(step, avg)
          pending, t_log, step_log = [], now, step
          bar.update(step, avg, force=True)
        else:
          bar.update(step)
        ckpt.save(step, state)
  finally:
    bar.close()
    writer.close()
    try:
      ckpt.save(step, state, force=True)  # at exit, also when interrupted
    except Exception as e:  # pylint: disable=broad-except
      # e.g. the state was donated to a step that failed: keep the last checkpoint.
      logging.warning("could not checkpoint step %d at exit: %s", step, e)
    ckpt.close()
  return state


def fit(config: Any, workdir: str, *, init_variables: Callable[[jax.Array], dict],
        loss_fn: parallel.LossFn, batches: BatchesFn,
        mesh: jax.sharding.Mesh | None = None, desc: str = "train") -> TrainState:
  """`train` from an experiment config: `config.train` (see
  `deepfl_jax.train.config.default_train_config`) and `config.optim`.

  `init_variables(rng) -> {"params": ..., "batch_stats": ...}` builds the model's
  variables (or loads pretrained ones); `loss_fn` is the per-device loss of
  `parallel.make_train_step`.
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
               desc=desc)
