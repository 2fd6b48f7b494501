"""Backbone weights of Stages 2 and 3: where they come from and what identifies them.

`config.stage2.weights` names the source: "stage1" (the backbone of a Stage 1
checkpoint, read through `train.checkpoint.Checkpointer` as Stage 1 wrote it), "random"
(seeded initialisation) or a path (a Keras 2 .h5/.hdf5 file or an orbax folder,
`models.keras_import`). `weights_digest` hashes the VALUES of the variables, so the
feature cache (`train.feature_cache`) never mistakes one set of weights for another.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Any, Mapping

import jax
import numpy as np
from absl import logging

from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.models import keras_import
from deepfl_jax.train.checkpoint import Checkpointer
from deepfl_jax.train.config import compute_dtype

WEIGHT_KINDS = ("stage1", "random")  # besides a path
# Feature-set label of a weights description's "kind" (`run_stage2`'s given weights).
KIND_LABELS = {"stage1": "stage1", "random": "random", "file": "imported"}


def weights_digest(variables) -> str:
  """Hex digest of a variable tree's paths, shapes, dtypes and values (float32)."""
  h = hashlib.blake2b(digest_size=16)
  leaves, _ = jax.tree_util.tree_flatten_with_path(variables)
  for path, leaf in sorted(leaves, key=lambda pl: jax.tree_util.keystr(pl[0])):
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def weights_label(weights: str) -> str:
  """Feature-set label of a weights setting: stage1 -> "stage1", random -> "random",
  a file or directory -> "imported"."""
  return weights if weights in WEIGHT_KINDS else "imported"


def make_backbone(c: Mapping[str, Any], bn_momentum: float = irv2.BN_MOMENTUM
                  ) -> irv2.InceptionResNetV2:
  """The InceptionResNetV2 of a stage2 section (width, blocks, compute_dtype);
  `bn_momentum` matters only when it trains (fine-tuning: `config.model.bn_momentum`)."""
  return irv2.InceptionResNetV2(width=float(c["width"]),
                                blocks=tuple(int(b) for b in c["blocks"]),
                                dtype=compute_dtype(c["compute_dtype"]),
                                bn_momentum=float(bn_momentum))


def _latest_step(directory: str) -> int | None:
  if not os.path.isdir(directory):
    return None
  with Checkpointer(directory, read_only=True) as ckpt:
    return ckpt.latest_step()


def stage1_backbone(step_dir) -> tuple[dict, dict]:
  """(backbone variables {"params", "batch_stats"} as NumPy, source description) of
  the Stage 1 checkpoint folder `<checkpoints>/<step>`: its state's params["backbone"]
  and batch_stats["backbone"] (every Stage 1 task stores its head beside them)."""
  step_dir = pathlib.Path(step_dir)
  if not step_dir.is_dir():
    raise FileNotFoundError(f"the Stage 1 checkpoint {step_dir} used by Stage 2 is gone")
  with Checkpointer(step_dir.parent, read_only=True) as ckpt:
    state = ckpt.restore(None, step=int(step_dir.name))
  params, stats = state["params"], state.get("batch_stats") or {}
  if "backbone" not in params:
    raise ValueError(f"{step_dir}: the Stage 1 state has no params['backbone'] (keys "
                     f"{sorted(params)})")
  v = {"params": params["backbone"], "batch_stats": stats.get("backbone", {})}
  return jax.tree.map(np.asarray, v), {"kind": "stage1", "checkpoint": str(step_dir)}


def stage1_variables(workdir, checkpoint_dir: str, which: str = "best"
                     ) -> tuple[dict, dict]:
  """Stage 1's backbone from its best-by-validation checkpoint (`<run>/best`, beside
  `checkpoint_dir`) or its latest one; "best" falls back to the latest, with a
  warning, for a run without validation (config.stage1.val_fraction = 0)."""
  if which not in ("best", "latest"):
    raise ValueError(f"config.stage2.stage1_checkpoint must be 'best' or 'latest', got "
                     f"{which!r}")
  directory = os.path.abspath(os.path.join(workdir,
                                           checkpoint_dir or "stage1/checkpoints"))
  if not os.path.isdir(directory):
    raise FileNotFoundError(
        f"config.stage2.weights='stage1': no Stage 1 checkpoints in {directory}; run "
        "Stage 1 first, or set config.stage2.weights to a Keras .h5 file, an orbax "
        "directory or 'random'")
  chosen = "latest"
  if which == "best":
    best_dir = os.path.join(os.path.dirname(directory), "best")
    step = _latest_step(best_dir)
    if step is not None:
      directory, chosen = best_dir, "best"
    else:
      logging.warning("config.stage2.stage1_checkpoint='best': the Stage 1 run has no "
                      "validation checkpoint in %s (validation off?); using its latest "
                      "checkpoint", best_dir)
  if chosen == "latest":
    step = _latest_step(directory)
    if step is None:
      raise FileNotFoundError(f"config.stage2.weights='stage1': {directory} holds no "
                              "checkpoint; run Stage 1 first")
  v, info = stage1_backbone(os.path.join(directory, str(step)))
  bad = [jax.tree_util.keystr(path) for path, leaf in
         jax.tree_util.tree_flatten_with_path(v)[0] if not np.all(np.isfinite(leaf))]
  if bad:  # e.g. a run from before Stage 1 stopped on NaN/inf
    raise ValueError(f"the Stage 1 checkpoint {info['checkpoint']} has non-finite "
                     f"weights ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); "
                     "use an earlier checkpoint or rerun Stage 1")
  return v, dict(info, step=int(step), selection=chosen)


def resolve_weights(weights: str, workdir, *, model: irv2.InceptionResNetV2,
                    checkpoint_dir: str = "stage1/checkpoints", seed: int = 0,
                    stage1_checkpoint: str = "best") -> tuple[dict, dict]:
  """(variables {"params", "batch_stats"}, JSON description of their source) for
  `config.stage2.weights`: "stage1" (its `stage1_checkpoint`: "best" | "latest"),
  "random" or a Keras h5 / orbax path."""
  if weights == "stage1":
    return stage1_variables(workdir, checkpoint_dir, stage1_checkpoint)
  if weights == "random":
    v = irv2.init_variables(model, seed=int(seed))
    return jax.tree.map(np.asarray, v), {"kind": "random", "seed": int(seed)}
  path = pathlib.Path(os.fspath(weights)).expanduser()
  if not path.exists():
    raise FileNotFoundError(
        f"config.stage2.weights={weights!r}: no such file or directory; give 'stage1', "
        "'random', a Keras .h5 file or an orbax checkpoint directory")
  v = keras_import.load_variables(path, model, extra="ignore")
  return (jax.tree.map(np.asarray, {"params": v["params"],
                                    "batch_stats": v["batch_stats"]}),
          {"kind": "file", "path": str(path.absolute())})
