"""The Stage 2 feature cache: features of one backbone on one database, kept in the
work directory under a key of everything that determines them.

Layout (`<workdir>/stage2/`):
  <label>-<kind>-<key>/features.npy   float32 (N, D) or (N, 5, 5, D), record order
  <label>-<kind>-<key>/index.json     identity, weights source, the records' small fields
                                      (name, content, score, set, ...), metadata
  feature_sets.json                   {"primary": label, "sets": {label: folder}}
`key` is a digest of the VALUES of the backbone variables (`weights.weights_digest`, not
a file name), the architecture, kind, input scale, compute dtype and the database's
record names and scores: a rerun with the same weights reuses the cache; another
checkpoint, another file or another seed gets a new folder, never a stale one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import time
from typing import Any, Mapping

import jax
import numpy as np

from deepfl_jax import atomic
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.train import features as features_lib
from deepfl_jax.train import weights as weights_lib
from deepfl_jax.train.config import compute_dtype

FORMAT_VERSION = 1
STAGE_DIR = "stage2"
POINTER = "feature_sets.json"


@dataclasses.dataclass
class FeatureSet:
  """Cached features of one backbone on one database.

  features: float32 (N, D) or (N, 5, 5, D) (memory-mapped when loaded from disk);
  columns: record fields (name, content, score, ...) as NumPy arrays; info: the whole
  index.json; reused: True when this call found the cache instead of extracting.
  """
  label: str
  path: pathlib.Path
  features: np.ndarray
  columns: dict[str, np.ndarray]
  info: dict[str, Any]
  reused: bool = False

  @property
  def metadata(self) -> dict[str, Any]:
    return self.info.get("metadata", {})


def _json_value(v):
  if isinstance(v, bytes):
    return v.decode("utf-8")
  if isinstance(v, np.generic):
    return v.item()
  return v


def _index_columns(source) -> dict[str, list]:
  """The record index columns that are scalars (name, content, score, set, ...)."""
  out = {}
  for k, col in source.index.items():
    col = np.asarray(col)
    if col.ndim != 1 or len(col) != len(source):
      continue
    vals = [_json_value(v) for v in col.tolist()]
    if all(isinstance(v, (str, int, float, bool)) for v in vals):
      out[k] = vals
  for need in ("name", "score"):
    if need not in out:
      raise ValueError(f"the database index has no {need!r} column (fields: "
                       f"{sorted(source.index)})")
  return out


def _columns_as_arrays(columns: Mapping[str, list]) -> dict[str, np.ndarray]:
  return {k: np.asarray(v, dtype=object if v and isinstance(v[0], str) else None)
          for k, v in columns.items()}


def _dataset_identity(columns: Mapping[str, list], metadata: Mapping[str, Any]) -> dict:
  h = hashlib.blake2b(digest_size=12)
  h.update(json.dumps([columns["name"], columns["score"]]).encode())
  return {"name": str(metadata.get("name", "")), "num_records": len(columns["name"]),
          "records_digest": h.hexdigest()}


def load_feature_set(path, mmap: bool = True) -> FeatureSet:
  """A feature folder written by `cached_features`."""
  path = pathlib.Path(path)
  index_path = path / "index.json"
  if not index_path.is_file():
    raise FileNotFoundError(f"{path} holds no Stage 2 features (index.json missing); "
                            "run Stage 2")
  info = json.loads(index_path.read_text())
  feats = np.load(path / "features.npy", mmap_mode="r" if mmap else None)
  if list(feats.shape) != info["shape"]:
    raise ValueError(f"{path}/features.npy has shape {feats.shape}, index.json says "
                     f"{info['shape']}: delete the folder and rerun Stage 2")
  return FeatureSet(info["label"], path, feats, _columns_as_arrays(info["records"]), info)


def cached_features(workdir, label: str, variables, weights_info: Mapping[str, Any],
                    source, *, model: irv2.InceptionResNetV2, kind: str = "narrow",
                    input_scale: str = "unit", batch_size: int = 16,
                    progress: bool = True) -> FeatureSet:
  """Features of `source` (an IqaSource) under `variables`, from the cache when one
  with the same identity exists, else extracted and written (process 0 writes)."""
  if kind not in ("narrow", "wide"):
    raise ValueError(f"config.stage2.kind must be 'narrow' or 'wide', got {kind!r}")
  columns = _index_columns(source)
  metadata = {k: _json_value(v) for k, v in dict(source.metadata).items()
              if isinstance(_json_value(v), (str, int, float, bool))}
  identity = {
      "format": FORMAT_VERSION, "weights_digest": weights_lib.weights_digest(variables),
      "model": {"width": float(model.width), "blocks": [int(b) for b in model.blocks],
                "dtype": np.dtype(model.dtype).name},
      "kind": kind, "input_scale": input_scale,
      "dataset": _dataset_identity(columns, metadata)}
  key = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(),
                        digest_size=6).hexdigest()
  folder = pathlib.Path(workdir) / STAGE_DIR / f"{label}-{kind}-{key}"
  if (folder / "index.json").is_file():
    try:
      fs = load_feature_set(folder)
      if fs.info.get("identity") == identity:
        fs.reused = True
        return fs
    except (ValueError, OSError, KeyError, json.JSONDecodeError):
      pass  # a broken cache is rebuilt below
  t0 = time.perf_counter()
  sizes = {}
  feats = features_lib.extract_features(
      variables, source.records, model=model, kind=kind, input_scale=input_scale,
      batch_size=batch_size, progress=progress, desc=f"stage2 {label} features",
      image_sizes=sizes)
  info = {"label": label, "key": key, "identity": identity,
          # [[H, W, count], ...], most frequent first: `deepfl-iqa score` names them.
          "image_sizes": [[h, w, n] for (h, w), n in
                          sorted(sizes.items(), key=lambda kv: -kv[1])],
          "weights": dict(weights_info), "shape": list(feats.shape), "dtype": "float32",
          "seconds": round(time.perf_counter() - t0, 3),
          "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "metadata": metadata, "records": columns}
  if jax.process_index() == 0:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.json").unlink(missing_ok=True)  # index.json last = complete
    atomic.save_npy(folder / "features.npy", feats)
    atomic.write_json(folder / "index.json", info, indent=1)
  return FeatureSet(label, folder, feats, _columns_as_arrays(columns), info, reused=False)


def write_pointer(workdir, primary: str, sets: Mapping[str, FeatureSet],
                  settings: Mapping[str, Any]) -> None:
  """Records the feature sets of a Stage 2 run (`feature_sets` reads them back)."""
  if jax.process_index() == 0:
    atomic.write_json(pathlib.Path(workdir) / STAGE_DIR / POINTER, {
        "primary": primary, "sets": {k: fs.path.name for k, fs in sets.items()},
        "stage2": dict(settings)}, indent=1, default=str)


def feature_sets(workdir) -> tuple[str, dict[str, pathlib.Path]]:
  """(primary label, {label: folder}) recorded by the last `run_stage2`."""
  pointer = pathlib.Path(workdir) / STAGE_DIR / POINTER
  if not pointer.is_file():
    raise FileNotFoundError(f"{pointer} is missing: run Stage 2 on this work directory "
                            "first")
  p = json.loads(pointer.read_text())
  root = pointer.parent
  return p["primary"], {k: root / v for k, v in p["sets"].items()}


def backbone_from_feature_set(fs: FeatureSet, workdir
                              ) -> tuple[irv2.InceptionResNetV2, dict]:
  """The backbone (module, variables) that produced `fs`, reloaded from its recorded
  source and checked against its recorded digest (for scoring new images)."""
  ident, winfo = fs.info["identity"], fs.info["weights"]
  m = ident["model"]
  model = irv2.InceptionResNetV2(width=m["width"], blocks=tuple(m["blocks"]),
                                 dtype=np.dtype(m["dtype"]) if m["dtype"] != "bfloat16"
                                 else compute_dtype("bfloat16"))
  kind = winfo.get("kind")
  if kind == "stage1":
    v, _ = weights_lib.stage1_backbone(winfo["checkpoint"])
  elif kind == "random":
    v = jax.tree.map(np.asarray, irv2.init_variables(model, seed=int(winfo["seed"])))
  elif kind == "file":
    v, _ = weights_lib.resolve_weights(winfo["path"], workdir, model=model)
  else:
    raise ValueError(f"{fs.path}: features were made from weights passed in memory "
                     f"({winfo}); they cannot be reloaded for scoring")
  if weights_lib.weights_digest(v) != ident["weights_digest"]:
    raise ValueError(f"the backbone weights at {winfo} changed since Stage 2 extracted "
                     f"{fs.path.name}; rerun Stages 2 and 3")
  return model, v
