"""Heads over narrow MLSP features (N, 16928): DeepFL-IQA's regressor and its MTL head.

Lin, Hosu, Saupe, DeepFL-IQA (2020) and the KonCept/MLSP fc stack: Dense 2048 (ReLU,
He-normal) -> BatchNorm -> Dropout 0.25 -> Dense 1024 -> BN -> Dropout 0.25 -> Dense 256
-> BN -> Dropout 0.5 -> Dense (linear). Keras defaults: BN momentum 0.99, epsilon 1e-3
(with scale), Dense biases zero.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

NUM_PROXIES = 11


class MLSPHead(nn.Module):
  """Fully connected stack over (N, D) features -> (N, outputs).

  Call `head.apply(variables, feats, train=False)`; with `train=True` give a
  `rngs={"dropout": key}` and `mutable=["batch_stats"]`.
  """
  outputs: int = 1
  hidden: Sequence[int] = (2048, 1024, 256)
  dropout: Sequence[float] = (0.25, 0.25, 0.5)
  dtype: Any = jnp.float32
  bn_axis_name: str | None = None  # mapped axis for cross-replica batch statistics
  bn_momentum: float = 0.99  # decay of the batch-norm running averages (Keras' 0.99)
  # Output layer initialisation: "he_normal" (as the hidden layers), or "zeros" with a
  # constant bias `output_bias` (a head that starts at the targets' mean).
  output_init: str = "he_normal"
  output_bias: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    if len(self.hidden) != len(self.dropout):
      raise ValueError("hidden and dropout need the same length")
    x = x.reshape(x.shape[0], -1).astype(self.dtype)
    for units, rate in zip(self.hidden, self.dropout):
      x = nn.Dense(units, kernel_init=nn.initializers.he_normal(), dtype=self.dtype,
                   param_dtype=jnp.float32)(x)
      x = nn.relu(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=1e-3,
                       dtype=self.dtype, param_dtype=jnp.float32,
                       axis_name=self.bn_axis_name)(x)
      x = nn.Dropout(rate, deterministic=not train)(x)
    inits = {"he_normal": nn.initializers.he_normal(), "zeros": nn.initializers.zeros}
    if self.output_init not in inits:
      raise ValueError(f"output_init must be one of {sorted(inits)}, got "
                       f"{self.output_init!r}")
    x = nn.Dense(self.outputs, kernel_init=inits[self.output_init],
                 bias_init=nn.initializers.constant(self.output_bias),
                 dtype=self.dtype, param_dtype=jnp.float32)(x)
    return x.astype(jnp.float32)


class MOSRegressor(MLSPHead):
  """DeepFL-IQA's Stage 3 regressor: 16928 -> 2048 -> 1024 -> 256 -> 1 (MOS/DMOS)."""
  outputs: int = 1


class MultiTaskHead(MLSPHead):
  """Stage 1 multi-task head on MLSP: one linear output per FR proxy (11).

  Its output layer starts at zero weights and bias 0.5, the mean of the
  histogram-equalised targets (as big_vision initialises heads; the paper does not
  state this head's initialisation). With He-normal outputs behind dropout 0.5 the
  first hundreds of steps only shrink the output scale (initial MSE about 6, against
  0.08 for predicting the mean).
  """
  outputs: int = NUM_PROXIES
  output_init: str = "zeros"
  output_bias: float = 0.5
