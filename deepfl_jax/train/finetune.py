"""Stage 3, end-to-end variant: backbone + MLSP regressor fine-tuned on MOS with L2
(RankIQA+FT, Liu et al. 2017; the multi-level ranking paper), beside the frozen-feature
regressor and the ridge probe of `stage3` (issue 15).

Per repeat of Stage 3's splits (same kind, seeds and fractions, so the three
evaluations share their test parts): the backbone starts from the Stage 1 weights (or
random weights), the head `MOSRegressor` (config.stage3.hidden / dropout) on the narrow
MLSP vector is newly initialised; both are trained with MSE on the raw scores (Adam),
the weights of the epoch with the lowest validation MSE are kept and scored on the test
part (SROCC, PLCC, ...: `reporting.evaluate`). Whole images at their stored size, no
crops (RankIQA tests on the mean over crops; our choice keeps Stage 2's input).

Outputs: `<workdir>/finetune/results.json` and `results.md` (Stage 3's table format).
Config `config.finetune` (defaults: `deepfl_jax.config_defaults.finetune_config`):
epochs, batch_size, learning_rate, num_repeats (Stage 3's; 0 = Stage 3's too),
compare_random, progress; the database and weights are `config.stage2`'s, the splits
and the head `config.stage3`'s.
"""
from __future__ import annotations

import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax import config_defaults
from deepfl_jax.data import splits as splits_lib
from deepfl_jax.models import mlsp
from deepfl_jax.models.heads import MOSRegressor
from deepfl_jax.train import reporting, stage2
from deepfl_jax.train import weights as weights_lib
from deepfl_jax.train.optim import make_optimizer
from deepfl_jax.train.progress import Progress
from deepfl_jax.train.state import TrainState

STAGE_DIR = "finetune"


class FineTuneNet:
  """(backbone, head) functions over images (N, H, W, 3) in [0, 1] -> (N,) scores."""

  def __init__(self, backbone, hidden, dropout, input_scale="unit",
               bn_momentum: float = 0.99):
    self.backbone = backbone
    self.head = MOSRegressor(hidden=tuple(hidden), dropout=tuple(dropout),
                             bn_momentum=float(bn_momentum))
    self.input_scale = input_scale

  def apply(self, params, stats, images, *, train: bool, rng=None):
    v = {"params": params["backbone"], "batch_stats": stats["backbone"]}
    if train:
      feats, bb_stats = mlsp.mlsp_features(self.backbone, v, images, "narrow",
                                           self.input_scale, train=True)
      out, upd = self.head.apply({"params": params["head"],
                                  "batch_stats": stats["head"]}, feats, train=True,
                                 rngs={"dropout": rng}, mutable=["batch_stats"])
      return out[:, 0], {"backbone": bb_stats, "head": upd["batch_stats"]}
    feats = mlsp.mlsp_features(self.backbone, v, images, "narrow", self.input_scale)
    return self.head.apply({"params": params["head"], "batch_stats": stats["head"]},
                           feats, train=False)[:, 0]


@functools.lru_cache(maxsize=4)
def _functions(net: FineTuneNet, learning_rate: float):
  tx = make_optimizer(name="adam", learning_rate=learning_rate)

  def loss_fn(params, stats, x, y, rng):
    pred, new = net.apply(params, stats, x, train=True, rng=rng)
    return jnp.mean(jnp.square(pred - y)), new

  @functools.partial(jax.jit, donate_argnums=(0,))
  def step(state, x, y):
    (loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, x, y, state.step_rng())
    return state.apply_gradients(tx, g, batch_stats=stats), loss

  @jax.jit
  def predict(params, stats, x):
    return net.apply(params, stats, x, train=False)

  return tx, step, predict


def _predict(predict, state, images, batch_size):
  out = [np.asarray(predict(state.params, state.batch_stats,
                            jnp.asarray(images[i:i + batch_size], jnp.float32) / 255.0))
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out)


def finetune(net: FineTuneNet, backbone_vars, images: np.ndarray, y: np.ndarray, split,
             *, epochs: int, batch_size: int, learning_rate: float, seed: int,
             on_epoch=None) -> dict:
  """Fine-tunes on split["train"], keeps the best split["validation"] epoch, predicts
  split["test"]. images: (N, H, W, 3) uint8 of one size; y: (N,) raw scores.
  Returns {"pred", "best_epoch", "val_loss" (per epoch), "train_loss"}."""
  tx, step, predict = _functions(net, float(learning_rate))
  tr, va, te = (np.asarray(split[k]) for k in ("train", "validation", "test"))
  feat_dim = jax.eval_shape(
      lambda v: mlsp.mlsp_features(net.backbone, v, images[:1].astype(np.float32),
                                   "narrow", net.input_scale), backbone_vars).shape[-1]
  head = net.head.init(jax.random.PRNGKey(seed), jnp.zeros((1, feat_dim)))
  params = {"backbone": backbone_vars["params"], "head": head["params"]}
  stats = {"backbone": backbone_vars.get("batch_stats", {}),
           "head": head["batch_stats"]}
  state = TrainState.create(params=jax.tree.map(jnp.array, params),
                            batch_stats=jax.tree.map(jnp.array, stats), tx=tx,
                            rng=jax.random.PRNGKey(seed + 1))
  rng = np.random.default_rng(seed)
  best, best_epoch, best_val, vals, trains = None, -1, np.inf, [], []
  for epoch in range(1, epochs + 1):
    order = rng.permutation(tr)
    losses = []
    # Full batches only: batch-norm statistics of a 1-image batch are degenerate.
    for i in range(0, max(len(order) - batch_size + 1, 1), batch_size):
      idx = order[i:i + batch_size]
      state, loss = step(state, jnp.asarray(images[idx], jnp.float32) / 255.0,
                         jnp.asarray(y[idx], jnp.float32))
      losses.append(float(loss))
    val = float(np.mean((_predict(predict, state, images[va], batch_size) - y[va]) ** 2))
    vals.append(val)
    trains.append(float(np.mean(losses)))
    if not np.isfinite(val):
      raise FloatingPointError(f"fine-tuning diverged at epoch {epoch} (validation MSE "
                               f"{val}); lower config.finetune.learning_rate")
    if val < best_val:
      best_val, best_epoch = val, epoch
      best = jax.tree.map(np.asarray, (state.params, state.batch_stats))
    if on_epoch:
      on_epoch(epoch, val)
  state = state.replace(params=best[0], batch_stats=best[1])
  return {"pred": _predict(predict, state, images[te], batch_size),
          "best_epoch": best_epoch, "val_loss": vals, "train_loss": trains}


def run_finetune(config, workdir) -> dict:
  """The fine-tuning evaluation of Stage 1's backbone (and random weights) on Stage 2's
  database over Stage 3's splits; writes `<workdir>/finetune/results.{json,md}`."""
  c = config_defaults.section(config, "finetune")
  c2 = config_defaults.section(config, "stage2")
  c3 = config_defaults.section(config, "stage3")
  source = stage2.open_dataset(c2, workdir)
  imgs = [np.asarray(source.records[i]["image"]) for i in range(len(source))]
  shapes = sorted({im.shape for im in imgs})
  if len(shapes) > 1:
    raise ValueError(f"config.stage2.dataset: fine-tuning batches whole images of one "
                     f"size; this database has {len(shapes)} sizes ({shapes[:3]}...)")
  images = np.stack(imgs)
  index = {k: np.asarray(v) for k, v in source.index.items()}
  y = np.asarray(index["score"], np.float64)
  kind = c3.split_kind or source.metadata.get("split_kind", "")
  reps = splits_lib.repeated_splits(index, kind, int(c.num_repeats or c3.num_repeats),
                                    int(c3.seed0), tuple(c3.fractions))
  # The batch-norm decay Stage 1 trained with (config.model.bn_momentum) also here.
  bn_momentum = float(config_defaults.section(config, "model").bn_momentum)
  backbone = weights_lib.make_backbone(c2, bn_momentum)
  weights = {weights_lib.weights_label(c2.weights): weights_lib.resolve_weights(
      c2.weights, workdir, model=backbone, checkpoint_dir=c2.checkpoint_dir,
      stage1_checkpoint=c2.stage1_checkpoint)[0]}
  if c.compare_random and c2.weights != "random":
    weights["random"] = weights_lib.resolve_weights("random", workdir, model=backbone,
                                                    seed=int(c2.random_seed))[0]
  net = FineTuneNet(backbone, c3.hidden, c3.dropout, c2.input_scale, bn_momentum)
  bar = Progress(len(weights) * len(reps) * int(c.epochs), desc="finetune epochs",
                 enabled=bool(c.progress) and jax.process_index() == 0)
  done = [0]

  def on_epoch(epoch, val):
    done[0] += 1
    bar.update(done[0], {"loss": val}, force=epoch == int(c.epochs))

  runs, t0 = [], time.perf_counter()
  try:
    for label, v in weights.items():
      per = []
      for r, parts in enumerate(reps):
        fit = finetune(net, v, images, y, parts, epochs=int(c.epochs),
                       batch_size=int(c.batch_size),
                       learning_rate=float(c.learning_rate), seed=int(c3.seed0) + r,
                       on_epoch=on_epoch)
        per.append(dict(reporting.evaluate(fit.pop("pred"), y[parts["test"]],
                                        c3.plcc_fit), repeat=r, **fit))
      runs.append({"features": label, "model": "finetuned",
                   "summary": {k: reporting.summarize([x[k] for x in per])
                               for k in reporting.METRICS}, "repeats": per})
  finally:
    bar.close()
  results = {"dataset": source.metadata.get("name", "") or "database",
             "num_records": int(len(y)), "split_kind": kind, "num_repeats": len(reps),
             "fractions": [float(f) for f in c3.fractions], "plcc_fit": c3.plcc_fit,
             "seconds": round(time.perf_counter() - t0, 3),
             "config": c.to_dict(), "runs": runs}
  if jax.process_index() == 0:
    out = pathlib.Path(workdir) / STAGE_DIR
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    (out / "results.md").write_text(reporting.markdown_table(results))
  return results
