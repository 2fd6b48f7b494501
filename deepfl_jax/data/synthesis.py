"""Online Stage-1 data: pristine crops -> on-device distortion -> on-device FR labels.

Spec pipeline.md, Stage 1 ("ONLINE synthesis"): instead of a stored KADIS-700k, each
step takes random crops of pristine images (host, `pipeline.batches`), distorts them on
the device with the engine (`distortions.distort`), labels every (crop, distorted crop)
pair with the 11 FR proxies in one jit-compiled call (`metrics.fused.fr_scores_core`)
and equalises the scores per metric (`histeq`, oriented higher = better).

Type and level per image:
  * "uniform": uniform random type and level (`distortions.sample_type_level`). To keep
    one compiled distortion program per type, consecutive runs of `group_size` images
    of a step share a type (each run's type is uniform, each image's level is uniform);
    every image's marginal (type, level) is uniform. `group_size=1` gives fully
    independent draws (more, smaller distortion calls).
  * "kadis": the KADIS-700k assignment: every pristine record carries its type (field
    `dist_type`, as the `kadis700k` builder stores it, 8 for the 7/8 rows; or
    `dist_type_1`/`dist_type_2`, mapped by `distortions.kadis_type`), and each crop is
    distorted at all 5 levels, as KADIS-700k was generated (5 images per crop).

Determinism: step s of a run with seed `seed` is a pure function of (seed, s): crops
come from `pipeline.batches` (which seeds its transform by (seed, step, global row)),
types/levels and per-image PRNG keys are drawn for the GLOBAL batch from
`fold_in(PRNGKey(seed), s)` and sliced per process, so the images do not depend on the
number of processes and a run resumed at `start_step` sees the same data.

Distorted images are rounded to the 8-bit grid before labelling (`quantize=True`), as
KADIS-700k's generator wrote 8-bit BMPs; the network sees exactly the labelled pixels.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.data import histeq, pipeline
from deepfl_jax.distortions import distort, kadis_type, sample_type_level
from deepfl_jax.metrics import fused
from deepfl_jax.metrics.sff import load_w

Assignment = Literal["uniform", "kadis"]
NUM_LEVELS = 5
_PLAN_SALT = 0x5E7


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
  """Static settings of the stream.

  crop_size: (H, W) of the random crops (at least 176 px: MS-SSIM / IW-SSIM).
  batch_size: pristine crops per step and process (images per step: the same for
    "uniform", 5x for "kadis").
  assignment: "uniform" or "kadis" (see the module docstring).
  types / levels: allowed type ids and levels for "uniform" (default all).
  group_size: images sharing one type in a "uniform" step (divides batch_size;
    unused by "kadis", whose 5 levels of a crop share its type).
  quantize: round distorted images to 8 bits before labelling (as KADIS's BMPs).
  color_mode: grey conversion of SSIM / MS-SSIM / IW-SSIM / GMSD / ADD-GSIM (`fr_scores`;
    default MATLAB's rgb2gray of uint8 images, rounded).
  """
  crop_size: tuple[int, int] = (384, 512)
  batch_size: int = 32
  assignment: Assignment = "uniform"
  types: tuple[int, ...] | None = None
  levels: tuple[int, ...] | None = None
  group_size: int = 4
  quantize: bool = True
  color_mode: str = "rgb2gray_uint8"

  def __post_init__(self):
    if min(self.crop_size) < fused.MIN_SIZE:
      raise ValueError(f"crop_size {self.crop_size}: the FR metrics need at least "
                       f"{fused.MIN_SIZE} px on each side")
    if self.assignment not in ("uniform", "kadis"):
      raise ValueError(f"assignment must be 'uniform' or 'kadis', got "
                       f"{self.assignment!r}")
    if self.group_size < 1 or (self.assignment == "uniform"
                               and self.batch_size % self.group_size):
      raise ValueError(f"group_size {self.group_size} must divide batch_size "
                       f"{self.batch_size}")

  @property
  def images_per_crop(self) -> int:
    return NUM_LEVELS if self.assignment == "kadis" else 1


# --- host side: crops ---------------------------------------------------------------
def random_crop(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator
                ) -> np.ndarray:
  """A uniformly placed (H, W) crop of an (h, w, C) image (h >= H, w >= W)."""
  h, w = image.shape[:2]
  ch, cw = size
  if h < ch or w < cw:
    raise ValueError(f"pristine image of {h}x{w} is smaller than the crop {ch}x{cw}")
  top = int(rng.integers(0, h - ch + 1))
  left = int(rng.integers(0, w - cw + 1))
  return image[top:top + ch, left:left + cw]


def crop_transform(size: tuple[int, int]) -> pipeline.Transform:
  """`pipeline.batches` transform: replaces `image` by a random crop (uint8 RGB)."""
  def transform(ex, rng):
    img = np.asarray(ex["image"])
    if img.ndim == 2:
      img = np.repeat(img[..., None], 3, axis=-1)
    out = {k: v for k, v in ex.items() if k != "image"}
    out["image"] = random_crop(img[..., :3], size, rng)
    return out
  return transform


def record_types(batch: dict) -> np.ndarray:
  """The KADIS type of each pristine record of a host batch."""
  if "dist_type" in batch:
    return np.asarray(batch["dist_type"], np.int32)
  if "dist_type_1" in batch:
    t2 = batch.get("dist_type_2", np.zeros_like(batch["dist_type_1"]))
    pairs = zip(batch["dist_type_1"], t2)
    return np.asarray([kadis_type(a, b or None) for a, b in pairs], np.int32)
  raise ValueError("assignment='kadis' needs records with `dist_type` (or dist_type_1/"
                   "dist_type_2), as the kadis700k builder stores them")


# --- the plan: types, levels and keys of a step --------------------------------------
def uniform_plan(key, num_images: int, *, group_size: int = 1,
                 types: Sequence[int] | None = None, levels: Sequence[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(types, levels) (num_images,) int32 on the host: one uniform type per run of
  `group_size` images, one uniform level per image."""
  if num_images % group_size:
    raise ValueError(f"group_size {group_size} must divide {num_images}")
  kt, kl = jax.random.split(key)
  gt, _ = sample_type_level(kt, num_images // group_size, types, levels)
  _, lv = sample_type_level(kl, num_images, types, levels)
  return (np.repeat(np.asarray(gt, np.int32), group_size), np.asarray(lv, np.int32))


def step_key(seed: int, step: int):
  return jax.random.fold_in(jax.random.PRNGKey(seed), step)


# --- device side --------------------------------------------------------------------
def distort_runs(images, types: np.ndarray, levels: np.ndarray, keys, *,
                 chunk: int = 1) -> jnp.ndarray:
  """`distort` on (N, H, W, 3) images with host (N,) types, one engine call per chunk
  of `chunk` consecutive images (split further where a chunk mixes types), so each
  type compiles once per chunk length. Image i equals
  `distort(images[i], types[i], levels[i], keys[i])`."""
  types = np.asarray(types)
  parts = []
  for c in range(0, len(types), chunk):
    t = types[c:c + chunk]
    cuts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]]) + c
    for a, b in zip(cuts, np.r_[cuts[1:], min(c + chunk, len(types))]):
      parts.append(distort(images[a:b], types[a:b], levels[a:b], keys[a:b]))
  return parts[0] if len(parts) == 1 else jnp.concatenate(parts)


@jax.jit
def _to_unit(x):
  return x.astype(jnp.float32) / 255.0


@jax.jit
def _quantize(x):
  return jnp.round(x * 255.0) / 255.0


@jax.jit
def _equalize(eq, scores):
  return histeq.equalize(eq, scores)


def label(reference, distorted, *, equalizer: histeq.Equalizer | None = None,
          color_mode: str = "rgb2gray_uint8", sff_w=None) -> dict[str, jnp.ndarray]:
  """On-device labels of (N, H, W, 3) pairs in [0, 1] (or uint8): "scores" (N, 11)
  raw FR scores in `METRIC_NAMES` order and, with an equaliser, "target" (N, 11)
  equalised and oriented (higher = better). Calls the fused metric program that
  `metrics.fr_scores` uses (same compiled code, so the values are identical)."""
  x, y = reference, distorted
  x = x.astype(jnp.float32) if x.dtype == jnp.uint8 else x * 255.0
  y = y.astype(jnp.float32) if y.dtype == jnp.uint8 else y * 255.0
  w = jnp.asarray(load_w(sff_w), x.dtype)
  scores = fused.stack(fused.fr_scores_core(x, y, w, color_mode=color_mode))
  out = {"scores": scores}
  if equalizer is not None:
    out["target"] = _equalize(equalizer, scores)
  return out


def synthesize(crops, types: np.ndarray, levels: np.ndarray, keys, *, chunk: int = 1,
               equalizer: histeq.Equalizer | None = None, quantize: bool = True,
               color_mode: str = "rgb2gray_uint8", with_labels: bool = True,
               repeat: int = 1) -> dict:
  """One step on the device: crops (N / repeat, H, W, 3) uint8, each used for `repeat`
  consecutive images (repeated on the device: one upload per crop) -> {"image":
  distorted float32 in [0, 1], "reference": the crops (uint8), "dist_type", "level",
  and the labels of `label` ("scores", "target")}. `chunk`: see `distort_runs`."""
  ref = jnp.asarray(crops)
  if repeat > 1:
    ref = jnp.repeat(ref, repeat, axis=0)
  dist = distort_runs(_to_unit(ref), types, levels, keys, chunk=chunk)
  if quantize:
    dist = _quantize(dist)
  out = {"image": dist, "reference": ref, "dist_type": jnp.asarray(types),
         "level": jnp.asarray(levels)}
  if with_labels:
    out.update(label(ref, dist, equalizer=equalizer, color_mode=color_mode))
  return out


def _expand(values: np.ndarray, repeat: int) -> np.ndarray:
  return np.repeat(np.asarray(values), repeat, axis=0)


def stream(source, indices: Sequence[int] | None = None, *,
           config: SynthesisConfig = SynthesisConfig(), seed: int = 0,
           equalizer: histeq.Equalizer | None = None, start_step: int = 0,
           num_steps: int | None = None, process_index: int | None = None,
           process_count: int | None = None, with_labels: bool = True,
           prefetch: int = 2, num_workers: int = 0,
           transform: pipeline.Transform | None = None) -> Iterator[dict]:
  """Stage-1 batches synthesised online from pristine images.

  Args:
    source: pristine images (`pipeline.IqaSource` or a list of dicts with `image`;
      e.g. the kadis700k builder, or `mini_kadid.pristine_source()`).
    indices: the records to use (e.g. a training part of `splits`); default all.
    config: `SynthesisConfig`. seed: data seed (crops, types, levels, noise).
    equalizer: `histeq.Equalizer` for "target"; without it only raw "scores".
    start_step / num_steps: resume at a step; stop after num_steps (None: forever).
    process_index / process_count: this process's share (default from jax).
    with_labels: False skips the metrics (distortion only).
    transform: makes the uint8 (H, W, 3) crop of crop_size from a record (default
      `crop_transform`: a uniformly placed crop; `pristine.augment_transform` adds
      random scales and flips).

  Yields:
    dicts with device arrays "image" (N, H, W, 3) float32 [0, 1] (distorted; the
    network input), "reference" uint8, "dist_type", "level", "scores" (N, 11),
    "target" (N, 11) (with an equaliser; `train.stage1` reads "image" and "target"),
    and host arrays "mask" and "content" (when the records have it), N = batch_size x
    images_per_crop.
  """
  if process_index is None or process_count is None:
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  cfg = config
  stop = None if num_steps is None else start_step + num_steps
  indices = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
  if len(indices) == 0:
    raise ValueError("no pristine images to synthesise from")
  global_crops = cfg.batch_size * process_count
  if len(indices) < global_crops:
    # Fewer pristine images than crops per step (e.g. the 8 embedded photos): an epoch
    # lists each image several times; every occurrence gets its own random crop.
    indices = np.tile(indices, -(-global_crops // len(indices)))
  crops = pipeline.batches(source, indices, batch_size=cfg.batch_size, seed=seed,
                           start_step=start_step, process_index=process_index,
                           process_count=process_count, drop_remainder=True,
                           transform=transform or crop_transform(cfg.crop_size),
                           prefetch=prefetch,
                           num_workers=num_workers)
  per = cfg.images_per_crop
  n_local = cfg.batch_size * per
  n_global = n_local * process_count
  rows = slice(process_index * n_local, (process_index + 1) * n_local)
  with crops:
    step = start_step
    while stop is None or step < stop:
      host = next(crops)
      k_plan, k_img = jax.random.split(step_key(seed, step))
      keys = jax.random.split(k_img, n_global)[rows]
      if cfg.assignment == "uniform":
        types, levels = uniform_plan(jax.random.fold_in(k_plan, _PLAN_SALT), n_global,
                                     group_size=cfg.group_size, types=cfg.types,
                                     levels=cfg.levels)
        types, levels = types[rows], levels[rows]
      else:
        types = _expand(record_types(host), per)
        levels = np.tile(np.arange(1, NUM_LEVELS + 1, dtype=np.int32), cfg.batch_size)
      chunk = cfg.group_size if cfg.assignment == "uniform" else per
      out = synthesize(host["image"], types, levels, keys, chunk=chunk,
                       equalizer=equalizer, quantize=cfg.quantize,
                       color_mode=cfg.color_mode, with_labels=with_labels, repeat=per)
      out["mask"] = _expand(host["mask"], per)
      if "content" in host:
        out["content"] = _expand(host["content"], per)
      out["step"] = step
      yield out
      step += 1


def calibrate(source, indices=None, *, config: SynthesisConfig = SynthesisConfig(),
              num_steps: int = 20, seed: int = 12345,
              num_knots: int = histeq.DEFAULT_KNOTS,
              on_batch: Callable[[int], None] | None = None,
              transform: pipeline.Transform | None = None) -> histeq.Equalizer:
  """Equaliser fitted on `num_steps` synthesised batches (a seed apart from the
  training stream's); store it with the run (`histeq.save`). `on_batch(n)` is called
  after each batch (n done), e.g. a progress bar's update. `transform`: as `stream`'s."""
  scores = []
  for b in stream(source, indices, config=config, seed=seed, num_steps=num_steps,
                  process_index=0, process_count=1, transform=transform):
    scores.append(np.asarray(b["scores"]))
    if on_batch is not None:
      on_batch(len(scores))
  return histeq.fit(np.concatenate(scores), num_knots=num_knots)

