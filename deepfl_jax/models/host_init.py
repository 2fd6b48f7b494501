"""Fast host-side (NumPy) initialisation of the models in this package.

`jax.jit(model.init)` of InceptionResNetV2 compiles one random-number program per
parameter: minutes of XLA:CPU compilation (measured 2-3.5 min on a loaded 2-core
machine). `host_init` reads the variable shapes with `jax.eval_shape` (no compute) and
draws every leaf with NumPy, following the initialisers the modules declare:
convolution kernels glorot-uniform (Keras' default, InceptionResNetV2), `Dense_*`
kernels He-normal (the MLSP heads), biases / batch-norm offsets / moving means zero,
batch-norm scales / moving variances one.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _draw(rng: np.random.Generator, path, leaf) -> jnp.ndarray:
  keys = [getattr(p, "key", str(p)) for p in path]
  name = keys[-1]
  shape = leaf.shape
  if name == "kernel":
    module = keys[-2] if len(keys) >= 2 else ""
    if module.startswith("Dense"):  # He normal (truncated as flax/Keras' he_normal)
      std = np.sqrt(2.0 / shape[0]) / 0.87962566103423978
      x = rng.standard_normal(shape)
      while np.any(np.abs(x) > 2):  # redraw outside two standard deviations
        bad = np.abs(x) > 2
        x[bad] = rng.standard_normal(int(bad.sum()))
      return jnp.asarray(x * std, leaf.dtype)
    receptive = int(np.prod(shape[:-2]))
    limit = np.sqrt(6.0 / ((shape[-2] + shape[-1]) * receptive))
    return jnp.asarray(rng.uniform(-limit, limit, shape), leaf.dtype)
  if name in ("scale", "var"):
    return jnp.ones(shape, leaf.dtype)
  return jnp.zeros(shape, leaf.dtype)


def host_init(module, *example_args, seed: int = 0, **kwargs) -> dict[str, Any]:
  """Variables of `module.init(key, *example_args, **kwargs)`, drawn with NumPy.

  For the modules of `deepfl_jax.models` (and modules composed of them). Shapes and
  tree structure are exactly `module.init`'s; values follow the same distributions,
  not the same random stream.
  """
  abstract = jax.eval_shape(
      lambda: module.init(jax.random.PRNGKey(0), *example_args, **kwargs))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(lambda p, l: _draw(rng, p, l), abstract)
