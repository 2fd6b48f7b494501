"""A small stand-in with InceptionResNetV2's call signature (compiling the real network
takes minutes on a shared 2-core CPU): (x, train, taps, final) -> final | (final, taps)."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from deepfl_jax.train.parallel import DATA_AXIS


class TinyBackbone(nn.Module):
  dtype: object = jnp.float32
  bn_axis_name: str | None = DATA_AXIS

  @nn.compact
  def __call__(self, x, train=False, taps=False, final=True):
    out = []
    for ch in (6, 10):
      x = nn.Conv(ch, (3, 3), strides=2, use_bias=False, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       axis_name=self.bn_axis_name, dtype=self.dtype)(x)
      x = nn.relu(x)
      out.append(x)
    last = nn.Conv(12, (1, 1), dtype=self.dtype)(x) if (final or not taps) else None
    return (last, tuple(out)) if taps else last
