"""Optimisers and learning-rate schedules from config values (optax).

Config section `config.optim` (defaults: `deepfl_jax.config_defaults.optim_config`):
  name: "adam" | "adamw"; learning_rate: peak rate; b1, b2, eps: Adam's constants;
  weight_decay: decoupled decay (AdamW only); clip_norm: global-norm gradient clip (0 =
  off); schedule: "constant" | "cosine" | "step"; warmup_steps: linear warm-up from 0;
  end_factor: final rate of the cosine as a fraction of the peak; boundaries, decay:
  step schedule (rate *= decay at each step in boundaries, counted from the start).
DeepFL-IQA's paper does not state its Stage 1 optimiser settings beyond Adam, so these
are config values, not constants.
"""
from __future__ import annotations

from typing import Any, Sequence

import optax

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")


def make_schedule(*, schedule: str = "constant", learning_rate: float = 1e-4,
                  total_steps: int = 1, warmup_steps: int = 0, end_factor: float = 0.0,
                  boundaries: Sequence[int] = (), decay: float = 0.1) -> optax.Schedule:
  """Learning rate as a function of the step: linear warm-up (0 -> peak over
  `warmup_steps`), then constant, cosine (peak -> end_factor*peak at `total_steps`)
  or step decay (x `decay` at each of `boundaries`)."""
  if schedule not in SCHEDULES:
    raise ValueError(f"config.optim.schedule: unknown schedule {schedule!r}; use one of "
                     f"{SCHEDULES}")
  if learning_rate <= 0:
    raise ValueError(f"config.optim.learning_rate must be > 0, got {learning_rate}")
  if warmup_steps < 0 or (schedule == "cosine" and warmup_steps >= total_steps):
    raise ValueError(f"config.optim.warmup_steps={warmup_steps} must be >= 0 and, for the "
                     f"cosine schedule, < config.train.num_steps={total_steps}")
  if schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=learning_rate, warmup_steps=warmup_steps,
        decay_steps=total_steps, end_value=learning_rate * end_factor)
  if schedule == "constant":
    after = optax.constant_schedule(learning_rate)
  else:
    # optax's piecewise boundaries count from the start of `after`, i.e. after warm-up.
    after = optax.piecewise_constant_schedule(
        learning_rate, {int(b) - warmup_steps: decay for b in boundaries
                        if int(b) > warmup_steps})
  if warmup_steps == 0:
    return after
  warm = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.join_schedules([warm, after], [warmup_steps])


def make_optimizer(*, name: str = "adam", learning_rate: float | optax.Schedule = 1e-4,
                   b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7,
                   weight_decay: float = 0.0, clip_norm: float = 0.0
                   ) -> optax.GradientTransformation:
  """optax Adam (Keras' eps 1e-7 by default) or AdamW, with optional global-norm clip.

  Adam's `weight_decay` must be 0 (use "adamw" for decoupled decay: silently ignoring
  it would hide a config mistake).
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"config.optim.name: unknown optimizer {name!r}; use one of "
                     f"{OPTIMIZERS}")
  if name == "adam":
    if weight_decay:
      raise ValueError("config.optim.weight_decay is only used by AdamW; set "
                       "config.optim.name='adamw' or weight_decay=0")
    tx = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
  else:
    tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  if clip_norm:
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
  return tx


def from_config(config: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, schedule) from an experiment config with `optim` and `train` sections
  (`config.train.num_steps` is the cosine horizon)."""
  o = config.optim
  schedule = make_schedule(
      schedule=o.schedule, learning_rate=o.learning_rate,
      total_steps=int(config.train.num_steps), warmup_steps=int(o.warmup_steps),
      end_factor=o.get("end_factor", 0.0), boundaries=tuple(o.get("boundaries", ())),
      decay=o.get("decay", 0.1))
  tx = make_optimizer(name=o.name, learning_rate=schedule, b1=o.get("b1", 0.9),
                      b2=o.get("b2", 0.999), eps=o.get("eps", 1e-7),
                      weight_decay=o.get("weight_decay", 0.0),
                      clip_norm=o.get("clip_norm", 0.0))
  return tx, schedule
