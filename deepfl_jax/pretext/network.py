"""Backbone + task head for the pretext tasks (ranking, contrastive).

The head reads either the pooled final features ("final": global average pool of
InceptionResNetV2's conv_7b output, 1536-d at full width; RankIQA's scalar head sits on
the last pooled features) or the narrow MLSP vector ("mlsp": the 43 pooled taps,
16,928-d, or a subset of its blocks; the multi-level ranking paper's head). Variables
keep Stage 1's layout {"params": {"backbone", "head"}, "batch_stats": {...}}: Stage 2
reads `params["backbone"]` only, so the head (ranking head, QPT's projection head) is
dropped after pretraining.
"""
from __future__ import annotations

from typing import Literal, Sequence

import flax.linen as nn
import jax.numpy as jnp

from deepfl_jax.models import mlsp

Features = Literal["final", "mlsp"]
NUM_BLOCKS = 43


def check_blocks(blocks: Sequence[int]) -> tuple[int, ...]:
  """config.stage1.mlsp_blocks -> sorted unique indices into the 43 MLSP blocks
  (() = all 43), with a clear error for an index outside 0..42."""
  out = tuple(sorted({int(b) for b in blocks}))
  bad = [b for b in out if not 0 <= b < NUM_BLOCKS]
  if bad:
    raise ValueError(f"config.stage1.mlsp_blocks: {bad} outside 0..{NUM_BLOCKS - 1} "
                     "(0 = mixed_5b, 1-10 block35, 11 mixed_6a, 12-31 block17, "
                     "32 mixed_7a, 33-42 block8)")
  return out


class PretextNet(nn.Module):
  """images (N, H, W, 3) in [0, 1] -> head outputs (N, D) float32.

  features: "final" or "mlsp" (see the module docstring); blocks: MLSP block indices
  read by the head (() = all 43; only with "mlsp").
  """
  backbone: nn.Module
  head: nn.Module
  features: Features = "final"
  blocks: tuple[int, ...] = ()
  input_scale: Literal["unit", "keras"] = "unit"

  def embed(self, images, train: bool = False):
    """The (N, F) float32 features the head reads."""
    x = mlsp.scale_input(images, self.input_scale)
    if self.features == "final":
      out = self.backbone(x, train=train)
      return out.astype(jnp.float32).mean(axis=(1, 2))
    if self.features != "mlsp":
      raise ValueError(f"config.stage1.features: {self.features!r}; use 'final' or "
                       "'mlsp'")
    _, taps = self.backbone(x, train=train, taps=True, final=False)
    if self.blocks:
      taps = [taps[i] for i in self.blocks]
    return mlsp.mlsp_narrow(taps)

  @nn.compact
  def __call__(self, images, train: bool = False):
    return self.head(self.embed(images, train=train), train=train)


class ProjectionHead(nn.Module):
  """QPT / SimCLR projection MLP: Dense(hidden) -> ReLU -> Dense(dim), (N, F) ->
  (N, dim) float32 (not normalised; the loss normalises). Dropped after pretraining."""
  hidden: int = 2048
  dim: int = 128
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # no dropout or batch-norm: the same function in training and test
    x = nn.Dense(self.hidden, dtype=self.dtype, param_dtype=jnp.float32)(
        x.astype(self.dtype))
    x = nn.relu(x)
    return nn.Dense(self.dim, dtype=self.dtype, param_dtype=jnp.float32)(x).astype(
        jnp.float32)
