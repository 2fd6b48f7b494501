"""Config values the training code turns into objects (the defaults of every section
live in `deepfl_jax.config_defaults`)."""
from __future__ import annotations

import jax.numpy as jnp


def compute_dtype(name: str):
  """`config.train.compute_dtype` ("float32" | "bfloat16") -> jnp dtype."""
  dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
  if name not in dtypes:
    raise ValueError(f"config.train.compute_dtype: unknown dtype {name!r}; use one of "
                     f"{sorted(dtypes)}")
  return dtypes[name]
