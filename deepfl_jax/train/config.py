"""Default `train` and `optim` config sections for experiment configs.

An experiment config (configs/<experiment>.py) starts from these and overrides what it
needs, e.g. `config.train = default_train_config(); config.train.num_steps = 200`.
"""
from __future__ import annotations

import ml_collections


def default_train_config() -> ml_collections.ConfigDict:
  """`config.train`: loop, data-parallel and checkpoint settings."""
  c = ml_collections.ConfigDict()
  c.batch_size = 32            # GLOBAL batch, split over all devices of all processes
  c.num_steps = 10_000
  c.seed = 0                   # init, data order and dropout
  c.compute_dtype = "float32"  # or "bfloat16" (parameters and optimiser stay float32)
  c.log_every = 50             # metrics -> metrics.jsonl, TensorBoard, progress line
  c.checkpoint_every = 1000    # orbax checkpoint every N steps (and always at exit)
  c.keep_checkpoints = 3
  c.eval_every = 1000          # validation (when the stage has one) every N steps
  c.progress = True            # progress bar with rate and ETA on stderr
  return c


def default_optim_config() -> ml_collections.ConfigDict:
  """`config.optim`: see `deepfl_jax.train.optim`."""
  c = ml_collections.ConfigDict()
  c.name = "adam"
  c.learning_rate = 1e-4
  c.b1 = 0.9
  c.b2 = 0.999
  c.eps = 1e-7
  c.weight_decay = 0.0
  c.clip_norm = 0.0
  c.schedule = "cosine"
  c.warmup_steps = 500
  c.end_factor = 0.0
  c.boundaries = ()
  c.decay = 0.1
  return c


def compute_dtype(name: str):
  """`config.train.compute_dtype` ("float32" | "bfloat16") -> jnp dtype."""
  import jax.numpy as jnp
  dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
  if name not in dtypes:
    raise ValueError(f"config.train.compute_dtype: unknown dtype {name!r}; use one of "
                     f"{sorted(dtypes)}")
  return dtypes[name]
