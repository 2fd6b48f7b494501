"""Stage 1 of DeepFL-IQA: InceptionResNetV2 + multi-task head on narrow MLSP, MSE on the
11 histogram-equalised FR proxies (Lin, Hosu, Saupe 2020, Stage 1).

The released model's name ("quality-mlsp-mtl-mse-loss") puts the multi-task head on
the MLSP vector: backbone taps -> global average pools (16,928) -> MLSP head -> 11.
Variables: {"params": {"backbone", "head"}, "batch_stats": {"backbone", "head"}}, so
ImageNet weights load into `params["backbone"]` / `batch_stats["backbone"]`.
"""
from __future__ import annotations

import os
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from deepfl_jax import atomic
from deepfl_jax.data import generation, histeq, mini_kadid, pipeline, pristine, synthesis
from deepfl_jax.models import (InceptionResNetV2, MultiTaskHead, host_init, load_variables,
                               mlsp, tap_widths)
from deepfl_jax.train import config as train_config
from deepfl_jax.train import loop, parallel, progress, validation
from deepfl_jax.train.loop import COUNT_PREFIX, TASK_LOSS_PREFIX
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
               input_scale: str = "unit", axis_name: str | None = DATA_AXIS,
               head_hidden=(2048, 1024, 256), head_dropout=(0.25, 0.25, 0.5),
               bn_momentum: float = 0.99) -> MultiTaskIQA:
  """The Stage 1 network; all its batch-norm layers (backbone and head) synchronise
  over `axis_name` (the data-parallel axis; None outside `shard_map`) and keep running
  averages with `bn_momentum` (Keras' 0.99). The head's layers default to
  DeepFL-IQA's MLSP stack (`MultiTaskHead`)."""
  if len(head_hidden) != len(head_dropout):
    raise ValueError(f"config.model.head_hidden {tuple(head_hidden)} and head_dropout "
                     f"{tuple(head_dropout)} need one dropout rate per hidden layer")
  backbone = InceptionResNetV2(width=width, blocks=tuple(blocks), dtype=dtype,
                               bn_axis_name=axis_name, bn_momentum=float(bn_momentum))
  head = MultiTaskHead(hidden=tuple(int(h) for h in head_hidden),
                       dropout=tuple(float(d) for d in head_dropout), dtype=dtype,
                       bn_axis_name=axis_name, bn_momentum=float(bn_momentum))
  return MultiTaskIQA(backbone=backbone, head=head, input_scale=input_scale)


def init_variables(model: MultiTaskIQA, rng: jax.Array, image_shape=(299, 299)):
  """Randomly initialised variables. Inference mode at init uses no batch statistics,
  so the batch-norm axis need not be bound (this runs outside `shard_map`)."""
  x = jnp.zeros((1, *image_shape, 3), jnp.float32)
  return jax.jit(lambda r: model.init(r, x, train=False))(rng)


def masked_task_mse(pred, target, axis_name: str | None = DATA_AXIS):
  """(per-task MSE (T,), non-finite target count per task (T,), loss ()) of (n, T)
  predictions and targets on one device's shard, in float32.

  A NaN/inf target (a degenerate FR score, e.g. a constant crop) is left out of its
  own task only; each task's MSE averages its finite targets over the GLOBAL batch
  (counts summed over `axis_name`, so the data-parallel pmean of the returned values
  equals the single-device result), and the loss averages the tasks that have any.
  The MSEs and the loss are this device's shares: their pmean over `axis_name` (as
  the data-parallel step takes) is the global value; the counts are global."""
  pred = pred.astype(jnp.float32)
  target = target.astype(jnp.float32)
  valid = jnp.isfinite(target)
  err = jnp.where(valid, pred - jnp.where(valid, target, 0.0), 0.0)
  sq = jnp.sum(jnp.square(err), axis=0)
  n_valid = jnp.sum(valid, axis=0).astype(jnp.float32)
  n_bad = jnp.sum(~valid, axis=0).astype(jnp.float32)
  devices = 1
  if axis_name is not None:
    n_valid, n_bad = jax.lax.psum((n_valid, n_bad), axis_name)
    devices = jax.lax.psum(1, axis_name)
  local = sq * devices / jnp.maximum(n_valid, 1.0)  # pmean over devices -> global MSE
  has = n_valid > 0
  loss = jnp.sum(jnp.where(has, local, 0.0)) / jnp.maximum(jnp.sum(has), 1)
  return local, n_bad, loss


def multitask_loss(pred, target, axis_name: str | None = DATA_AXIS
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(loss, metrics) of `masked_task_mse`: metrics "mse" (the loss),
  "loss/<task>" per task and "count/masked_targets/<task>" (non-finite targets left
  out), which the loop checks, sums and logs."""
  per_task, n_bad, loss = masked_task_mse(pred, target, axis_name)
  metrics = {"mse": loss}
  for i, name in enumerate(validation.task_names(per_task.shape[0])):
    metrics[f"{TASK_LOSS_PREFIX}{name}"] = per_task[i]
    metrics[f"{COUNT_PREFIX}masked_targets/{name}"] = n_bad[i]
  return loss, metrics


def make_loss_fn(model: MultiTaskIQA, axis_name: str | None = DATA_AXIS):
  """Per-device loss for `parallel.make_train_step`: batch {"image": (n, H, W, 3) in
  [0, 1], "target": (n, 11) in [0, 1], NaN where a label is missing} -> the mean over
  tasks of each task's MSE over its finite targets (`multitask_loss`, in float32
  whatever the compute dtype)."""

  def loss_fn(params, batch_stats, batch, rng):
    pred, upd = model.apply({"params": params, "batch_stats": batch_stats},
                            batch["image"], train=True, rngs={"dropout": rng},
                            mutable=["batch_stats"])
    loss, metrics = multitask_loss(pred, batch["target"], axis_name)
    return loss, (upd["batch_stats"], metrics)

  return loss_fn


# --- the stage as an experiment step ------------------------------------------------
def _pristine_source(c):
  """config.stage1.source -> the pristine images (an IqaSource), all of them used
  (for "kadis700k_generated": the stored distorted images)."""
  if c.source == "kadis700k_generated":
    if not c.get("data_dir"):
      raise ValueError("config.stage1.data_dir: set it to the generate stage's output "
                       "directory (config.generate.out_dir)")
    return pipeline.load_source("kadis700k_generated", c.data_dir,
                                with_references=False)
  if c.source == "embedded":
    return mini_kadid.pristine_source(tuple(c.photos), tuple(c.image_size))
  if c.source == "pristine":
    p = c.pristine
    return pristine.stage1_source(tuple(p.sources), num_dead_leaves=int(p.num_dead_leaves),
                                  seed=int(p.seed))
  if c.source == "kadis700k":
    if not c.get("data_dir"):
      raise ValueError("config.stage1.data_dir: set it to the TFDS data directory where "
                       "the kadis700k builder was prepared (see deepfl_jax/data/builders)")
    return pipeline.load_source("kadis700k", c.data_dir)
  raise ValueError(f"config.stage1.source: unknown source {c.source!r}; use 'embedded', "
                   "'pristine' or 'kadis700k'")


def _crop_transform(c):
  """config.stage1.augment -> the crop transform of the synthesis stream (None: the
  default uniformly placed crop)."""
  a = c.get("augment", None)
  if a is None or not a.get("enabled", False):
    if c.source == "pristine":  # native scale; enlarged where smaller than the crop
      return pristine.augment_transform(tuple(c.crop_size), min_scale=1.0,
                                        max_scale=1.0, flip=False)
    return None
  return pristine.augment_transform(tuple(c.crop_size), min_scale=float(a.min_scale),
                                    max_scale=float(a.max_scale), flip=bool(a.flip),
                                    colour=float(a.get("colour", 0.0)))


KERAS_IMAGENET_WEIGHTS = "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
SCRATCH = "scratch"


def check_init_from(init_from: str) -> str:
  """`config.model.init_from` -> "scratch" or an existing path; refuses an unset value
  (the paper starts Stage 1 from ImageNet weights, so a random start must be asked
  for, never a silent default)."""
  init_from = str(init_from or "").strip()
  if not init_from:
    raise ValueError(
        "config.model.init_from is not set. DeepFL-IQA's Stage 1 starts from ImageNet "
        f"weights: get Keras' {KERAS_IMAGENET_WEIGHTS} (keras.applications."
        "InceptionResNetV2(weights='imagenet', include_top=False) downloads it to "
        "~/.keras/models/), put it on this machine (e.g. ~/.keras/models/ or next to "
        "your data) and pass --config.model.init_from=/path/to/"
        f"{KERAS_IMAGENET_WEIGHTS} (or an orbax folder made from it by `python -m "
        "deepfl_jax.models.keras_import`). To train from random weights on purpose, "
        f"pass --config.model.init_from={SCRATCH}.")
  if init_from == SCRATCH:
    return init_from
  if not os.path.exists(os.path.expanduser(init_from)):
    raise FileNotFoundError(
        f"config.model.init_from={init_from!r}: no such file or folder (expected "
        f"Keras' {KERAS_IMAGENET_WEIGHTS}, an orbax folder of backbone weights, or "
        f"{SCRATCH!r} for random weights)")
  return init_from


def run_stage1(config, workdir: str):
  """Stage 1 from `config.stage1`, `config.model`, `config.train`, `config.optim`.

  Online synthesis (distortion + 11 FR labels on the device) from pristine images,
  labels histogram-equalised by an equaliser fitted once on a calibration sample of
  the same stream (config.stage1.equalizer "own", the default; "published" takes the
  KADIS score file's CDFs for the MATLAB-parity metrics only, see `histeq.choose`) and
  stored in `workdir/stage1/equalizer.json`, so a
  resumed run reuses it. Checkpoints, metrics.jsonl and TensorBoard summaries go to
  `workdir/stage1`.

  config.stage1 keys: task ("fr_proxies", this function; "ranking", "ranking_mlsp",
  "contrastive": `deepfl_jax.pretext.run`), source ("embedded" | "pristine" |
  "kadis700k" | "kadis700k_generated": the stored images of the generate stage,
  equalised by the ECDF of their scores), photos / image_size (embedded), pristine
  (sources, num_dead_leaves, seed: `data.pristine`), data_dir (kadis700k / generated),
  crop_size, augment (enabled, min_scale, max_scale, flip: random scales and flips of
  the crops), assignment ("uniform" | "kadis"),
  types (restrict the distortion types; () = all), group_size, calibration_steps,
  equalizer ("own" | "published"), score_file (KADIS FR-score CSV, for "published"),
  published_metrics (() = all of metrics.MATLAB_PARITY),
  val_fraction (pristine contents held out for validation, default 0.02; 0 = none),
  val_seed (which contents, and their fixed distortions), val_batches (validation
  set size in batches; evaluated every config.train.eval_every steps; the best
  state by mean validation MSE is kept in `workdir/stage1/best`), num_workers (Grain
  worker processes reading and cropping the pristine images; 0 = threads in this
  process).
  config.model keys: width, blocks, input_scale ("unit" | "keras"), head_hidden /
  head_dropout (the multi-task head's layers; default the paper's MLSP stack),
  init_from (required: Keras ImageNet .h5 or orbax folder with backbone weights, or
  "scratch" for random weights; `check_init_from`).
  """
  c, m = config.stage1, config.model
  init_from = check_init_from(m.get("init_from", ""))  # before any data work
  if c.get("task", "fr_proxies") != "fr_proxies":  # ranking / contrastive (deepfl_jax/pretext)
    # Imported here: pretext.run builds on this module (an import cycle at the top).
    from deepfl_jax.pretext import run as pretext_run  # pylint: disable=import-outside-toplevel
    return pretext_run.run_pretext(config, workdir)
  out = os.path.join(workdir, "stage1")
  os.makedirs(out, exist_ok=True)
  n_proc = jax.process_count()
  batch = int(config.train.batch_size)
  stored = c.source == "kadis700k_generated"
  per_crop = 5 if c.assignment == "kadis" and not stored else 1
  n_dev = jax.device_count()
  if batch % (n_dev * per_crop):
    raise ValueError(f"config.train.batch_size={batch} must be a multiple of "
                     f"{n_dev * per_crop} (devices x images per crop: each device "
                     f"synthesises whole crops)")
  syn = synthesis.SynthesisConfig(
      crop_size=tuple(c.crop_size), batch_size=batch // (n_proc * per_crop),
      assignment=c.assignment, group_size=int(c.group_size),
      types=tuple(c.types) or None)
  source = _pristine_source(c)
  train_idx, val_idx = validation.split_validation(source.index, float(c.get("val_fraction", 0.0)),
                                        int(c.get("val_seed", 0)))
  logging.info("stage 1: %d pristine images for training, %d held out for validation",
               len(train_idx), len(val_idx))
  transform = _crop_transform(c)

  eq_path = os.path.join(out, "equalizer.json")
  if os.path.exists(eq_path):
    equalizer = histeq.load(eq_path)
  else:
    n_cal = int(c.calibration_steps)

    def calibrate_stream():
      bar = progress.Progress(n_cal, desc="stage1 calibration", unit="batches",
                          enabled=bool(config.train.get("progress", True))
                          and jax.process_index() == 0)
      bar.begin()
      try:  # a line per quarter in logs (no terminal), redrawn on one
        return synthesis.calibrate(
            source, train_idx, config=syn, num_steps=n_cal, transform=transform,
            on_batch=lambda n: bar.update(n, force=n % max(1, n_cal // 4) == 0))
      finally:
        bar.close()

    calibrate = calibrate_stream
    if stored and c.get("equalizer", "own") == "own":
      # The paper's targets: the ECDF over all generated images' own scores.
      calibrate = lambda: histeq.fit(generation.load_scores(c.data_dir))
    # Our own scores' CDFs (of the training images only) by default; the published
    # ones only on request (histeq.choose).
    equalizer = histeq.choose(
        calibrate, source=c.get("equalizer", "own"), score_file=c.get("score_file", ""),
        published_metrics=tuple(c.get("published_metrics", ())))
    if atomic.is_writer():
      histeq.save(equalizer, eq_path)

  model = make_model(width=float(m.width), blocks=tuple(m.blocks),
                     dtype=train_config.compute_dtype(config.train.compute_dtype),
                     input_scale=m.input_scale,
                     head_hidden=tuple(m.get("head_hidden", (2048, 1024, 256))),
                     head_dropout=tuple(m.get("head_dropout", (0.25, 0.25, 0.5))),
                     bn_momentum=float(m.get("bn_momentum", 0.99)))
  example = np.zeros((1, *c.crop_size, 3), np.float32)

  def init_variables(rng):
    # The backbone is loaded (init_from) or drawn with NumPy (host_init: jit-compiling
    # its initialisers takes minutes on a CPU); the small head uses its own declared
    # initialisers.
    if init_from != SCRATCH:
      bb = load_variables(init_from, model.backbone)
    else:
      bb = host_init(model.backbone, example, seed=int(config.train.seed), train=False,
                     taps=True, final=False)
    head = model.head.init(rng, jnp.zeros((1, sum(tap_widths(model.backbone.width,
                                                              model.backbone.blocks)))))
    return {"params": {"backbone": bb["params"], "head": head["params"]},
            "batch_stats": {"backbone": bb["batch_stats"], "head": head["batch_stats"]}}

  mesh = parallel.make_mesh()
  if stored:
    batches = stored_batches(source, syn, train_idx, seed=int(config.train.seed),
                             equalizer=equalizer, mesh=mesh,
                             num_workers=int(c.get("num_workers", 0)))
  else:
    batches = synthesis_batches(source, syn, train_idx, seed=int(config.train.seed),
                                equalizer=equalizer, mesh=mesh,
                                num_workers=int(c.get("num_workers", 0)),
                                transform=transform)
  evaluate = None
  if len(val_idx) and not stored:
    evaluate = validation.make_evaluate(model, mesh, validation.validation_batches(
        source, val_idx, syn=syn, num_batches=int(c.get("val_batches", 16)),
        seed=int(c.get("val_seed", 0)), equalizer=equalizer, transform=transform))
  return loop.fit(config, out, init_variables=init_variables,
                  loss_fn=make_loss_fn(model), batches=batches, desc="stage1",
                  mesh=mesh, evaluate=evaluate)


def stored_batches(source, syn, indices=None, *, seed: int, equalizer, mesh,
                   num_workers: int = 0):
  """`batches(start_step)` from a stored `kadis700k_generated` (the paper's flow):
  uint8 images and raw scores go to the mesh, sharded; the equaliser runs there.
  `syn.batch_size` images per process and step, in `pipeline.batches` order."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  eq = parallel.replicate(equalizer, mesh)
  prepare = jax.jit(lambda img, s, eq: {"image": img.astype(jnp.float32) / 255.0,
                                        "target": histeq.equalize(eq, s)})

  def put(x):
    x = np.ascontiguousarray(x)
    return jax.make_array_from_process_local_data(
        sharding, x, (x.shape[0] * jax.process_count(),) + x.shape[1:])

  def batches(start_step):
    with pipeline.batches(source, indices, batch_size=syn.batch_size, seed=seed,
                          start_step=start_step, drop_remainder=True,
                          num_workers=num_workers) as it:
      for b in it:
        yield prepare(put(b["image"]), put(np.asarray(b["fr_scores"], np.float32)), eq)

  return batches


def synthesis_batches(source, syn, indices=None, *, seed: int, equalizer, mesh,
                      num_workers: int = 0, transform=None):
  """`batches(start_step)` of the training loop: {"image", "target"} of the online
  synthesis program on `mesh` (each device synthesises and labels its own share;
  the arrays come sharded as the train step takes them, nothing passes the host)."""
  def batches(start_step):
    for b in synthesis.stream(source, indices, config=syn, seed=seed,
                              equalizer=equalizer, start_step=start_step, mesh=mesh,
                              num_workers=num_workers, transform=transform):
      yield {"image": b["image"], "target": b["target"]}

  return batches
