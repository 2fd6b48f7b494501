"""Transfer check: the scoring model on contents that NO stage saw (issue 13).

Stage 3's held-out SROCC is measured on contents the regressor did not see, but in the
embedded demo those contents are still few and close to each other. Here photographs
that no stage trains on (`data.pristine.independent_photos`: scikit-learn's sample
photographs, the TID2013 references of ../shared, a user's own folders) are distorted
by the engine with the 25 types x 5 levels of mini-KADID, labelled like mini-KADID
(KADID-10k's DMOS per (type, level)), and scored exactly as `deepfl-iqa score` scores
images: the Stage 2 backbone's MLSP features, then the exported scoring regressor.
The same is done for every other Stage 2 feature set (e.g. "random"), with a regressor
fit on all evaluation records for the median best epoch of that set's own splits, for
comparison.

Outputs `<workdir>/stage3/transfer.json` and `transfer.md` (printed by the stage):
per feature set and model (the regressor; the ridge probe refit on all evaluation
records when Stage 3 ran it), SROCC / PLCC / KROCC over all transfer images, the mean
SROCC of the five levels within each (content, type) and Stage 3's held-out SROCC
beside them.

Config section `config.transfer` (defaults: `deepfl_jax.config_defaults.transfer_config`):
sklearn (True: use scikit-learn's photos when it is
installed), shared_dir (the ../shared folder; "" = none), folders (more photo folders),
size (() = mini-KADID's size of config.stage2), compare (True: every feature set),
batch_size (16).
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Mapping

import ml_collections
import numpy as np

from deepfl_jax import atomic, config_defaults
from deepfl_jax.data import mini_kadid, pristine
from deepfl_jax.metrics import correlation
from deepfl_jax.train import feature_cache, probes, regressor, reporting, stage3


def within_groups_srocc(pred, target, groups) -> float:
  """Mean SROCC inside each group (e.g. the 5 levels of a (content, type)); groups
  whose targets are all equal are skipped."""
  pred, target, groups = np.asarray(pred), np.asarray(target), np.asarray(groups)
  vals = []
  for g in np.unique(groups):
    m = groups == g
    if m.sum() > 2 and np.ptp(target[m]) > 0:
      v = correlation.srocc(pred[m], target[m])
      if np.isfinite(v):
        vals.append(v)
  return float(np.mean(vals)) if vals else float("nan")


def _held_out(results: dict, label: str, model: str = "regressor") -> float:
  for run in results.get("runs", []):
    if run["features"] == label and run["model"] == model:
      return run["summary"]["srocc"]["mean"]
  return float("nan")


def _final_epochs(results: dict, label: str, default: int) -> int:
  """The epoch count of `label`'s final fit: the median best epoch of ITS regressor
  over Stage 3's splits (as `stage3` chooses it for the scoring model), so every
  feature set is fit for the epochs its own splits chose."""
  for run in results.get("runs", []):
    if run["features"] == label and run["model"] == "regressor":
      return stage3.final_epochs(run)
  return default


def _ridge_alpha(results: dict, label: str) -> float | None:
  """The ridge penalty Stage 3's splits chose most often for `label` (None: no
  probe was run)."""
  for run in results.get("runs", []):
    if run["features"] == label and run["model"] == "ridge":
      alphas = [r["alpha"] for r in run["repeats"]]
      vals, counts = np.unique(alphas, return_counts=True)
      return float(vals[np.argmax(counts)])
  return None


def markdown(res: dict) -> str:
  """The printed table of `run_transfer`'s results."""
  if not res["contents"]:
    return f"Transfer check skipped: {res['note']}\n"
  lines = [
      f"Contents: Stage 1 trained on {res['stage1_contents']}; Stages 2/3 on "
      f"{res['eval_contents']}; the transfer check uses {len(res['contents'])} "
      f"contents no stage saw ({', '.join(res['contents'])}), {res['num_images']} "
      f"images ({res['num_types']} types x {res['num_levels']} levels each).", "",
      "| features | model | Stage 3 held-out contents SROCC (mean over splits) | "
      "unseen contents SROCC (fit on all evaluation contents) | PLCC | KROCC | levels "
      "within a type SROCC |", "|---|---|---|---|---|---|---|"]
  for r in res["runs"]:
    lines.append(f"| {r['features']} | {r['model']} | {r['held_out_srocc']:.4f} | "
                 f"{r['srocc']:.4f} | {r['plcc']:.4f} | {r['krocc']:.4f} | "
                 f"{r['within_type_srocc']:.4f} |")
  lines += ["", f"The scoring model of `deepfl-iqa score` is the {res['features']} "
            f"regressor ({res['fit']}); ridge: the probe refit on all evaluation "
            f"contents with the penalty its splits chose. {res['note']}"]
  return "\n".join(lines) + "\n"


def _stage1_contents(config) -> str:
  s1 = config.get("stage1", None)
  if s1 is None:
    return "(no Stage 1 section in the config)"
  if s1.source == "pristine":
    p = s1.pristine
    parts = []
    if "grey_photos" in p.sources:
      parts.append(f"{len(pristine.GREY_PHOTOS)} scikit-image grey photographs")
    if "dead_leaves" in p.sources:
      parts.append(f"{int(p.num_dead_leaves)} dead-leaves images")
    return " + ".join(parts)
  if s1.source == "embedded":
    return f"mini-KADID's photographs {tuple(s1.photos)}"
  return str(s1.source)


def transfer_photos(config) -> dict[str, np.ndarray]:
  """The contents no stage saw, {name: uint8 (h, w, 3)}, as `config.transfer` names
  them (`pristine.independent_photos`)."""
  c = config_defaults.section(config, "transfer")
  return pristine.independent_photos(sklearn=bool(c.sklearn),
                                     shared_dir=c.shared_dir or None,
                                     folders=tuple(c.folders))


def transfer_database(config, workdir, images: Mapping[str, np.ndarray]):
  """The transfer set: `images` distorted and labelled like mini-KADID (its types and
  levels, `config.transfer.size` or mini-KADID's size), cached in Stage 2's data
  folder."""
  c = config_defaults.section(config, "transfer")
  s2 = config_defaults.section(config, "stage2")
  mk = s2.get("mini_kadid", None)
  mk = mk.to_dict() if isinstance(mk, ml_collections.ConfigDict) else dict(mk or {})
  size = tuple(c.size) or tuple(mk.get("size", mini_kadid.DEFAULT_SIZE))
  data_dir = s2.data_dir or os.path.join(workdir, "data")
  return mini_kadid.load(data_dir, images=images, size=size, types=mk.get("types"),
                         levels=mk.get("levels"))


def transfer_features(workdir, fs_eval: feature_cache.FeatureSet, source,
                      batch_size: int) -> feature_cache.FeatureSet:
  """The features of the transfer set `source` by the backbone and extractor of the
  evaluation feature set `fs_eval` (label "<label>_transfer"), cached in the work
  directory like Stage 2's (a rerun reads them back)."""
  model, variables = feature_cache.backbone_from_feature_set(fs_eval, workdir)
  return feature_cache.cached_features(
      workdir, f"{fs_eval.label}_transfer", variables, fs_eval.info["weights"], source,
      model=model, kind=fs_eval.info["identity"]["kind"],
      input_scale=fs_eval.info["identity"]["input_scale"], batch_size=batch_size,
      progress=False)


def run_transfer(config, workdir) -> dict[str, Any]:
  """Scores the transfer set with the run's scoring model (and the other feature
  sets); writes stage3/transfer.json and transfer.md; returns the results."""
  c = config_defaults.section(config, "transfer")
  images = transfer_photos(config)
  out_dir = pathlib.Path(workdir) / regressor.STAGE_DIR
  res: dict[str, Any] = {"contents": sorted(images), "runs": [],
                         "stage1_contents": _stage1_contents(config)}
  if not images:
    res["note"] = ("no contents outside the training sets were found (install "
                   "scikit-learn for its sample photographs, or set "
                   "config.transfer.folders to a folder of your own photographs)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if atomic.is_writer():
      atomic.write_json(out_dir / "transfer.json", res, indent=1)
    return res
  reg, meta = regressor.load_regressor(workdir)
  primary, paths = feature_cache.feature_sets(workdir)
  sets = {primary: paths[primary]}
  if c.compare:
    sets.update({k: v for k, v in paths.items() if k != primary})
  first = feature_cache.load_feature_set(paths[primary])
  eval_contents = sorted(set(map(str, first.columns.get("content", []))))
  groups = {"transfer": list(images), "stage2/3": eval_contents}
  if config.get("stage1", None) is not None and config.stage1.source == "pristine":
    groups["stage1"] = [str(n) for n in pristine.stage1_source(
        tuple(config.stage1.pristine.sources),
        num_dead_leaves=int(config.stage1.pristine.num_dead_leaves),
        seed=int(config.stage1.pristine.seed)).index["content"]]
  pristine.check_disjoint(groups)
  source = transfer_database(config, workdir, images)
  y = np.asarray(source.index["score"], np.float64)
  groups_ct = np.asarray([f"{a}|{b}" for a, b in zip(source.index["content"],
                                                      source.index["dist_type"])])
  s3 = config_defaults.section(config, "stage3")
  results3 = json.loads((out_dir / "results.json").read_text())
  final = results3.get("final") or {}
  for label, path in sets.items():
    fs_eval = feature_cache.load_feature_set(path)
    fs = transfer_features(workdir, fs_eval, source, batch_size=int(c.batch_size))
    if label == primary:
      variables_r, hidden, dropout = reg, meta["hidden"], meta["dropout"]
    else:  # the scoring model's final fit, on this feature set for its own epochs
      ye = np.asarray(fs_eval.columns["score"], np.float64)
      xe = np.asarray(fs_eval.features, np.float32)
      fit = stage3.fit_regressor(
          s3, xe, ye, xe, ye, int(s3.seed0), keep_best=False,
          epochs=_final_epochs(results3, label, int(final.get("epochs", s3.epochs))))
      variables_r, hidden, dropout = fit.variables, s3.hidden, s3.dropout
    preds = {"regressor": regressor.predict(variables_r, np.asarray(fs.features),
                                         hidden=hidden, dropout=dropout)}
    alpha = _ridge_alpha(results3, label)
    if alpha is not None:  # the probe on all evaluation records, Stage 3's penalty
      xe = np.asarray(fs_eval.features, np.float32)
      ye = np.asarray(fs_eval.columns["score"], np.float64)
      preds["ridge"], _ = probes.ridge_probe(xe, ye, xe, ye, np.asarray(fs.features),
                                             (alpha,))
    for m, pred in preds.items():
      res["runs"].append({"features": label, "model": m,
                          **reporting.evaluate(pred, y, s3.plcc_fit),
                          "within_type_srocc": within_groups_srocc(pred, y, groups_ct),
                          "held_out_srocc": _held_out(results3, label, m)})
  res.update(eval_contents=f"mini-KADID's {len(eval_contents)} photographs",
             num_images=int(len(y)), num_types=len(set(source.index["dist_type"])),
             num_levels=len(set(source.index["level"])), features=primary,
             fit=meta.get("fit", f"repeat {meta.get('repeat')}"),
             note=mini_kadid.LABEL_NOTE + ".")
  out_dir.mkdir(parents=True, exist_ok=True)
  if atomic.is_writer():
    atomic.write_json(out_dir / "transfer.json", res, indent=1, default=float)
    atomic.write_text(out_dir / "transfer.md", markdown(res))
  return res
