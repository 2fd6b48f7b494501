"""A tiny conv + batch-norm regressor and its data, shared by the training tests and
their subprocess workers (this file imports nothing from pytest)."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax import train as tr
from deepfl_jax.train import stage1

IMAGE = (8, 8, 3)
OUTPUTS = 2


class TinyNet(nn.Module):
  """(N, 8, 8, 3) -> (N, 2): conv (no bias: a bias before BN has a zero gradient
  that Adam would turn into noise-driven steps) -> BN (synchronised over `axis_name`) -> ReLU ->
  global mean -> dense. BN momentum 0 makes the running statistics the last batch's
  statistics, which the tests compare with the full-batch ones."""
  axis_name: str | None = tr.DATA_AXIS
  momentum: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False, features_only: bool = False):
    x = nn.Conv(4, (3, 3), use_bias=False, name="conv")(x)  # as IRv2: BN follows
    if features_only:
      return x
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=1e-3, axis_name=self.axis_name, name="bn")(x)
    x = nn.relu(x).mean(axis=(1, 2))
    return nn.Dense(OUTPUTS, name="dense")(x)


def init_variables(rng):
  return TinyNet(axis_name=None).init(rng, jnp.zeros((1, *IMAGE)))


def loss_fn_for(model: TinyNet, masked: bool = False):
  """Plain MSE, or (masked) Stage 1's multi-task loss, which leaves non-finite targets
  out of their task and reports per-task losses and masked-target counts."""
  def loss_fn(params, batch_stats, batch, rng):
    del rng
    pred, upd = model.apply({"params": params, "batch_stats": batch_stats},
                            batch["image"], train=True, mutable=["batch_stats"])
    if masked:
      loss, metrics = stage1.multitask_loss(pred, batch["target"], model.axis_name)
      return loss, (upd["batch_stats"], metrics)
    loss = jnp.mean(jnp.square(pred - batch["target"]))
    return loss, (upd["batch_stats"], {"mse": loss})
  return loss_fn


def dataset(n: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  image = rng.uniform(size=(n, *IMAGE)).astype(np.float32)
  # A learnable target (a function of the image) plus a constant offset.
  target = np.stack([image.mean(axis=(1, 2, 3)), image[..., 0].std(axis=(1, 2))], -1)
  return {"image": image, "target": (target * 3.0 + 0.5).astype(np.float32)}


def optimizer():
  return tr.make_optimizer(name="adam", learning_rate=3e-2)


def initial_state(seed: int = 0) -> tr.TrainState:
  v = init_variables(jax.random.PRNGKey(seed))
  return tr.TrainState.create(params=v["params"], batch_stats=v["batch_stats"],
                              tx=optimizer(), rng=jax.random.PRNGKey(seed + 1))


def run_loop(workdir: str, num_steps: int, *, batch_size: int = 8, mesh=None,
             checkpoint_every: int = 2, batches=None, step_wrapper=None, seed: int = 0,
             keep: int = 3, masked: bool = False, log_every: int = 2,
             **train_kwargs) -> tr.TrainState:
  """`tr.train` on the tiny problem: everything rebuilt from scratch (as a new process
  would). `train_kwargs` go to `tr.train` (e.g. evaluate, eval_every)."""
  mesh = tr.make_mesh() if mesh is None else mesh
  step = tr.make_train_step(loss_fn_for(TinyNet(), masked=masked), optimizer(), mesh)
  if step_wrapper is not None:
    step = step_wrapper(step)
  if batches is None:
    batches = tr.array_batches(dataset(), batch_size=batch_size, seed=seed)
  return tr.train(workdir=workdir, init_state=lambda: initial_state(seed),
                  train_step=step, batches=batches, num_steps=num_steps, mesh=mesh,
                  batch_size=batch_size, checkpoint_every=checkpoint_every,
                  keep_checkpoints=keep, log_every=log_every, progress=False,
                  meta={"seed": seed}, **train_kwargs)
