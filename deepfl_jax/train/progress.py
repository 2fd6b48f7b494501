"""Progress bar and metric logs of the training stages.

`Progress` draws count, rate, images/s and ETA on stderr (Stage 1 training and
calibration, Stage 2 extraction, Stage 3 fits, generation); `MetricWriter` appends the
scalars of a run to `metrics.jsonl` and TensorBoard event files, trimmed on resume so
the logs read as one uninterrupted run.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import jax
from absl import logging

from deepfl_jax import atomic


def _fmt_time(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  s = int(round(seconds))
  return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
  """A progress bar on stderr: count, percent, rate, images/s, ETA, last metrics, e.g.
  `stage1 120/500 steps | 24.0% | 1.2 steps/s | 9.6 images/s | ETA 0:05:17 | loss ..`;
  `unit` names what is counted (steps, epochs, images, batches).

  Rates are measured from the first completed step on, so compilation does not skew
  them. On a terminal the line is redrawn in place (at most 4 times a second);
  otherwise one line is printed per `update(..., force=True)`.
  """

  def __init__(self, total: int, start: int = 0, *, desc: str = "train",
               examples_per_step: int = 0, stream=None, enabled: bool = True,
               unit: str = "steps"):
    self.total, self.start, self.desc, self.unit = total, start, desc, unit
    self.examples_per_step = examples_per_step
    self.stream = sys.stderr if stream is None else stream
    self.enabled = enabled
    self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
    self._t0 = self._step0 = None
    self._last_draw = 0.0
    self.line = ""

  def begin(self):
    """Shows the bar at its start, before a first step that may compile for a while;
    the rate clock still starts at the first completed step."""
    self.update(self.start, force=True)
    self._t0 = self._step0 = None

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
    parts = [f"{self.desc} {step}/{self.total} {self.unit}",
             f"{100.0 * step / max(self.total, 1):5.1f}%"]
    if math.isfinite(rate):
      parts.append(f"{rate:.3g} {self.unit}/s")
      if self.examples_per_step:
        parts.append(f"{rate * self.examples_per_step:.4g} images/s")
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
      atomic.write_text(self.path, "".join(keep))  # a kill here keeps the old log
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
