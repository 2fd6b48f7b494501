"""Quality-aware contrastive pretraining, QPT (Zhao, Yuan, Sun, Li, Wen, CVPR 2023).

Batch layout (per process, content-major): for each of C pristine crops ("contents"),
K distinct degradations (`degradations.sample`), and of each degraded image two views
(crops of `view_size` whose IoU lies in `iou_range`, each randomly flipped). Rows 2r and
2r + 1 are the two views of degraded image r: each other's POSITIVE. Every other row of
the GLOBAL batch is a negative: the same content under the other K - 1 degradations
(hard, content-matched negatives) and all views of other contents (in-batch).

Loss: InfoNCE on L2-normalised projections, s = cosine similarity, temperature t:
  l_i = -log( exp(s(z_i, z_p(i)) / t) / sum_{j != i} exp(s(z_i, z_j) / t) ),
averaged over all rows (each view is an anchor once: the symmetric NT-Xent of SimCLR).
Across devices the projections are gathered (`all_gather`) so each device's anchors see
the negatives of every device; the pmean of the per-device means is the single-device
loss on the global batch (each device holds whole pairs).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterator

import dm_pix as pix
import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.pretext import degradations
from deepfl_jax.pretext.crops import crops_by_step
from deepfl_jax.train.parallel import DATA_AXIS


def positives(n: int) -> np.ndarray:
  """Row of each row's positive in the pair layout (2r <-> 2r + 1)."""
  return np.arange(n) ^ 1


def info_nce(z: jnp.ndarray, temperature: float, *, axis_name: str | None = None
             ) -> jnp.ndarray:
  """Mean InfoNCE of this device's rows (see the module docstring).

  Args:
    z: (n, d) projections of this device's rows (n even, pair layout), unnormalised.
    temperature: t > 0.
    axis_name: the data-parallel axis inside `shard_map`: negatives are gathered from
      every device; None: `z` is the whole batch.
  Returns:
    () float32.
  """
  z = z.astype(jnp.float32)
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  n = z.shape[0]
  if axis_name is None:
    z_all, offset = z, 0
  else:
    z_all = jax.lax.all_gather(z, axis_name, tiled=True)
    offset = jax.lax.axis_index(axis_name) * n
  rows = offset + jnp.arange(n)
  logits = z @ z_all.T / temperature                      # (n, N)
  cols = jnp.arange(z_all.shape[0])
  logits = jnp.where(cols[None, :] == rows[:, None], -jnp.inf, logits)  # not itself
  pos = offset + jnp.asarray(positives(n))
  lse = jax.nn.logsumexp(logits, axis=-1)
  return jnp.mean(lse - jnp.take_along_axis(logits, pos[:, None], axis=1)[:, 0])


def make_loss_fn(model, *, temperature: float = 0.1, axis_name: str | None = DATA_AXIS):
  """Per-device loss for `parallel.make_train_step`: batch {"image": (n, h, w, 3)
  views in pair layout} -> InfoNCE of the projection head's outputs, negatives
  gathered over `axis_name`."""
  if temperature <= 0:
    raise ValueError(f"config.stage1.temperature={temperature}: must be > 0")

  def loss_fn(params, batch_stats, batch, rng):
    z, upd = model.apply({"params": params, "batch_stats": batch_stats},
                         batch["image"], train=True, rngs={"dropout": rng},
                         mutable=["batch_stats"])
    loss = info_nce(z, temperature, axis_name=axis_name)
    zn = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    pos_sim = jnp.mean(jnp.sum(zn * zn[jnp.asarray(positives(z.shape[0]))], -1))
    return loss, (upd.get("batch_stats", {}), {"info_nce": loss,
                                               "positive_cosine": pos_sim})

  return loss_fn


# --- views -------------------------------------------------------------------------
def iou_same_size(dy, dx, h: int, w: int):
  """IoU of two h x w boxes offset by (dy, dx)."""
  inter = np.maximum(0, h - np.abs(dy)) * np.maximum(0, w - np.abs(dx))
  return inter / (2.0 * h * w - inter)


def view_pair(rng: np.random.Generator, image_size, view_size, iou_range,
              tries: int = 32) -> tuple[tuple[int, int], tuple[int, int]]:
  """Top-left corners of two `view_size` crops inside `image_size` whose IoU is in
  [lo, hi]: the first uniform, the second uniform among the positions that qualify."""
  (hh, ww), (h, w) = image_size, view_size
  lo, hi = iou_range
  if h > hh or w > ww:
    raise ValueError(f"config.stage1.view_size {view_size} exceeds the content crop "
                     f"{image_size} (config.stage1.crop_size)")
  ys, xs = np.meshgrid(np.arange(hh - h + 1), np.arange(ww - w + 1), indexing="ij")
  for _ in range(tries):
    t, l = int(rng.integers(0, hh - h + 1)), int(rng.integers(0, ww - w + 1))
    iou = iou_same_size(ys - t, xs - l, h, w)
    ok = np.flatnonzero((iou >= lo) & (iou <= hi))
    if ok.size:
      k = int(rng.choice(ok))
      return (t, l), (int(ys.flat[k]), int(xs.flat[k]))
  raise ValueError(f"config.stage1.iou_range {tuple(iou_range)}: no two {view_size} crops "
                   f"of a {image_size} image overlap that much; enlarge crop_size or widen "
                   "the range")


@functools.partial(jax.jit, static_argnames=("view_size", "flip"))
def _views(degraded, boxes, keys, *, view_size, flip: bool):
  """(D, H, W, 3) degraded images, (2D, 2) top-left corners -> (2D, h, w, 3) views on
  the 8-bit grid (rows 2r, 2r + 1 from image r), each flipped at random (dm-pix)."""
  src = jnp.repeat(jnp.round(degraded * 255.0) / 255.0, 2, axis=0)
  crop = jax.vmap(lambda im, b: jax.lax.dynamic_slice(
      im, (b[0], b[1], 0), (*view_size, im.shape[-1])))
  views = crop(src, boxes)
  return jax.vmap(pix.random_flip_left_right)(keys, views) if flip else views


@dataclasses.dataclass(frozen=True)
class DataConfig:
  crop_size: tuple[int, int] = (384, 512)   # content crop of a pristine image
  view_size: tuple[int, int] = (160, 160)
  iou_range: tuple[float, float] = (0.1, 0.3)
  per_content: int = 2                      # degradations of each content
  flip: bool = True
  space: degradations.DegradationSpace = degradations.DegradationSpace()

  @property
  def images_per_content(self) -> int:
    return 2 * self.per_content


def data_config(c) -> DataConfig:
  """config.stage1 -> DataConfig."""
  lo, hi = (float(v) for v in c.iou_range)
  if not 0 <= lo <= hi <= 1:
    raise ValueError(f"config.stage1.iou_range {tuple(c.iou_range)}: need 0 <= lo <= hi <= 1")
  if int(c.degradations_per_content) < 1:
    raise ValueError("config.stage1.degradations_per_content must be >= 1")
  return DataConfig(
      crop_size=tuple(c.crop_size), view_size=tuple(c.view_size), iou_range=(lo, hi),
      per_content=int(c.degradations_per_content), flip=bool(c.flip),
      space=degradations.DegradationSpace(
          ops=tuple(c.ops) or degradations.DEFAULT_OPS, max_ops=int(c.max_ops),
          skip_prob=float(c.skip_prob), second_order_prob=float(c.second_order_prob)))


def make_views(crops: np.ndarray, key, cfg: DataConfig, *, first_content: int = 0
               ) -> dict:
  """Pristine crops (C, H, W, 3) uint8 -> the batch: "image" (C * 2K, h, w, 3) float32
  on the 8-bit grid, pair layout; "content", "degradation" (global degraded-image id),
  and the host "plans" (C lists of K plans) and "boxes" ((C * 2K, 2) top-left)."""
  k_plan, k_img, k_box, k_flip = jax.random.split(key, 4)
  c = len(crops)
  plans = degradations.sample(k_plan, c, cfg.per_content, cfg.space)
  rng = degradations.host_rng(k_box)
  img_keys = jax.random.split(k_img, c * cfg.per_content)
  degraded, boxes = [], []
  for i in range(c):
    x = jnp.asarray(crops[i], jnp.float32) / 255.0
    for k, plan in enumerate(plans[i]):
      degraded.append(degradations.apply(x, plan, img_keys[i * cfg.per_content + k]))
      boxes += view_pair(rng, x.shape[:2], cfg.view_size, cfg.iou_range)
  images = _views(jnp.stack(degraded), jnp.asarray(boxes, jnp.int32),
                  jax.random.split(k_flip, len(boxes)), view_size=tuple(cfg.view_size),
                  flip=cfg.flip)
  n_deg = c * cfg.per_content
  return {"image": images,
          "content": np.repeat(np.arange(first_content, first_content + c), 2 *
                               cfg.per_content).astype(np.int32),
          "degradation": np.repeat(np.arange(first_content * cfg.per_content,
                                             first_content * cfg.per_content + n_deg),
                                   2).astype(np.int32),
          "plans": plans, "boxes": np.asarray(boxes)}


def stream(source, cfg: DataConfig, *, indices=None, contents: int, seed: int,
           start_step: int = 0,
           process_index: int | None = None, process_count: int | None = None,
           transform=None) -> Iterator[dict]:
  """This process's contrastive batches from `start_step` on (step s: a pure function
  of (seed, s), so a resumed run sees the same batches); `indices`: the records to use
  (default all). Yields {"image"} only (the network's input); `make_views` has the
  bookkeeping fields. `transform`: Stage 1's crop transform (`crops.crops_by_step`)."""
  for step, images, pi, _ in crops_by_step(
      source, indices, per_process=contents, crop_size=cfg.crop_size, seed=seed,
      start_step=start_step, process_index=process_index, process_count=process_count,
      transform=transform):
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), step), pi)
    yield {"image": make_views(images, key, cfg, first_content=pi * contents)["image"]}
