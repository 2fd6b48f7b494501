"""Stage 2 of DeepFL-IQA: MLSP features of every image of an evaluation database,
extracted once and cached in the work directory (Lin, Hosu, Saupe 2020, arXiv
2001.08113: features of the whole image at native resolution).

`run_stage2` opens the database, resolves the backbone weights (`train.weights`),
extracts each feature set (`train.features`) unless the cache holds it
(`train.feature_cache`, which also describes the folder layout), and records the sets
for Stage 3 and the `deepfl-iqa` command.

Config section `config.stage2` (defaults: `deepfl_jax.config_defaults.stage2_config`):
  dataset: "mini_kadid" (the embedded default) or a builder name of
    `deepfl_jax.data.builders.BUILDERS` ("kadid10k", "koniq10k", ...).
  data_dir: TFDS data_dir of a built database / cache folder of mini-KADID ("" =
    `<workdir>/data`).
  manual_dir: where the user unpacked the database ("" = already built in data_dir).
  builder_config: TFDS config of the builder ("" = its default, e.g. "raise").
  mini_kadid: ConfigDict of keyword arguments of `data.mini_kadid.load` (photos, size,
    types, levels, seed); used when dataset == "mini_kadid".
  weights: "stage1" (a Stage 1 checkpoint, see stage1_checkpoint; its
    params["backbone"] / batch_stats["backbone"]), "random" (seeded random init), or a
    path: a Keras 2 .h5/.hdf5 file or an orbax directory (`models.keras_import`).
  checkpoint_dir: Stage 1 checkpoint folder relative to the workdir
    ("stage1/checkpoints", where `train.stage1.run_stage1` writes).
  stage1_checkpoint: "best" (default: the best-by-validation state in the `best`
    folder beside checkpoint_dir; the latest when the run had no validation, with a
    warning) or "latest".
  random_seed: seed of the random-weight backbone.
  compare_random: also extract features of the random-weight backbone (label
    "random"), so Stage 3 reports trained vs untrained features side by side.
  kind: "narrow" | "wide".  input_scale: "unit" (x/255, DeepFL-IQA) | "keras".
  width, blocks: backbone size (Keras: 1.0, (10, 20, 10)); must match the weights.
    In configs made by `config_defaults.base_config`, width, blocks and input_scale
    are `config.model`'s (Stage 1's backbone): one value, set through either key.
  compute_dtype: "float32" | "bfloat16".
  batch_size: images per forward pass (split over the local devices when divisible).
  progress: progress bar on stderr.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import ml_collections

from deepfl_jax import config_defaults
from deepfl_jax.data import builders, mini_kadid, pipeline
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.train import feature_cache
from deepfl_jax.train import weights as weights_lib
from deepfl_jax.train.progress import Progress


def _load_mini_kadid(data_dir, kwargs: dict, progress: bool):
  """`mini_kadid.load` with a bar counting the images generated on first use (minutes
  on a CPU; nothing is shown when the cache exists)."""
  levels = len(kwargs.get("levels") or range(mini_kadid.NUM_LEVELS))
  total = (len(kwargs.get("photos") or mini_kadid.PHOTOS) * levels *
           len(kwargs.get("types") or range(mini_kadid.NUM_TYPES)))
  bar = Progress(total, desc="stage2 making mini-KADID", unit="images",
                 enabled=progress and jax.process_index() == 0)
  made = [0]

  def step(_):
    made[0] += levels
    quarter = made[0] * 4 // total != (made[0] - levels) * 4 // total
    bar.update(made[0], force=quarter or made[0] == total)  # a line per quarter in logs

  try:
    return mini_kadid.load(data_dir, progress=step, **kwargs)
  finally:
    if made[0]:
      bar.close()


def open_dataset(c: Mapping[str, Any], workdir):
  """The evaluation database (`data.pipeline.IqaSource`) named by a stage2 section."""
  data_dir = c["data_dir"] or os.path.join(workdir, "data")
  name = c["dataset"]
  if name == "mini_kadid":
    kw = c.get("mini_kadid", None)
    kwargs = kw.to_dict() if isinstance(kw, ml_collections.ConfigDict) else dict(kw or {})
    if "size" in kwargs:
      kwargs["size"] = tuple(kwargs["size"])
    return _load_mini_kadid(data_dir, kwargs, bool(c.get("progress", True)))
  if name not in builders.BUILDERS:
    raise ValueError(f"config.stage2.dataset: unknown dataset {name!r}; use "
                     f"'mini_kadid' or one of {sorted(builders.BUILDERS)}")
  if c["manual_dir"]:
    builder = builders.prepare(name, c["manual_dir"], data_dir,
                               config=c["builder_config"] or None)
    return pipeline.load_source(builder)
  try:
    return pipeline.load_source(name, data_dir, config=c["builder_config"] or None,
                                with_references=False)
  except Exception as e:  # pylint: disable=broad-except
    raise FileNotFoundError(
        f"config.stage2.dataset={name!r} is not built in config.stage2.data_dir="
        f"{data_dir!r} ({type(e).__name__}: {e}); set config.stage2.manual_dir to the "
        "folder where you unpacked it") from e


def run_stage2(config, workdir, *, source=None, variables=None,
               weights_info: Mapping[str, Any] | None = None,
               model: irv2.InceptionResNetV2 | None = None) -> dict[str, feature_cache.FeatureSet]:
  """Extracts (or reuses) the MLSP features of the evaluation database.

  Args:
    config: experiment config with a `stage2` section (module docstring).
    workdir: the run's work directory.
    source: the database (`data.pipeline.IqaSource`); default: opened from the config.
    variables: backbone variables to use instead of `config.stage2.weights` (with
      `weights_info`, a JSON description of them).
    model: the backbone module (default from width / blocks / compute_dtype).

  Returns {label: FeatureSet}, the primary set first ("stage1" / "imported" /
  "random"), then "random" when `compare_random`; also written to
  `<workdir>/stage2/feature_sets.json` for Stage 3 and the `deepfl-iqa` command.
  """
  c = config_defaults.section(config, "stage2")
  if c.kind not in ("narrow", "wide"):
    raise ValueError(f"config.stage2.kind must be 'narrow' or 'wide', got {c.kind!r}")
  if c.input_scale not in ("unit", "keras"):
    raise ValueError(f"config.stage2.input_scale must be 'unit' or 'keras', got "
                     f"{c.input_scale!r}")
  model = weights_lib.make_backbone(c) if model is None else model
  if variables is None:  # first: a missing checkpoint fails before any data work
    variables, weights_info = weights_lib.resolve_weights(
        c.weights, workdir, model=model, checkpoint_dir=c.checkpoint_dir,
        seed=c.random_seed, stage1_checkpoint=c.stage1_checkpoint)
    label = weights_lib.weights_label(c.weights)
  else:
    weights_info = dict(weights_info or {"kind": "given"})
    label = weights_lib.KIND_LABELS.get(weights_info.get("kind"), "given")
  source = open_dataset(c, workdir) if source is None else source
  jobs = [(label, variables, weights_info)]
  if c.compare_random and label != "random":
    rv, rinfo = weights_lib.resolve_weights("random", workdir, model=model,
                                            seed=c.random_seed)
    jobs.append(("random", rv, rinfo))
  out = {}
  for lab, v, info in jobs:
    out[lab] = feature_cache.cached_features(
        workdir, lab, v, info, source, model=model, kind=c.kind,
        input_scale=c.input_scale, batch_size=int(c.batch_size),
        progress=bool(c.progress))
  feature_cache.write_pointer(workdir, label, out, {
      k: (list(v) if isinstance(v, tuple) else v) for k, v in c.to_dict().items()})
  return out
