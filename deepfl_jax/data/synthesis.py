"""Online Stage-1 data: pristine crops -> on-device distortion -> on-device FR labels.

Stage 1 of DeepFL-IQA with online synthesis: instead of a stored KADIS-700k, each
step takes random crops of pristine images (host, `pipeline.batches`), and ONE
compiled program sharded over the devices (`make_program`: `shard_map` over the data
axis) distorts them with the engine (`distortions.distort_runs`), rounds them to 8
bits, labels every (crop, distorted crop) pair with the 11 FR proxies
(`metrics.fused.fr_scores_core`) and equalises the scores per metric (`histeq`,
oriented higher = better). Each device does its own share; only the uint8 crops and
the step number go from the host to the devices, nothing comes back (no input
checks that read values; type 22's Otsu search runs on the device).

Type and level per image:
  * "uniform": uniform random type and level (`distortions.sample_type_level`):
    consecutive runs of `group_size` images share a type (each run's type is
    uniform, each image's level is uniform; every image's marginal (type, level) is
    uniform). `group_size=1` gives fully independent draws.
  * "kadis": the KADIS-700k assignment: every pristine record carries its type (field
    `dist_type`, as the `kadis700k` builder stores it, 8 for the 7/8 rows; or
    `dist_type_1`/`dist_type_2`, mapped by `distortions.kadis_type`), and each crop is
    distorted at all 5 levels, as KADIS-700k was generated (5 images per crop).
A run of images sharing a type (`group_size`, or a crop's 5 levels) is one scalar
`lax.switch` inside a `lax.map`, so a mixed batch costs what its own types cost
(`lax.switch` under `vmap` would run all 25 branches for every image).

Determinism: step s of a run with seed `seed` is a pure function of (seed, s): crops
come from `pipeline.batches` (which seeds its transform by (seed, step, global row)),
types/levels and per-image PRNG keys are drawn inside the program for the GLOBAL
batch from `fold_in(PRNGKey(seed), s)` and each device takes its rows, so the images
do not depend on the number of devices or processes, and a run resumed at
`start_step` sees the same data.

Distorted images are rounded to the 8-bit grid before labelling (`quantize=True`), as
KADIS-700k's generator wrote 8-bit BMPs; the network sees exactly the labelled pixels.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from deepfl_jax.data import histeq, pipeline
from deepfl_jax.distortions import distort_runs, kadis_type, sample_type_level
from deepfl_jax.metrics import fused
from deepfl_jax.metrics.sff import load_w
from deepfl_jax.train import parallel

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
  types / levels: allowed type ids and levels for "uniform" (default all); `types`
    also limits the types compiled into the program (for "kadis" the records' types
    must be among them).
  group_size: images sharing one type in a "uniform" step (divides batch_size;
    unused by "kadis", whose 5 levels of a crop share its type).
  quantize: round distorted images to 8 bits before labelling (as KADIS's BMPs).
  color_mode: grey conversion of SSIM / MS-SSIM / IW-SSIM / GMSD / ADD-GSIM (`fr_scores`;
    default MATLAB's rgb2gray of uint8 images, rounded).
  host_otsu: type 22's threshold search on the host (a callback per image) instead
    of the device search (`otsu.py`; both give MATLAB's thresholds).
  """
  crop_size: tuple[int, int] = (384, 512)
  batch_size: int = 32
  assignment: Assignment = "uniform"
  types: tuple[int, ...] | None = None
  levels: tuple[int, ...] | None = None
  group_size: int = 4
  quantize: bool = True
  color_mode: str = "rgb2gray_uint8"
  host_otsu: bool = False

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


def _kadis_types(batch: dict, cfg: SynthesisConfig) -> np.ndarray:
  t = record_types(batch)
  if cfg.types is not None and not set(t.tolist()) <= set(cfg.types):
    raise ValueError(f"records of types {sorted(set(t.tolist()) - set(cfg.types))} "
                     f"are outside the configured types {cfg.types}")
  return t


# --- the plan: types, levels and keys of a step --------------------------------------
def uniform_plan(key, num_images: int, *, group_size: int = 1,
                 types: Sequence[int] | None = None, levels: Sequence[int] | None = None
                 ) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(types, levels) (num_images,) int32: one uniform type per run of `group_size`
  images, one uniform level per image. Traceable (the synthesis program draws it on
  the device)."""
  if num_images % group_size:
    raise ValueError(f"group_size {group_size} must divide {num_images}")
  kt, kl = jax.random.split(key)
  gt, _ = sample_type_level(kt, num_images // group_size, types, levels)
  _, lv = sample_type_level(kl, num_images, types, levels)
  return jnp.repeat(gt.astype(jnp.int32), group_size), lv.astype(jnp.int32)


def step_key(seed: int, step):
  return jax.random.fold_in(jax.random.PRNGKey(seed), step)


def step_plan(config: SynthesisConfig, seed: int, step, num_images: int,
              record_types=None):
  """(types, levels, keys) of the `num_images` images of a step's GLOBAL batch, a
  function of (seed, step) (and, for "kadis", the records' types (num_images / 5,)).
  Traceable: `step` may be a traced int32."""
  k_plan, k_img = jax.random.split(step_key(seed, step))
  keys = jax.random.split(k_img, num_images)
  if config.assignment == "uniform":
    types, levels = uniform_plan(jax.random.fold_in(k_plan, _PLAN_SALT), num_images,
                                 group_size=config.group_size, types=config.types,
                                 levels=config.levels)
  else:
    types = jnp.repeat(jnp.asarray(record_types, jnp.int32), NUM_LEVELS)
    levels = jnp.tile(jnp.arange(1, NUM_LEVELS + 1, dtype=jnp.int32),
                      num_images // NUM_LEVELS)
  return types, levels, keys


def run_length(config: SynthesisConfig) -> int:
  """Images per run sharing one type (one `lax.switch` each): `group_size` for
  "uniform", the 5 levels of a crop for "kadis"."""
  return config.group_size if config.assignment == "uniform" else NUM_LEVELS


# --- device side --------------------------------------------------------------------
def label(reference, distorted, *, equalizer: histeq.Equalizer | None = None,
          color_mode: str = "rgb2gray_uint8", sff_w=None) -> dict[str, jnp.ndarray]:
  """On-device labels of (N, H, W, 3) pairs in [0, 1] (or uint8): "scores" (N, 11)
  raw FR scores in `METRIC_NAMES` order and, with an equaliser, "target" (N, 11)
  equalised and oriented (higher = better). Traceable; the fused metric core that
  `metrics.fr_scores` calls (no input checks: nothing is read back)."""
  x, y = reference, distorted
  x = x.astype(jnp.float32) if x.dtype == jnp.uint8 else x * 255.0
  y = y.astype(jnp.float32) if y.dtype == jnp.uint8 else y * 255.0
  w = jnp.asarray(load_w(sff_w), x.dtype)
  # The barrier keeps XLA from fusing the metrics into what made their inputs, so
  # the scores are those of the stand-alone metric program (`fr_scores`).
  x, y = jax.lax.optimization_barrier((x, y))
  scores = fused.stack(fused.fr_scores_core(x, y, w, color_mode=color_mode))
  out = {"scores": scores}
  if equalizer is not None:
    out["target"] = histeq.equalize(equalizer, scores)
  return out


def synthesize_local(crops, types, levels, keys, *, config: SynthesisConfig,
                     equalizer: histeq.Equalizer | None = None, with_labels: bool = True,
                     unroll: bool = False) -> dict:
  """One device's share of a step (traceable): crops (n / per, H, W, 3) uint8, each
  used for `per` = images_per_crop consecutive images; types, levels, keys (n,) ->
  {"image": distorted float32 [0, 1], "reference" uint8, "dist_type", "level" and
  "scores" / "target" (see `label`)}."""
  cfg = config
  ref = jnp.repeat(crops, cfg.images_per_crop, axis=0)
  dist = distort_runs(ref.astype(jnp.float32) / 255.0, types, levels, keys,
                      run=run_length(cfg), branches=_branches(cfg),
                      host_otsu=cfg.host_otsu, unroll=unroll)
  labelled = dist
  if cfg.quantize:
    # The metrics see the exact 8-bit values (as `fr_scores` on the uint8 image).
    labelled = jnp.round(dist * 255.0).astype(jnp.uint8)
    dist = labelled.astype(jnp.float32) / 255.0
  out = {"image": dist, "reference": ref, "dist_type": types, "level": levels}
  if with_labels:
    out.update(label(ref, labelled, equalizer=equalizer, color_mode=cfg.color_mode))
  return out


def _branches(cfg: SynthesisConfig):
  # The types compiled into the program: `types`, else all 25.
  return cfg.types


def make_program(config: SynthesisConfig, mesh: Mesh, *, seed: int, num_images: int,
                 offset: int = 0, with_labels: bool = True, unroll: bool = False):
  """The step's synthesis as ONE sharded program over `mesh`'s data axis:
  `(crops, record_types, step, equalizer) -> dict of arrays sharded on the batch`.

  crops (B, H, W, 3) uint8 and record_types (B,) int32 (ignored by "uniform") are
  sharded over the mesh; the plan (types, levels, keys) of the step's global batch of
  `num_images` images is drawn inside the program from (seed, step), and the mesh
  takes rows offset .. offset + B * images_per_crop of it. Each device distorts,
  quantises, labels and equalises its own share (`synthesize_local` in `shard_map`);
  only the crops and the step number cross from the host.
  """
  cfg = config
  sharded = P(parallel.DATA_AXIS)
  per = cfg.images_per_crop

  def per_device(crops, types, levels, keys, eq):
    return synthesize_local(crops, types, levels, keys, config=cfg, equalizer=eq,
                            with_labels=with_labels, unroll=unroll)

  def program(crops, record_types, step, eq):
    n_mesh = crops.shape[0] * per
    rec = None
    if cfg.assignment == "kadis":
      # Records of other processes are not here; only this mesh's rows are used.
      rec = jnp.zeros((num_images // per,), jnp.int32)
      rec = jax.lax.dynamic_update_slice(rec, record_types, (offset // per,))
    types, levels, keys = step_plan(cfg, seed, step, num_images, rec)
    types, levels, keys = (a[offset:offset + n_mesh] for a in (types, levels, keys))
    # No collectives inside: the per-device program is the one-device program, so
    # the varying-axis checks (which loop carries of the engine do not annotate) are
    # off.
    return jax.shard_map(per_device, mesh=mesh,
                         in_specs=(sharded, sharded, sharded, sharded, P()),
                         out_specs=sharded, check_vma=False)(crops, types, levels,
                                                             keys, eq)

  return jax.jit(program)


def _check_layout(cfg: SynthesisConfig, mesh: Mesh, crops_on_mesh: int):
  n_dev = mesh.devices.size
  if crops_on_mesh % n_dev:
    raise ValueError(f"{crops_on_mesh} crops per step do not split over {n_dev} devices: "
                     f"the batch size (in crops) must be a multiple of the device count")
  local = crops_on_mesh // n_dev * cfg.images_per_crop
  if local % run_length(cfg):
    raise ValueError(f"each device's {local} images do not split into runs of "
                     f"group_size={cfg.group_size} images of one type; choose a "
                     f"group_size that divides {local}")


def _expand(values: np.ndarray, repeat: int) -> np.ndarray:
  return np.repeat(np.asarray(values), repeat, axis=0)


def stream(source, indices: Sequence[int] | None = None, *,
           config: SynthesisConfig = SynthesisConfig(), seed: int = 0,
           equalizer: histeq.Equalizer | None = None, start_step: int = 0,
           num_steps: int | None = None, process_index: int | None = None,
           process_count: int | None = None, with_labels: bool = True,
           prefetch: int = 2, num_workers: int = 0,
           transform: pipeline.Transform | None = None, mesh: Mesh | None = None
           ) -> Iterator[dict]:
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
    mesh: the devices that synthesise (`make_program`), e.g. the training mesh
      (the batches then come sharded as the train step takes them). Default: this
      process's first device. A mesh over all processes' devices takes every
      process's crops (process_count must then be `jax.process_count()`).

  Yields:
    dicts with arrays on the mesh, sharded on the batch: "image" (N, H, W, 3) float32
    [0, 1] (distorted; the network input), "reference" uint8, "dist_type", "level",
    "scores" (N, 11), "target" (N, 11) (with an equaliser; `train.stage1` reads
    "image" and "target"), and host arrays "mask" and "content" (when the records
    have it), N = batch_size x images_per_crop (x process_count for a mesh over all
    processes). Nothing is read back from the devices.
  """
  if process_index is None or process_count is None:
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  cfg = config
  mesh = parallel.make_mesh(jax.local_devices()[:1]) if mesh is None else mesh
  whole = not all(d.process_index == jax.process_index() for d in mesh.devices.flat)
  if whole and process_count != jax.process_count():
    raise ValueError(f"a mesh over all processes needs process_count="
                     f"{jax.process_count()}, got {process_count}")
  stop = None if num_steps is None else start_step + num_steps
  indices = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
  if len(indices) == 0:
    raise ValueError("no pristine images to synthesise from")
  global_crops = cfg.batch_size * process_count
  if len(indices) < global_crops:
    # Fewer pristine images than crops per step (e.g. the 8 embedded photos): an epoch
    # lists each image several times; every occurrence gets its own random crop.
    indices = np.tile(indices, -(-global_crops // len(indices)))
  per = cfg.images_per_crop
  n_local = cfg.batch_size * per
  _check_layout(cfg, mesh, global_crops if whole else cfg.batch_size)
  program = make_program(cfg, mesh, seed=seed, num_images=n_local * process_count,
                         offset=0 if whole else process_index * n_local,
                         with_labels=with_labels)
  sharding = NamedSharding(mesh, P(parallel.DATA_AXIS))
  eq = None if equalizer is None else parallel.replicate(equalizer, mesh)

  def put(x):
    x = np.ascontiguousarray(x)
    return jax.make_array_from_process_local_data(
        sharding, x, (x.shape[0] * (process_count if whole else 1),) + x.shape[1:])

  crops = pipeline.batches(source, indices, batch_size=cfg.batch_size, seed=seed,
                           start_step=start_step, process_index=process_index,
                           process_count=process_count, drop_remainder=True,
                           transform=transform or crop_transform(cfg.crop_size),
                           prefetch=prefetch,
                           num_workers=num_workers)
  with crops:
    step = start_step
    while stop is None or step < stop:
      host = next(crops)
      rec = (_kadis_types(host, cfg) if cfg.assignment == "kadis"
             else np.zeros(cfg.batch_size, np.int32))
      out = dict(program(put(host["image"]), put(rec), np.int32(step), eq))
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

