"""Stage 3 of DeepFL-IQA: the MOS regressor on cached MLSP features, evaluated over
repeated splits (Lin, Hosu, Saupe 2020, arXiv 2001.08113, Stage 3).

Per split, the regressor (`train.regressor`: MSE on the raw MOS/DMOS, best-validation
epoch kept) is trained on the training part and scored on the test part; optionally a
ridge probe (`train.probes`, its penalty chosen on the validation part) beside it.
Every feature set of Stage 2 (e.g. Stage 1 weights and random weights) goes through the
same splits, so the table (`train.reporting`) compares them side by side.

Outputs in `<workdir>/stage3/`:
  results.json        per feature set and model: each repeat's test SROCC, PLCC (raw),
                      PLCC after the logistic fit named by `plcc_fit`, KROCC, RMSE,
                      best epoch, validation-loss history; mean, std (sample, ddof=1),
                      median over repeats
  results.md          the Markdown table of those statistics
  scatter_<features>_<model>.png   predicted vs human score, the test parts of all
                      repeats, with the identity line, a logistic fitted to them and a
                      legend
  regressor/, model.json    the regressor `deepfl-iqa score` uses (primary feature set;
                      `export`: the final fit on all records, or one repeat's);
                      model.json says which ("fit")

Config section `config.stage3` (defaults, the paper's: `config_defaults.stage3_config`):
  epochs, batch_size, learning_rate, adam_eps; hidden, dropout: the head's layers
  num_repeats, seed0: splits with seeds seed0 .. seed0 + N - 1 (also the seeds of
    initialisation, shuffling and dropout of each repeat)
  split_kind ("" = the database's own: content / official / random), fractions
  plcc_fit: "logistic5" (Sheikh et al. 2006) | "logistic4" (VQEG)
  feature_sets (() = every set Stage 2 wrote, primary first)
  ridge: add the ridge probe; ridge_alphas: penalties relative to the mean squared
    singular value of the standardised training features
  export: which regressor `deepfl-iqa score` uses: "final" = one fit on ALL records
    (every evaluation content) for the median best epoch of the splits; "repeat" = the
    regressor of repeat `export_repeat`, fit on its training part
  progress
"""
from __future__ import annotations

import os
import pathlib
import time
from typing import Any, Callable, Mapping

import numpy as np

from deepfl_jax import atomic, config_defaults
from deepfl_jax.data import splits as splits_lib
from deepfl_jax.train import feature_cache, probes, regressor, reporting
from deepfl_jax.train.progress import Progress
from deepfl_jax.train.regressor import STAGE_DIR


def _load_sets(c, workdir, given) -> dict[str, feature_cache.FeatureSet]:
  """{label: FeatureSet}, primary first: `given`, else what Stage 2 recorded
  (restricted to `c.feature_sets` when set); all must cover the same images."""
  if given is None:
    primary, paths = feature_cache.feature_sets(workdir)
    labels = list(c.feature_sets) or [primary] + [k for k in paths if k != primary]
    unknown = [l for l in labels if l not in paths]
    if unknown:
      raise ValueError(f"config.stage3.feature_sets: {unknown} not extracted by Stage 2 "
                       f"(have {sorted(paths)})")
    given = {l: feature_cache.load_feature_set(paths[l]) for l in labels}
  sets = dict(given)
  if not sets:
    raise ValueError("no feature sets to evaluate")
  first = next(iter(sets.values()))
  for fs in sets.values():
    if list(fs.columns["name"]) != list(first.columns["name"]):
      raise ValueError(f"feature sets {first.label} and {fs.label} cover different "
                       "images; rerun Stage 2")
  return sets


def _split_kind(c, fs: feature_cache.FeatureSet) -> str:
  kind = c.split_kind or fs.metadata.get("split_kind", "")
  if kind not in ("content", "official", "random"):
    raise ValueError(f"config.stage3.split_kind: {kind!r} is not content | official | "
                     "random (and the database does not name one)")
  return kind


def fit_regressor(c, x_train, y_train, x_val, y_val, seed: int, **kw) -> regressor.RegressorFit:
  """`regressor.train_regressor` with the stage3 section `c`'s settings (epochs unless
  given in `kw`, batch size, learning rate, Adam epsilon, layers, dropout)."""
  return regressor.train_regressor(
      x_train, y_train, x_val, y_val, epochs=kw.pop("epochs", int(c.epochs)),
      batch_size=int(c.batch_size), learning_rate=float(c.learning_rate),
      adam_eps=float(c.adam_eps), hidden=c.hidden, dropout=c.dropout, seed=seed, **kw)


def _export(workdir, c, fs: feature_cache.FeatureSet, fit: regressor.RegressorFit,
            repeat: int | None, described: str) -> None:
  """The scoring model of `deepfl-iqa score`, with what it needs to know in model.json."""
  regressor.save_regressor(workdir, fit.variables, {
      "feature_set": os.path.relpath(fs.path, workdir), "features": fs.label,
      "hidden": [int(h) for h in c.hidden], "dropout": [float(d) for d in c.dropout],
      "fit": described, "repeat": None if repeat is None else int(repeat),
      "best_epoch": fit.best_epoch, "best_val_loss": fit.best_val_loss,
      "score_name": fs.metadata.get("score_name", "score"),
      "higher_is_better": fs.metadata.get("higher_is_better", True),
      "input_scale": fs.info["identity"]["input_scale"],
      "kind": fs.info["identity"]["kind"]})


def _evaluate_set(c, label: str, fs: feature_cache.FeatureSet, y, reps, workdir,
                  on_epoch: Callable, export_repeat: int | None) -> list[dict]:
  """The runs (one per model) of one feature set over the splits `reps`; exports
  repeat `export_repeat`'s regressor when given; writes the scatter plots."""
  feats = np.asarray(fs.features, np.float32)  # read the memory map once
  models = ["regressor"] + (["ridge"] if c.ridge else [])
  per_model = {m: [] for m in models}
  scatter = {m: [] for m in models}
  for r, parts in enumerate(reps):
    tr, va, te = parts["train"], parts["validation"], parts["test"]
    if min(len(tr), len(va), len(te)) < 3:
      raise ValueError(f"split {r}: parts of {len(tr)}/{len(va)}/{len(te)} images "
                       "are too small (each needs >= 3)")
    seed = int(c.seed0) + r
    sizes = dict(n_train=len(tr), n_val=len(va), n_test=len(te))
    fit = fit_regressor(c, feats[tr], y[tr], feats[va], y[va], seed, on_epoch=on_epoch)
    pred = regressor.predict(fit.variables, feats[te], hidden=c.hidden, dropout=c.dropout)
    per_model["regressor"].append(dict(
        reporting.evaluate(pred, y[te], c.plcc_fit), repeat=r, seed=seed, **sizes,
        best_epoch=fit.best_epoch, best_val_loss=fit.best_val_loss,
        val_loss=fit.val_loss, train_loss=fit.train_loss))
    scatter["regressor"].append((pred, y[te]))
    if r == export_repeat:
      _export(workdir, c, fs, fit, r, f"repeat {r}: trained on its {len(tr)} training "
              f"images, best validation epoch {fit.best_epoch}")
    if c.ridge:
      rp, alpha = probes.ridge_probe(feats[tr], y[tr], feats[va], y[va], feats[te],
                                     tuple(c.ridge_alphas))
      per_model["ridge"].append(dict(reporting.evaluate(rp, y[te], c.plcc_fit),
                                     repeat=r, seed=seed, alpha=alpha, **sizes))
      scatter["ridge"].append((rp, y[te]))
  runs = []
  for m in models:
    summary = {k: reporting.summarize([x[k] for x in per_model[m]])
               for k in reporting.METRICS}
    runs.append({"features": label, "model": m, "feature_dir": fs.path.name,
                 "weights": fs.info.get("weights", {}), "summary": summary,
                 "repeats": per_model[m]})
    if atomic.is_writer():
      reporting.pooled_scatter(
          pathlib.Path(workdir) / STAGE_DIR / f"scatter_{label}_{m}.png", scatter[m],
          summary, features=label, model=m, plcc_fit=c.plcc_fit,
          score_name=fs.metadata.get("score_name", "score"))
  return runs


def final_epochs(run: Mapping[str, Any]) -> int:
  """Epochs of a final fit on all records: the median best epoch of the regressor
  `run`'s repeated splits (no data is left to choose one)."""
  return max(1, int(round(float(np.median([r["best_epoch"] for r in run["repeats"]])))))


def _fit_final(c, fs: feature_cache.FeatureSet, run: Mapping[str, Any], y, index,
               workdir) -> dict:
  """The scoring regressor: the primary feature set's regressor fit on ALL records
  (every evaluation content) for the median best epoch of the repeated splits (no
  data is left to choose an epoch), exported for `deepfl-iqa score`."""
  epochs = final_epochs(run)
  feats = np.asarray(fs.features, np.float32)
  fit = fit_regressor(c, feats, y, feats, y, int(c.seed0), epochs=epochs, keep_best=False)
  contents = sorted(set(map(str, index["content"]))) if "content" in index else []
  described = (f"final: all {len(y)} images" +
               (f" ({len(contents)} contents)" if contents else "") +
               f", {epochs} epochs (median best epoch over {len(run['repeats'])} splits)")
  _export(workdir, c, fs, fit, None, described)
  return {"features": run["features"], "epochs": epochs, "num_records": int(len(y)),
          "contents": contents, "fit": described, "train_mse": fit.train_loss[-1]}


def run_stage3(config, workdir, *, feature_sets: Mapping[str, feature_cache.FeatureSet]
               | None = None) -> dict[str, Any]:
  """Trains and evaluates the regressor on every feature set over repeated splits;
  writes results.json, results.md, scatter PNGs and the exported regressor.

  `feature_sets` ({label: FeatureSet}, first = primary) defaults to what Stage 2
  recorded in the work directory. Returns the results dict (as in results.json).
  """
  c = config_defaults.section(config, "stage3")
  if c.plcc_fit not in reporting.FIT_FORMULAS:
    raise ValueError(f"config.stage3.plcc_fit: {c.plcc_fit!r} is not one of "
                     f"{sorted(reporting.FIT_FORMULAS)}")
  if c.export not in ("final", "repeat"):
    raise ValueError(f"config.stage3.export: {c.export!r} is not 'final' or 'repeat'")
  sets = _load_sets(c, workdir, feature_sets)
  first = next(iter(sets.values()))
  kind = _split_kind(c, first)
  index = {k: np.asarray(v) for k, v in first.columns.items()}
  if kind == "content" and "content" not in index:
    raise ValueError("split_kind 'content' needs a 'content' column in the features' "
                     "index")
  reps = splits_lib.repeated_splits(index, kind, int(c.num_repeats), int(c.seed0),
                                    tuple(c.fractions))
  if not 0 <= int(c.export_repeat) < len(reps):
    raise ValueError(f"config.stage3.export_repeat={c.export_repeat} is not a repeat "
                     f"index (0..{len(reps) - 1})")
  y = np.asarray(first.columns["score"], np.float64)
  out = pathlib.Path(workdir) / STAGE_DIR
  if atomic.is_writer():
    out.mkdir(parents=True, exist_ok=True)
  bar = Progress(len(sets) * len(reps) * int(c.epochs), desc="stage3 regressor",
                 enabled=bool(c.progress) and atomic.is_writer(), unit="epochs")
  epochs_done = [0]

  def on_epoch(epoch, val):
    epochs_done[0] += 1
    # One line per repeat when stderr is not a terminal (CI logs).
    bar.update(epochs_done[0], {"loss": val}, force=epoch == int(c.epochs))

  runs, final, t0 = [], None, time.perf_counter()
  try:
    for i, (label, fs) in enumerate(sets.items()):
      export_repeat = int(c.export_repeat) if i == 0 and c.export == "repeat" else None
      runs += _evaluate_set(c, label, fs, y, reps, workdir, on_epoch, export_repeat)
    if c.export == "final":
      final = _fit_final(c, first, runs[0], y, index, workdir)
  finally:
    bar.close()
  results = {
      "dataset": first.metadata.get("name", "") or "database",
      "num_records": int(len(y)), "split_kind": kind, "num_repeats": len(reps),
      "fractions": [float(f) for f in c.fractions], "plcc_fit": c.plcc_fit,
      "plcc_fit_formula": reporting.FIT_FORMULAS[c.plcc_fit], "std": "sample (ddof=1)",
      "score_name": first.metadata.get("score_name", "score"),
      "label_note": first.metadata.get("label_note", ""),
      "seconds": round(time.perf_counter() - t0, 3), "final": final,
      "config": {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in c.to_dict().items()},
      "runs": runs}
  if atomic.is_writer():
    atomic.write_json(out / "results.json", results, indent=1, default=float)
    atomic.write_text(out / "results.md", reporting.markdown_table(results))
  return results
