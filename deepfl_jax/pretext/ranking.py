"""RankIQA's ranking pretext task (Liu, van de Weijer, Bagdanov, ICCV 2017), and
its variant on multi-level features ("Learning from Rankings with Multi-level Features
for No-Reference IQA": the ranking head reads MLSP features).

A batch holds groups: one pristine crop (level 0) and its KADID levels 1..5 of one
distortion type (type uniform per group). The "efficient Siamese" loss runs ONE forward
pass over the batch; every ordered pair (i, j) of the same group with i less distorted
than j contributes

    max(0, margin - (f(x_i) - f(x_j)))

where f is the network's scalar output and HIGHER f MEANS BETTER QUALITY (the less
distorted image must score at least `margin` above the more distorted one). The sum is
divided by the number of images in the batch (not the number of pairs), as in the
original Caffe layer. With 6 images per group there are 15 pairs per group.

"ranking" puts the scalar head on the pooled final features; "ranking_mlsp" ("Learning
from Rankings with Multi-level Features") on the MLSP vector or a subset of its blocks
(`network.PretextNet`).

Data-parallel: groups never straddle devices (the per-device batch is a multiple of the
group size), so each device's pairs are complete; a device's loss is its pair sum over
its images, and the `pmean` of equal-sized shards is the global sum over the global
batch, i.e. the single-device loss.
"""
from __future__ import annotations

from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.distortions import distort, sample_type_level
from deepfl_jax.distortions.registry import NUM_LEVELS
from deepfl_jax.pretext.crops import crops_by_step

DEFAULT_MARGIN = 10.0  # RankIQA's Caffe prototxt


def pair_mask(group: jnp.ndarray, level: jnp.ndarray) -> jnp.ndarray:
  """(N, N) bool: [i, j] is True when images i and j are in the same group and i is
  less distorted (lower level; pristine = 0) than j."""
  same = group[:, None] == group[None, :]
  return same & (level[:, None] < level[None, :])


def ranking_loss(scores: jnp.ndarray, group: jnp.ndarray, level: jnp.ndarray, *,
                 margin: float = DEFAULT_MARGIN) -> jnp.ndarray:
  """RankIQA's efficient Siamese hinge loss.

  Args:
    scores: (N,) or (N, 1) float, higher = better quality.
    group: (N,) int group (content x type) of each image.
    level: (N,) int distortion level (0 pristine, 1..5).
    margin: hinge margin (10 in RankIQA).

  Returns:
    () float32: sum over ordered pairs of max(0, margin - (s_i - s_j)), divided by N.
  """
  s = jnp.reshape(scores, (-1,)).astype(jnp.float32)
  mask = pair_mask(jnp.asarray(group), jnp.asarray(level))
  hinge = jnp.maximum(0.0, margin - (s[:, None] - s[None, :]))
  return jnp.sum(jnp.where(mask, hinge, 0.0)) / s.shape[0]


def pair_accuracy(scores, group, level) -> jnp.ndarray:
  """Fraction of the ordered pairs ranked correctly (s_i > s_j): a logged metric."""
  s = jnp.reshape(scores, (-1,)).astype(jnp.float32)
  mask = pair_mask(jnp.asarray(group), jnp.asarray(level))
  right = jnp.sum(jnp.where(mask, (s[:, None] > s[None, :]).astype(jnp.float32), 0.0))
  return right / jnp.maximum(jnp.sum(mask), 1)


def make_loss_fn(model, *, margin: float = DEFAULT_MARGIN):
  """Per-device loss for `parallel.make_train_step`: batch {"image": (n, H, W, 3) in
  [0, 1], "group": (n,) int, "level": (n,) int} -> `ranking_loss` of the model's
  scalar output (one forward pass for all images)."""

  def loss_fn(params, batch_stats, batch, rng):
    out, upd = model.apply({"params": params, "batch_stats": batch_stats},
                           batch["image"], train=True, rngs={"dropout": rng},
                           mutable=["batch_stats"])
    loss = ranking_loss(out, batch["group"], batch["level"], margin=margin)
    acc = pair_accuracy(out, batch["group"], batch["level"])
    return loss, (upd.get("batch_stats", {}), {"rank_loss": loss,
                                               "pair_accuracy": acc})

  return loss_fn


# --- data: groups of one crop at all levels ------------------------------------------
def group_size(include_pristine: bool = True) -> int:
  return NUM_LEVELS + int(include_pristine)


def check_groups(batch_size: int, num_devices: int, size: int) -> int:
  """Groups per step; a clear error unless every device holds whole groups."""
  if batch_size % num_devices or (batch_size // num_devices) % size:
    raise ValueError(
        f"config.train.batch_size={batch_size}: the ranking tasks need whole groups of "
        f"{size} images (pristine + {NUM_LEVELS} levels) on each of the {num_devices} "
        f"devices; use a multiple of {size * num_devices}")
  return batch_size // size


def make_groups(crops: np.ndarray, types: np.ndarray, keys, *,
                include_pristine: bool = True, first_group: int = 0) -> dict:
  """Crops (G, H, W, 3) uint8 + one type per crop -> the ranking batch: images
  (G * size, H, W, 3) float32 in [0, 1] on the 8-bit grid (as KADIS's images), each
  group [pristine?, level 1, ..., level 5]; "group" and "level" (0 = pristine)."""
  g = len(crops)
  ref = jnp.asarray(crops, jnp.float32) / 255.0
  rep = jnp.repeat(ref, NUM_LEVELS, axis=0)
  lv = np.tile(np.arange(1, NUM_LEVELS + 1, dtype=np.int32), g)
  dist = distort(rep, np.repeat(np.asarray(types, np.int32), NUM_LEVELS), lv,
                 jax.random.split(keys, g * NUM_LEVELS))
  dist = jnp.round(dist * 255.0) / 255.0
  dist = dist.reshape(g, NUM_LEVELS, *ref.shape[1:])
  level = np.tile(np.arange(1, NUM_LEVELS + 1, dtype=np.int32), (g, 1))
  if include_pristine:
    dist = jnp.concatenate([ref[:, None], dist], axis=1)
    level = np.concatenate([np.zeros((g, 1), np.int32), level], axis=1)
  size = dist.shape[1]
  return {"image": dist.reshape(g * size, *ref.shape[1:]),
          "group": np.repeat(np.arange(first_group, first_group + g, dtype=np.int32),
                             size),
          "level": level.reshape(-1)}


def stream(source, *, indices=None, groups: int, crop_size: tuple[int, int], seed: int,
           start_step: int = 0, types=None, include_pristine: bool = True,
           process_index: int | None = None, process_count: int | None = None,
           transform=None) -> Iterator[dict]:
  """This process's ranking batches from step `start_step` on: `groups` groups per
  process and step, each a random crop of a pristine image of `source` with a uniform
  type from `types` (default all 25) at every level; `indices`: the records to use
  (default all). Step s is a pure function of (seed, s), so a resumed run sees the
  same batches. `transform`: Stage 1's crop transform (`crops.crops_by_step`)."""
  for step, images, pi, pc in crops_by_step(
      source, indices, per_process=groups, crop_size=crop_size, seed=seed,
      start_step=start_step, process_index=process_index, process_count=process_count,
      transform=transform):
    k_type, k_img = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), step))
    all_types, _ = sample_type_level(k_type, groups * pc, types)
    rows = slice(pi * groups, (pi + 1) * groups)
    keys = jax.random.split(k_img, pc)[pi]
    yield make_groups(images, np.asarray(all_types)[rows], keys,
                      include_pristine=include_pristine, first_group=pi * groups)
