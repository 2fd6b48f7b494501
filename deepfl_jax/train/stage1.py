"""Stage 1 of DeepFL-IQA: InceptionResNetV2 + multi-task head on narrow MLSP, MSE on the
11 histogram-equalised FR proxies (Lin, Hosu, Saupe 2020; spec pipeline.md, Stage 1).

The released model's name ("quality-mlsp-mtl-mse-loss") puts the multi-task head on
the MLSP vector: backbone taps -> global average pools (16,928) -> MLSP head -> 11.
Variables: {"params": {"backbone", "head"}, "batch_stats": {"backbone", "head"}}, so
ImageNet weights load into `params["backbone"]` / `batch_stats["backbone"]`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from deepfl_jax.models import InceptionResNetV2, MultiTaskHead
from deepfl_jax.models import mlsp
from deepfl_jax.train.parallel import DATA_AXIS


class MultiTaskIQA(nn.Module):
  """images (N, H, W, 3) in [0, 1] -> (N, 11) proxy predictions (float32)."""
  backbone: nn.Module
  head: nn.Module
  input_scale: Literal["unit", "keras"] = "unit"

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = mlsp.scale_input(images, self.input_scale)
    _, taps = self.backbone(x, train=train, taps=True, final=False)
    return self.head(mlsp.mlsp_narrow(taps), train=train)


def make_model(*, width: float = 1.0, blocks=(10, 20, 10), dtype: Any = jnp.float32,
               input_scale: str = "unit", axis_name: str | None = DATA_AXIS
               ) -> MultiTaskIQA:
  """The Stage 1 network; its batch-norm layers synchronise over `axis_name` (the
  data-parallel axis; None outside `shard_map`). The head's batch-norm is synchronised
  only if `MultiTaskHead` offers a `bn_axis_name` field; otherwise each device
  normalises the head with its own shard's statistics (the running averages are still
  averaged across devices by the step)."""
  backbone = InceptionResNetV2(width=width, blocks=tuple(blocks), dtype=dtype,
                               bn_axis_name=axis_name)
  head_kw = {"dtype": dtype}
  if "bn_axis_name" in {f.name for f in dataclasses.fields(MultiTaskHead)}:
    head_kw["bn_axis_name"] = axis_name
  return MultiTaskIQA(backbone=backbone, head=MultiTaskHead(**head_kw),
                      input_scale=input_scale)


def init_variables(model: MultiTaskIQA, rng: jax.Array, image_shape=(299, 299)):
  """Randomly initialised variables. Inference mode at init uses no batch statistics,
  so the batch-norm axis need not be bound (this runs outside `shard_map`)."""
  x = jnp.zeros((1, *image_shape, 3), jnp.float32)
  return jax.jit(lambda r: model.init(r, x, train=False))(rng)


def make_loss_fn(model: MultiTaskIQA):
  """Per-device loss for `parallel.make_train_step`: batch {"image": (n, H, W, 3) in
  [0, 1], "target": (n, 11) in [0, 1]} -> mean over examples and tasks of the squared
  error (computed in float32 whatever the compute dtype)."""

  def loss_fn(params, batch_stats, batch, rng):
    pred, upd = model.apply({"params": params, "batch_stats": batch_stats},
                            batch["image"], train=True, rngs={"dropout": rng},
                            mutable=["batch_stats"])
    err = pred.astype(jnp.float32) - batch["target"].astype(jnp.float32)
    per_task = jnp.mean(jnp.square(err), axis=0)
    loss = jnp.mean(per_task)
    return loss, (upd["batch_stats"], {"mse": loss})

  return loss_fn
