"""Stage 1 of DeepFL-IQA: InceptionResNetV2 + multi-task head on narrow MLSP, MSE on the
11 histogram-equalised FR proxies (Lin, Hosu, Saupe 2020; spec pipeline.md, Stage 1).

The released model's name ("quality-mlsp-mtl-mse-loss") puts the multi-task head on
the MLSP vector: backbone taps -> global average pools (16,928) -> MLSP head -> 11.
Variables: {"params": {"backbone", "head"}, "batch_stats": {"backbone", "head"}}, so
ImageNet weights load into `params["backbone"]` / `batch_stats["backbone"]`.
"""
from __future__ import annotations

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
               input_scale: str = "unit", axis_name: str | None = DATA_AXIS,
               head_hidden=(2048, 1024, 256), head_dropout=(0.25, 0.25, 0.5)
               ) -> MultiTaskIQA:
  """The Stage 1 network; all its batch-norm layers (backbone and head) synchronise
  over `axis_name` (the data-parallel axis; None outside `shard_map`). The head's
  layers default to DeepFL-IQA's MLSP stack (`MultiTaskHead`)."""
  if len(head_hidden) != len(head_dropout):
    raise ValueError(f"config.model.head_hidden {tuple(head_hidden)} and head_dropout "
                     f"{tuple(head_dropout)} need one dropout rate per hidden layer")
  backbone = InceptionResNetV2(width=width, blocks=tuple(blocks), dtype=dtype,
                               bn_axis_name=axis_name)
  head = MultiTaskHead(hidden=tuple(int(h) for h in head_hidden),
                       dropout=tuple(float(d) for d in head_dropout), dtype=dtype,
                       bn_axis_name=axis_name)
  return MultiTaskIQA(backbone=backbone, head=head, input_scale=input_scale)


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


# --- the stage as an experiment step ------------------------------------------------
def _pristine_source(c):
  """config.stage1.source -> the pristine images (an IqaSource), all of them used."""
  from deepfl_jax.data import mini_kadid, pipeline
  if c.source == "embedded":
    return mini_kadid.pristine_source(tuple(c.photos), tuple(c.image_size))
  if c.source == "kadis700k":
    if not c.get("data_dir"):
      raise ValueError("config.stage1.data_dir: set it to the TFDS data directory where "
                       "the kadis700k builder was prepared (see deepfl_jax/data/builders)")
    return pipeline.load_source("kadis700k", c.data_dir)
  raise ValueError(f"config.stage1.source: unknown source {c.source!r}; use 'embedded' "
                   "or 'kadis700k'")


def run_stage1(config, workdir: str):
  """Stage 1 from `config.stage1`, `config.model`, `config.train`, `config.optim`.

  Online synthesis (distortion + 11 FR labels on the device) from pristine images,
  labels histogram-equalised by an equaliser fitted once on a calibration sample of
  the same stream (config.stage1.equalizer "own", the default; "published" takes the
  KADIS score file's CDFs for the MATLAB-parity metrics only, see `histeq.choose`) and
  stored in `workdir/stage1/equalizer.json`, so a
  resumed run reuses it. Checkpoints, metrics.jsonl and TensorBoard summaries go to
  `workdir/stage1`.

  config.stage1 keys: source ("embedded" | "kadis700k"), photos / image_size
  (embedded), data_dir (kadis700k), crop_size, assignment ("uniform" | "kadis"),
  types (restrict the distortion types; () = all), group_size, calibration_steps,
  equalizer ("own" | "published"), score_file (KADIS FR-score CSV, for "published"),
  published_metrics (() = all of metrics.MATLAB_PARITY).
  config.model keys: width, blocks, input_scale ("unit" | "keras"), head_hidden /
  head_dropout (the multi-task head's layers; default the paper's MLSP stack),
  init_from (optional Keras .h5 or orbax folder with backbone weights).
  """
  import os

  import numpy as np

  from deepfl_jax.data import histeq, synthesis
  from deepfl_jax.models import host_init, load_variables, tap_widths
  from deepfl_jax.train import config as train_config
  from deepfl_jax.train import loop

  c, m = config.stage1, config.model
  out = os.path.join(workdir, "stage1")
  os.makedirs(out, exist_ok=True)
  n_proc = jax.process_count()
  batch = int(config.train.batch_size)
  per_crop = 5 if c.assignment == "kadis" else 1
  if batch % (n_proc * per_crop):
    raise ValueError(f"config.train.batch_size={batch} must be a multiple of "
                     f"{n_proc * per_crop} (processes x images per crop)")
  syn = synthesis.SynthesisConfig(
      crop_size=tuple(c.crop_size), batch_size=batch // (n_proc * per_crop),
      assignment=c.assignment, group_size=int(c.group_size),
      types=tuple(c.types) or None)
  source = _pristine_source(c)

  eq_path = os.path.join(out, "equalizer.json")
  if os.path.exists(eq_path):
    equalizer = histeq.load(eq_path)
  else:
    # Our own scores' CDFs by default; the published ones only on request (histeq.choose).
    equalizer = histeq.choose(
        lambda: synthesis.calibrate(source, config=syn,
                                    num_steps=int(c.calibration_steps)),
        source=c.get("equalizer", "own"), score_file=c.get("score_file", ""),
        published_metrics=tuple(c.get("published_metrics", ())))
    if jax.process_index() == 0:
      histeq.save(equalizer, eq_path)

  model = make_model(width=float(m.width), blocks=tuple(m.blocks),
                     dtype=train_config.compute_dtype(config.train.compute_dtype),
                     input_scale=m.input_scale,
                     head_hidden=tuple(m.get("head_hidden", (2048, 1024, 256))),
                     head_dropout=tuple(m.get("head_dropout", (0.25, 0.25, 0.5))))
  example = np.zeros((1, *c.crop_size, 3), np.float32)

  def init_variables(rng):
    # The backbone is loaded (init_from) or drawn with NumPy (host_init: jit-compiling
    # its initialisers takes minutes on a CPU); the small head uses its own declared
    # initialisers.
    if m.get("init_from"):
      bb = load_variables(m.init_from, model.backbone)
    else:
      bb = host_init(model.backbone, example, seed=int(config.train.seed), train=False,
                     taps=True, final=False)
    head = model.head.init(rng, jnp.zeros((1, sum(tap_widths(model.backbone.width,
                                                              model.backbone.blocks)))))
    return {"params": {"backbone": bb["params"], "head": head["params"]},
            "batch_stats": {"backbone": bb["batch_stats"], "head": head["batch_stats"]}}

  def batches(start_step):
    for b in synthesis.stream(source, config=syn, seed=int(config.train.seed),
                              equalizer=equalizer, start_step=start_step):
      yield {"image": b["image"], "target": b["target"]}  # stay on the device

  return loop.fit(config, out, init_variables=init_variables,
                  loss_fn=make_loss_fn(model), batches=batches, desc="stage1")
