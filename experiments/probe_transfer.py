"""Why a demo's features transfer weakly: probes of a finished demo work directory.

1. Stage 1's head (inference mode, as Stage 2 runs the backbone) on batches synthesised
   exactly as Stage 1's (same crops, scales, flips, colouring, distortion mix,
   equaliser) from: Stage 1's own pristine images, fresh dead-leaves images (seeds
   Stage 1 never drew), mini-KADID's photographs (the Stage 2/3 contents) and the
   transfer photographs. Prints the mean Pearson r over the 11 tasks and the MSE beside
   that of predicting each task's mean: where Stage 1 learnt its task, and where not.
2. The FR ceiling: the 11 equalised FR scores of mini-KADID and of the transfer set
   (they read the reference, so this is an upper bound for proxies, not a model):
   SROCC of their mean with the DMOS labels, and a ridge on the 11 scores fit on
   mini-KADID, scored on the transfer set.
3. The scoring regressor's seed spread: Stage 3's final fit (all evaluation contents,
   its epoch count) with seeds 0..N-1, scored on the transfer set, and their average.

  python experiments/probe_transfer.py --workdir workdir/demo [--batches 12]
      [--seeds 5] [--parts 1,2,3]

Needs a work directory where the demo ran every stage (Stage 1 checkpoint and
equaliser, Stage 2 feature sets, stage3/results.json, the transfer stage's images).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepfl_jax.data import histeq, mini_kadid, pristine, synthesis  # noqa: E402
from deepfl_jax.data.pipeline import in_memory_source  # noqa: E402
from deepfl_jax.metrics import correlation  # noqa: E402
from deepfl_jax.train import (feature_cache, probes, regressor, stage1, stage2,  # noqa: E402
                              stage3, transfer, validation)
from deepfl_jax.train.checkpoint import Checkpointer  # noqa: E402


def _source(images: dict[str, np.ndarray]):
  return in_memory_source([{"image": im, "name": k, "content": k}
                           for k, im in images.items()], index_fields=("name", "content"))


def _eval_and_transfer(config, workdir):
  """(evaluation database, transfer set, transfer photographs) as the run's Stage 2
  and transfer stage made them (their caches)."""
  photos = transfer.transfer_photos(config)
  return (stage2.open_dataset(config.stage2, workdir),
          transfer.transfer_database(config, workdir, photos), photos)


def head_fit(config, workdir, photos, num_batches: int):
  c, m = config.stage1, config.model
  model = stage1.make_model(width=float(m.width), blocks=tuple(m.blocks), axis_name=None,
                            head_hidden=tuple(m.head_hidden),
                            head_dropout=tuple(m.head_dropout),
                            bn_momentum=float(m.bn_momentum))
  with Checkpointer(pathlib.Path(workdir) / "stage1" / "checkpoints",
                    read_only=True) as ckpt:
    state = ckpt.restore(None, step=ckpt.latest_step())
  variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
  forward = jax.jit(lambda x: model.apply(variables, x, train=False))
  eq = histeq.load(pathlib.Path(workdir) / "stage1" / "equalizer.json")
  syn = synthesis.SynthesisConfig(crop_size=tuple(c.crop_size),
                                  batch_size=int(config.train.batch_size),
                                  assignment="uniform", group_size=int(c.group_size))
  seed = int(c.pristine.seed) * 100003 + 10_000  # beyond Stage 1's dead-leaves seeds
  sources = {
      "Stage 1's pristine images": stage1._pristine_source(c),  # pylint: disable=protected-access
      "fresh dead leaves (16)": _source({f"fresh_{i}": pristine.dead_leaves(seed + i)
                                         for i in range(16)}),
      "mini-KADID's photographs": mini_kadid.pristine_source(size=(384, 512)),
      "transfer photographs": _source(photos)}
  print("| Stage 1 head on | mean r over 11 tasks | MSE | MSE of each task's mean |")
  print("|---|---|---|---|")
  for name, src in sources.items():
    batches = validation.validation_batches(
        src, None, syn=syn, num_batches=num_batches, seed=123, equalizer=eq,
        transform=stage1._crop_transform(c))  # pylint: disable=protected-access
    pred = np.concatenate([np.asarray(forward(jnp.asarray(b["image"], jnp.float32) / 255))
                           for b in batches])
    target = np.concatenate([b["target"] for b in batches])
    ok = np.isfinite(target)
    r = np.mean([np.corrcoef(pred[ok[:, j], j], target[ok[:, j], j])[0, 1]
                 for j in range(target.shape[1])])
    const = np.nanmean(target, 0)
    print(f"| {name} | {r:.3f} | {np.mean(((pred - target) ** 2)[ok]):.4f} | "
          f"{np.mean(((const - target) ** 2)[ok]):.4f} |", flush=True)


def fr_scores(source, eq) -> np.ndarray:
  """(N, 11) equalised FR scores of a mini-KADID-like source against its references."""
  refs = {n: source.reference_image(n) for n in set(source.index["reference"])}
  recs = [source.records[i] for i in range(len(source.records))]
  dist = np.stack([r["image"] for r in recs])
  ref = np.stack([refs[r["reference"]] for r in recs])
  # Stage 1's own labelling (`synthesis.label`: the 11 metrics and the equaliser) in
  # one jitted program per batch.
  label = jax.jit(lambda r, d: synthesis.label(r, d, equalizer=eq)["target"])
  out = [np.asarray(label(ref[i:i + 50], dist[i:i + 50])) for i in range(0, len(recs), 50)]
  return np.nan_to_num(np.concatenate(out), nan=0.5)  # a degenerate pair: mid-scale


def fr_ceiling(workdir, ev, tr):
  eq = histeq.load(pathlib.Path(workdir) / "stage1" / "equalizer.json")
  fe, ft = fr_scores(ev, eq), fr_scores(tr, eq)
  ye = np.asarray(ev.index["score"], np.float64)
  yt = np.asarray(tr.index["score"], np.float64)
  pred, _ = probes.ridge_probe(fe, ye, fe, ye, ft, (1.0,))
  print(f"FR ceiling: SROCC of the mean of the 11 equalised FR scores with DMOS: "
        f"mini-KADID {correlation.srocc(fe.mean(1), ye):.3f}, transfer "
        f"{correlation.srocc(ft.mean(1), yt):.3f}; ridge on the 11 scores fit on "
        f"mini-KADID, on the transfer set {correlation.srocc(pred, yt):.3f}", flush=True)


def regressor_spread(config, workdir, transfer_source, num_seeds: int):
  s3 = config.stage3
  results = json.loads((pathlib.Path(workdir) / "stage3" / "results.json").read_text())
  epochs = int(results["final"]["epochs"])
  primary, paths = feature_cache.feature_sets(workdir)
  ev = feature_cache.load_feature_set(paths[primary])
  tr = transfer.transfer_features(workdir, ev, transfer_source,  # the transfer stage's
                                  batch_size=int(config.transfer.batch_size))
  x, y = np.asarray(ev.features, np.float32), np.asarray(ev.columns["score"], np.float64)
  xt = np.asarray(tr.features, np.float32)
  yt = np.asarray(tr.columns["score"], np.float64)
  preds = []
  for seed in range(num_seeds):
    fit = stage3.fit_regressor(s3, x, y, x, y, seed, epochs=epochs, keep_best=False)
    preds.append(np.asarray(regressor.predict(fit.variables, xt, hidden=tuple(s3.hidden),
                                              dropout=tuple(s3.dropout))))
  each = [correlation.srocc(p, yt) for p in preds]
  print(f"scoring regressor ({primary} features, {epochs} epochs) on the transfer set, "
        f"seeds 0..{num_seeds - 1}: {' '.join(f'{s:.3f}' for s in each)}; mean "
        f"{np.mean(each):.3f}, their average's SROCC "
        f"{correlation.srocc(np.mean(preds, 0), yt):.3f}", flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--batches", type=int, default=12, help="part 1: batches per source")
  ap.add_argument("--seeds", type=int, default=5, help="part 3: regressor seeds")
  ap.add_argument("--parts", default="1,2,3")
  args = ap.parse_args()
  workdir = pathlib.Path(args.workdir)
  if not (workdir / "config.json").is_file():
    raise SystemExit(f"{workdir}/config.json not found: run the demo with "
                     f"--workdir={workdir} first")
  config = ml_collections.ConfigDict(json.loads((workdir / "config.json").read_text()))
  parts = {int(p) for p in args.parts.split(",")}
  ev, tr, photos = _eval_and_transfer(config, workdir)
  if 1 in parts:
    head_fit(config, workdir, photos, args.batches)
  if 2 in parts:
    fr_ceiling(workdir, ev, tr)
  if 3 in parts:
    regressor_spread(config, workdir, tr, args.seeds)


if __name__ == "__main__":
  main()
