"""Stage 1 validation and model selection: a content-disjoint hold-out of the pristine
images, a fixed validation set synthesised once from it, and per-task validation MSE
and SROCC (each predicted proxy against its label), logged every
`config.train.eval_every` steps; the loop keeps the best state by "val/loss" (the mean
of the per-task MSEs) beside the latest checkpoints.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from deepfl_jax.metrics import correlation
from deepfl_jax.data import synthesis
from deepfl_jax.metrics.fused import METRIC_NAMES
from deepfl_jax.train import parallel
from deepfl_jax.train.parallel import DATA_AXIS


def task_names(num_tasks: int) -> tuple[str, ...]:
  """Names of the head's outputs: the 11 FR proxies (`METRIC_NAMES`) or task<i>."""
  if num_tasks == len(METRIC_NAMES):
    return tuple(METRIC_NAMES)
  return tuple(f"task{i}" for i in range(num_tasks))


def split_validation(index: dict, fraction: float, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
  """(training, validation) record indices of pristine images, content-disjoint: a
  `fraction` of the contents (`index["content"]`, else one content per record; at
  least one when fraction > 0) is held out, chosen by `seed` alone so the same images
  are held out whatever the training seed."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"config.stage1.val_fraction must be in [0, 1), got {fraction}")
  n = len(next(iter(index.values()))) if index else 0
  content = np.asarray(index["content"]) if "content" in index else np.arange(n)
  uniq = np.unique(content)
  k = 0 if fraction == 0 else max(1, int(round(fraction * len(uniq))))
  if k and k >= len(uniq):
    raise ValueError(f"config.stage1.val_fraction={fraction} holds out all {len(uniq)} "
                     "pristine contents; lower it (or 0 for no validation)")
  held = uniq[np.random.default_rng([seed, 0x7A1]).permutation(len(uniq))[:k]]
  is_val = np.isin(content, held)
  return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def validation_metrics(pred, target, names) -> dict[str, float]:
  """Host (n, T) predictions and targets -> "val/mse/<task>", "val/srocc/<task>"
  (non-finite targets left out), their means over tasks "val/loss" (the selection
  metric) and "val/srocc", and "val/masked_targets"."""
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  out, mses, sroccs = {}, [], []
  for t, name in enumerate(names):
    ok = np.isfinite(target[:, t])
    mse = float(np.mean((pred[ok, t] - target[ok, t]) ** 2)) if ok.any() else np.nan
    rho = np.nan
    if ok.sum() >= 3:
      with warnings.catch_warnings():  # a constant prediction: SROCC is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
          rho = correlation.srocc(pred[ok, t], target[ok, t])
        except ValueError:
          rho = np.nan
    out[f"val/mse/{name}"], out[f"val/srocc/{name}"] = mse, float(rho)
    mses.append(mse)
    sroccs.append(rho)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    out["val/loss"] = float(np.nanmean(mses))
    out["val/srocc"] = float(np.nanmean(sroccs))
  out["val/masked_targets"] = float(np.sum(~np.isfinite(target)))
  return out


def make_evaluate(model, mesh, val_batches: list[dict]):
  """`state -> validation metrics` over fixed host batches {"image": (n, H, W, 3)
  uint8 or float in [0, 1], "target": (n, T)} (this process's rows): predictions by
  the data-parallel forward pass in inference mode, gathered over processes."""
  def forward(variables, images):
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
      x = x / 255.0
    return model.apply(variables, x, train=False).astype(jnp.float32)

  predict = jax.jit(jax.shard_map(forward, mesh=mesh, in_specs=(P(), P(DATA_AXIS)),
                                  out_specs=P(DATA_AXIS)))

  def gather(x):
    if jax.process_count() == 1:
      return np.asarray(x)
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

  targets = np.concatenate([gather(np.asarray(b["target"])) for b in val_batches])
  names = task_names(targets.shape[1])

  def evaluate(state) -> dict[str, float]:
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    preds = [gather(predict(variables, parallel.shard_batch(b["image"], mesh)))
             for b in val_batches]
    return validation_metrics(np.concatenate(preds), targets, names)

  return evaluate


def validation_batches(source, indices, *, syn, num_batches: int, seed: int,
                        equalizer, transform=None) -> list[dict]:
  """Fixed validation batches (this process's rows) synthesised once from the held-out
  pristine images: the same images and labels at every evaluation, kept on the host
  as uint8 (the distorted images are on the 8-bit grid when `syn.quantize`)."""
  out = []
  for b in synthesis.stream(source, indices, config=syn, seed=seed, equalizer=equalizer,
                            num_steps=num_batches, transform=transform):
    img = np.asarray(b["image"])
    if syn.quantize:
      img = np.round(img * 255.0).astype(np.uint8)
    out.append({"image": img, "target": np.asarray(b["target"], np.float32)})
  return out
