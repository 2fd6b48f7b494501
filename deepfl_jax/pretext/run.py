"""Stage 1 with an alternative pretext task (`config.stage1.task`: ranking, contrastive).

Same backbone, data sources, data-parallel step, loop, checkpoints and logs as the FR
proxy task (`train.stage1`); only the head, the batches and the loss differ:

- "ranking" / "ranking_mlsp": `ranking` (scalar head on pooled final features / MLSP).
- "contrastive": `contrastive` (QPT; projection head on pooled final features, or on
  MLSP with `features="mlsp"`).

The work directory layout is Stage 1's (`workdir/stage1/checkpoints`, metrics.jsonl,
tensorboard/), so Stage 2 picks up the backbone (`params["backbone"]`) unchanged and
the task head is dropped.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from deepfl_jax.models import InceptionResNetV2, MLSPHead, host_init, load_variables
from deepfl_jax.pretext import TASKS, contrastive, degradations, network, ranking
from deepfl_jax.train import config as train_config
# stage1 imports this module only inside run_stage1, so this import is not circular.
from deepfl_jax.train import loop, parallel, stage1, validation


def make_network(task: str, config, *, axis_name="data") -> network.PretextNet:
  """The backbone (config.model) with the task's head (config.stage1)."""
  c, m = config.stage1, config.model
  dtype = train_config.compute_dtype(config.train.compute_dtype)
  backbone = InceptionResNetV2(width=float(m.width), blocks=tuple(m.blocks), dtype=dtype,
                               bn_axis_name=axis_name,
                               bn_momentum=float(m.get("bn_momentum", 0.99)))
  return attach_head(task, backbone, c, m, dtype=dtype, axis_name=axis_name)


def attach_head(task, backbone, c, m, *, dtype=jnp.float32, axis_name="data"
                ) -> network.PretextNet:
  """`backbone` + the head of `task` (split out so tests can pass a small backbone)."""
  if task in ("ranking", "ranking_mlsp"):
    features = "mlsp" if task == "ranking_mlsp" else "final"
    hidden = tuple(int(h) for h in c.get("rank_head_hidden", ()))
    dropout = tuple(float(d) for d in c.get("rank_head_dropout", ()))
    if len(hidden) != len(dropout):
      raise ValueError(f"config.stage1.rank_head_hidden {hidden} and rank_head_dropout "
                       f"{dropout} need one dropout rate per hidden layer")
    head = MLSPHead(outputs=1, hidden=hidden, dropout=dropout, dtype=dtype,
                    bn_axis_name=axis_name, bn_momentum=float(m.get("bn_momentum", 0.99)))
  elif task == "contrastive":
    features = c.get("features", "final")
    head = network.ProjectionHead(hidden=int(c.get("proj_hidden", 2048)),
                                  dim=int(c.get("proj_dim", 128)), dtype=dtype)
  else:
    raise ValueError(f"config.stage1.task: unknown task {task!r}; use one of {TASKS}")
  blocks = network.check_blocks(c.get("mlsp_blocks", ())) if features == "mlsp" else ()
  return network.PretextNet(backbone=backbone, head=head, features=features,
                            blocks=blocks, input_scale=m.input_scale)


def init_fn(model: network.PretextNet, example: np.ndarray, *, seed: int,
            init_from: str):
  """`init_variables(rng)` for `loop.fit`: the backbone loaded (`init_from`, a path) or
  drawn on the host ("scratch": `host_init`), the head initialised on the shape of the
  features it reads."""

  def init_variables(rng):
    if init_from != stage1.SCRATCH:
      bb = load_variables(init_from, model.backbone)
    else:
      kw = ({"taps": True, "final": False} if model.features == "mlsp" else {})
      bb = host_init(model.backbone, example, seed=seed, train=False, **kw)
    feats = jax.eval_shape(
        lambda v: model.apply(v, example, method=network.PretextNet.embed),
        {"params": {"backbone": bb["params"]},
         "batch_stats": {"backbone": bb["batch_stats"]}})
    head = model.head.init(rng, jnp.zeros(feats.shape, jnp.float32))
    return {"params": {"backbone": bb["params"], "head": head["params"]},
            "batch_stats": {"backbone": bb["batch_stats"],
                            "head": head.get("batch_stats", {})}}

  return init_variables


def run_pretext(config, workdir: str):
  """Stage 1 for `config.stage1.task` in ("ranking", "ranking_mlsp", "contrastive").

  config.stage1 keys (besides the source keys of `train.stage1`): crop_size, types;
  ranking: margin (10), include_pristine (True), rank_head_hidden / rank_head_dropout
  (() = a linear scalar head), mlsp_blocks (() = all 43, "ranking_mlsp" only);
  contrastive: see `contrastive.data_config`.
  """

  c, m = config.stage1, config.model
  init_from = stage1.check_init_from(m.get("init_from", ""))  # before any data work
  task = c.task
  out = os.path.join(workdir, "stage1")
  os.makedirs(out, exist_ok=True)
  mesh = parallel.make_mesh()
  batch = int(config.train.batch_size)
  seed = int(config.train.seed)
  source = stage1._pristine_source(c)
  # The same content-disjoint hold-out as the FR-proxy task (`validation`).
  val_seed = int(c.get("val_seed", 0))
  train_idx, val_idx = validation.split_validation(
      source.index, float(c.get("val_fraction", 0.0)), val_seed)
  logging.info("stage 1 (%s): %d pristine images for training, %d held out", task,
               len(train_idx), len(val_idx))
  model = make_network(task, config)
  types = tuple(c.types) or None
  transform = stage1._crop_transform(c)  # Stage 1's crops (random scales and flips if set)

  if task in ("ranking", "ranking_mlsp"):
    size = ranking.group_size(bool(c.get("include_pristine", True)))
    ranking.check_groups(batch, mesh.devices.size, size)
    example = np.zeros((1, *c.crop_size, 3), np.float32)
    margin = float(c.get("margin", 10.0))
    loss_fn = ranking.make_loss_fn(model, margin=margin)

    def make_stream(indices, groups, stream_seed, start_step=0, pi=None, pc=None):
      return ranking.stream(source, indices=indices, groups=groups,
                            crop_size=tuple(c.crop_size), seed=stream_seed,
                            start_step=start_step, types=types,
                            include_pristine=bool(c.get("include_pristine", True)),
                            process_index=pi, process_count=pc, transform=transform)

    def val_metrics(out_, b):
      return {"val/loss": ranking.ranking_loss(out_, b["group"], b["level"],
                                               margin=margin),
              "val/pair_accuracy": ranking.pair_accuracy(out_, b["group"], b["level"])}
    per = size
  else:
    dc = contrastive.data_config(c)
    per = dc.images_per_content
    if batch % (per * mesh.devices.size):
      raise ValueError(f"config.train.batch_size={batch}: the contrastive task needs a "
                       f"multiple of {per * mesh.devices.size} ({per} views per content "
                       f"x {mesh.devices.size} devices)")
    example = np.zeros((1, *dc.view_size, 3), np.float32)
    n = degradations.count_degradations(dc.space)
    logging.info("contrastive: the degradation sampler can produce %.3g distinct "
                 "degradations (%.3g first-order sequences x %.3g second-order chains; "
                 "10 values per continuous parameter; QPT: about 2e7)", n["total"],
                 n["first_order"], n["chain"] + 1)
    temperature = float(c.get("temperature", 0.1))
    loss_fn = contrastive.make_loss_fn(model, temperature=temperature)

    def make_stream(indices, contents, stream_seed, start_step=0, pi=None, pc=None):
      return contrastive.stream(source, dc, indices=indices, contents=contents,
                                seed=stream_seed, start_step=start_step,
                                process_index=pi, process_count=pc, transform=transform)

    def val_metrics(out_, b):
      del b
      return {"val/loss": contrastive.info_nce(out_, temperature)}

  def batches(start_step):
    return make_stream(train_idx, batch // per // jax.process_count(), seed, start_step)

  evaluate = None
  if len(val_idx):
    # Fixed validation batches of the held-out contents, the whole global batch on
    # every process (so every process computes the same numbers); inference mode.
    val_batches = []
    it = make_stream(val_idx, batch // per, val_seed, pi=0, pc=1)
    for _ in range(int(c.get("val_batches", 16))):
      val_batches.append({k: np.asarray(v) for k, v in next(it).items()})
    it.close()
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False))

    def evaluate(state):
      v = parallel.to_host({"params": state.params, "batch_stats": state.batch_stats})
      ms = [val_metrics(forward(v, b["image"]), b) for b in val_batches]
      return {k: float(np.mean([float(m_[k]) for m_ in ms])) for k in ms[0]}

  return loop.fit(config, out, init_variables=init_fn(model, example, seed=seed,
                                                      init_from=init_from),
                  loss_fn=loss_fn, batches=batches, mesh=mesh, desc=f"stage1:{task}",
                  evaluate=evaluate)
