"""Stage 2 of DeepFL-IQA: MLSP features of every image of an evaluation database,
extracted once and cached in the work directory (spec pipeline.md, Stage 2).

Each image is fed at its native resolution (no crop, no augmentation); a batch holds
images of one size (the last, partial batch of a size is padded with repeats, so every
size compiles once). Features come from `deepfl_jax.models.mlsp_extractor`: narrow
(N, 16928) by default, wide (N, 5, 5, 16928) as an option.

Cache layout (`<workdir>/stage2/`):
  <label>-<kind>-<key>/features.npy   float32 (N, D) or (N, 5, 5, D), record order
  <label>-<kind>-<key>/index.json     identity, weights source, the records' small fields
                                      (name, content, score, set, ...), metadata
  feature_sets.json                   {"primary": label, "sets": {label: folder}}
`key` is a digest of the VALUES of the backbone variables (not of a file name), the
architecture, kind, input scale, compute dtype and the database's record names and
scores: a rerun with the same weights reuses the cache; another checkpoint, another
file or another seed gets a new folder, never a stale one.

Config section `config.stage2` (ml_collections.ConfigDict; defaults in
`default_config()`):
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
    width, blocks and input_scale default to `config.model`'s (Stage 1's backbone)
    when the config has a `model` section; keys set in `config.stage2` win.
  compute_dtype: "float32" | "bfloat16".
  batch_size: images per forward pass (split over the local devices when divisible).
  progress: progress bar on stderr.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from typing import Any, Iterator, Mapping

import jax
import ml_collections
import numpy as np
from absl import logging

from deepfl_jax import atomic
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.models import keras_import
from deepfl_jax.models.mlsp import mlsp_extractor
from deepfl_jax.train import parallel
from deepfl_jax.train.config import compute_dtype
from deepfl_jax.train.progress import Progress

FORMAT_VERSION = 1
STAGE_DIR = "stage2"
POINTER = "feature_sets.json"
WEIGHT_KINDS = ("stage1", "random")  # besides a path
_KIND_LABELS = {"stage1": "stage1", "random": "random", "file": "imported"}


def default_config() -> ml_collections.ConfigDict:
  """`config.stage2` with its defaults (see the module docstring)."""
  c = ml_collections.ConfigDict()
  c.dataset = "mini_kadid"
  c.data_dir = ""
  c.manual_dir = ""
  c.builder_config = ""
  c.mini_kadid = ml_collections.ConfigDict()
  c.weights = "stage1"
  c.checkpoint_dir = "stage1/checkpoints"
  c.stage1_checkpoint = "best"
  c.random_seed = 0
  c.compare_random = True
  c.kind = "narrow"
  c.input_scale = "unit"
  c.width = 1.0
  c.blocks = (10, 20, 10)
  c.compute_dtype = "float32"
  c.batch_size = 16
  c.progress = True
  return c


def _section(config, name: str = "stage2", defaults=None) -> ml_collections.ConfigDict:
  """`config.<name>` over `defaults` (missing keys take the default; given values
  replace defaults whatever their type, e.g. None for "")."""
  out = (default_config() if defaults is None else defaults).to_dict()
  given = config.get(name, None) if config is not None else None
  if given is not None:
    out.update(given.to_dict() if isinstance(given, ml_collections.ConfigDict)
               else dict(given))
  return ml_collections.ConfigDict(out)


def _stage2_section(config) -> ml_collections.ConfigDict:
  defaults = default_config()
  model = config.get("model", None) if config is not None else None
  if model is not None:
    for k in ("width", "blocks", "input_scale"):
      if k in model:
        defaults[k] = model[k]
  return _section(config, "stage2", defaults)


# ------------------------------------------------------------------ identity, weights


def weights_digest(variables) -> str:
  """Hex digest of a variable tree's paths, shapes, dtypes and values (float32)."""
  h = hashlib.blake2b(digest_size=16)
  leaves, _ = jax.tree_util.tree_flatten_with_path(variables)
  for path, leaf in sorted(leaves, key=lambda pl: jax.tree_util.keystr(pl[0])):
    a = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def make_backbone(c: Mapping[str, Any]) -> irv2.InceptionResNetV2:
  """The InceptionResNetV2 of a stage2 section (width, blocks, compute_dtype)."""
  return irv2.InceptionResNetV2(width=float(c["width"]),
                                blocks=tuple(int(b) for b in c["blocks"]),
                                dtype=compute_dtype(c["compute_dtype"]))


def _latest_step(directory: str) -> int | None:
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  if not os.path.isdir(directory):
    return None
  mngr = ocp.CheckpointManager(directory, item_names=("state", "meta"))
  try:
    return mngr.latest_step()
  finally:
    mngr.close()


def _stage1_variables(workdir, checkpoint_dir: str, which: str = "best"
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
  v, info = _stage1_from_step_dir(os.path.join(directory, str(step)))
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
    return _stage1_variables(workdir, checkpoint_dir, stage1_checkpoint)
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


# ---------------------------------------------------------------------------- data


def _load_mini_kadid(data_dir, kwargs: dict, progress: bool):
  """`mini_kadid.load` with a bar counting the images generated on first use (minutes
  on a CPU; nothing is shown when the cache exists)."""
  from deepfl_jax.data import mini_kadid  # pylint: disable=import-outside-toplevel
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
  # pylint: disable=import-outside-toplevel
  from deepfl_jax.data import builders, pipeline
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


def _dataset_identity(columns: Mapping[str, list], metadata: Mapping[str, Any]) -> dict:
  h = hashlib.blake2b(digest_size=12)
  h.update(json.dumps([columns["name"], columns["score"]]).encode())
  return {"name": str(metadata.get("name", "")), "num_records": len(columns["name"]),
          "records_digest": h.hexdigest()}


# ---------------------------------------------------------------------- extraction


def _size_batches(records, batch_size: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(record indices (B,), uint8 images (B, H, W, 3)) of equal size, reading every
  record once in order; a size's last batch is padded by repeating its first image
  (padding rows carry index -1)."""
  pending: dict[tuple, list] = {}

  def flush(shape):
    rows = pending.pop(shape)
    idx = np.full(batch_size, -1, np.int64)
    idx[:len(rows)] = [i for i, _ in rows]
    imgs = [im for _, im in rows]
    imgs += [imgs[0]] * (batch_size - len(imgs))
    return idx, np.stack(imgs)

  for i in range(len(records)):
    img = np.asarray(records[i]["image"])
    if img.ndim != 3 or img.shape[-1] != 3:
      raise ValueError(f"record {i}: expected an RGB image (H, W, 3), got {img.shape}")
    if min(img.shape[:2]) < irv2.MIN_SIZE:
      raise ValueError(f"record {i}: image of {img.shape[:2]} is smaller than the "
                       f"backbone's minimum side {irv2.MIN_SIZE}")
    pending.setdefault(img.shape, []).append((i, img))
    if len(pending[img.shape]) == batch_size:
      yield flush(img.shape)
  for shape in list(pending):
    yield flush(shape)


def extract_features(variables, records, *, model: irv2.InceptionResNetV2,
                     kind: str = "narrow", input_scale: str = "unit",
                     batch_size: int = 16, progress: bool = True,
                     desc: str = "stage2 features",
                     image_sizes: dict | None = None) -> np.ndarray:
  """MLSP features (N, D) or (N, 5, 5, D) float32 of `records` (a sequence of dicts
  with "image" uint8 (H, W, 3), or of such arrays), in record order. `image_sizes`, if
  given, receives {(H, W): number of images} (the sizes the features were taken at).

  Batches over the local devices when `batch_size` divides evenly; device compute of
  one batch overlaps with the decoding of the next (JAX dispatch is asynchronous).
  """
  if batch_size <= 0:
    raise ValueError(f"config.stage2.batch_size must be >= 1, got {batch_size}")
  if len(records) and not isinstance(records[0], Mapping):
    records = [{"image": r} for r in records]
  from jax.sharding import NamedSharding  # pylint: disable=import-outside-toplevel
  from jax.sharding import PartitionSpec as P  # pylint: disable=import-outside-toplevel
  devices = jax.local_devices()
  multi = len(devices) > 1 and batch_size % len(devices) == 0
  mesh = parallel.make_mesh(devices if multi else devices[:1])
  # Weights go to the device(s) once: host (NumPy) weights bound into the extractor
  # would be copied to the device again with every batch.
  variables = jax.device_put(variables, NamedSharding(mesh, P()))
  put = (lambda x: jax.device_put(x, NamedSharding(mesh, P(parallel.DATA_AXIS)))
         ) if multi else None
  fn = mlsp_extractor(variables, kind=kind, input_scale=input_scale, model=model)
  n = len(records)
  out = None
  bar = Progress(n, desc=desc, enabled=progress, unit="images")
  done, inflight = 0, None

  def collect(item):
    nonlocal out, done
    idx, feats = item
    feats = np.asarray(feats, np.float32)
    if out is None:
      out = np.zeros((n,) + feats.shape[1:], np.float32)
    keep = idx >= 0
    out[idx[keep]] = feats[keep]
    done += int(keep.sum())
    bar.update(done, force=done == n)

  try:
    for idx, imgs in _size_batches(records, batch_size):
      if image_sizes is not None:
        hw = tuple(int(d) for d in imgs.shape[1:3])
        image_sizes[hw] = image_sizes.get(hw, 0) + int((idx >= 0).sum())
      x = imgs.astype(np.float32) / np.float32(255.0)
      feats = fn(put(x) if put is not None else x)  # dispatched, not waited for
      if inflight is not None:
        collect(inflight)
      inflight = (idx, feats)
    if inflight is not None:
      collect(inflight)
  finally:
    bar.close()
  if out is None:
    raise ValueError("the database has no records")
  return out


# --------------------------------------------------------------------------- cache


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
  cols = {k: np.asarray(v, dtype=object if v and isinstance(v[0], str) else None)
          for k, v in info["records"].items()}
  return FeatureSet(info["label"], path, feats, cols, info)


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
      "format": FORMAT_VERSION, "weights_digest": weights_digest(variables),
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
  feats = extract_features(variables, source.records, model=model, kind=kind,
                           input_scale=input_scale, batch_size=batch_size,
                           progress=progress, desc=f"stage2 {label} features",
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
  cols = {k: np.asarray(v, dtype=object if v and isinstance(v[0], str) else None)
          for k, v in columns.items()}
  return FeatureSet(label, folder, feats, cols, info, reused=False)


def feature_sets(workdir) -> tuple[str, dict[str, pathlib.Path]]:
  """(primary label, {label: folder}) recorded by the last `run_stage2`."""
  pointer = pathlib.Path(workdir) / STAGE_DIR / POINTER
  if not pointer.is_file():
    raise FileNotFoundError(f"{pointer} is missing: run Stage 2 on this work directory "
                            "first")
  p = json.loads(pointer.read_text())
  root = pointer.parent
  return p["primary"], {k: root / v for k, v in p["sets"].items()}


def weights_label(weights: str) -> str:
  """Feature-set label of a weights setting: stage1 -> "stage1", random -> "random",
  a file or directory -> "imported"."""
  return weights if weights in WEIGHT_KINDS else "imported"


def run_stage2(config, workdir, *, source=None, variables=None,
               weights_info: Mapping[str, Any] | None = None,
               model: irv2.InceptionResNetV2 | None = None) -> dict[str, FeatureSet]:
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
  c = _stage2_section(config)
  if c.kind not in ("narrow", "wide"):
    raise ValueError(f"config.stage2.kind must be 'narrow' or 'wide', got {c.kind!r}")
  if c.input_scale not in ("unit", "keras"):
    raise ValueError(f"config.stage2.input_scale must be 'unit' or 'keras', got "
                     f"{c.input_scale!r}")
  model = make_backbone(c) if model is None else model
  if variables is None:  # first: a missing checkpoint fails before any data work
    variables, weights_info = resolve_weights(
        c.weights, workdir, model=model, checkpoint_dir=c.checkpoint_dir,
        seed=c.random_seed, stage1_checkpoint=c.stage1_checkpoint)
    label = weights_label(c.weights)
  else:
    weights_info = dict(weights_info or {"kind": "given"})
    label = _KIND_LABELS.get(weights_info.get("kind"), "given")
  source = open_dataset(c, workdir) if source is None else source
  jobs = [(label, variables, weights_info)]
  if c.compare_random and label != "random":
    rv, rinfo = resolve_weights("random", workdir, model=model, seed=c.random_seed)
    jobs.append(("random", rv, rinfo))
  out = {}
  for lab, v, info in jobs:
    fs = cached_features(workdir, lab, v, info, source, model=model, kind=c.kind,
                         input_scale=c.input_scale, batch_size=int(c.batch_size),
                         progress=bool(c.progress))
    out[lab] = fs
  if jax.process_index() == 0:
    atomic.write_json(pathlib.Path(workdir) / STAGE_DIR / POINTER, {
        "primary": label, "sets": {k: fs.path.name for k, fs in out.items()},
        "stage2": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in c.to_dict().items()}}, indent=1, default=str)
  return out


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
    v, _ = _stage1_from_step_dir(winfo["checkpoint"])
  elif kind == "random":
    v = jax.tree.map(np.asarray, irv2.init_variables(model, seed=int(winfo["seed"])))
  elif kind == "file":
    v, _ = resolve_weights(winfo["path"], workdir, model=model)
  else:
    raise ValueError(f"{fs.path}: features were made from weights passed in memory "
                     f"({winfo}); they cannot be reloaded for scoring")
  if weights_digest(v) != ident["weights_digest"]:
    raise ValueError(f"the backbone weights at {winfo} changed since Stage 2 extracted "
                     f"{fs.path.name}; rerun Stages 2 and 3")
  return model, v


def _stage1_from_step_dir(step_dir: str) -> tuple[dict, dict]:
  step_dir = pathlib.Path(step_dir)
  if not step_dir.is_dir():
    raise FileNotFoundError(f"the Stage 1 checkpoint {step_dir} used by Stage 2 is gone")
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel
  mngr = ocp.CheckpointManager(step_dir.parent.absolute(), item_names=("state", "meta"))
  try:
    state = mngr.restore(int(step_dir.name), args=ocp.args.Composite(
        state=ocp.args.StandardRestore()))["state"]
  finally:
    mngr.close()
  params, stats = state["params"], state.get("batch_stats") or {}
  if "backbone" not in params:
    raise ValueError(f"{step_dir}: the Stage 1 state has no params['backbone'] (keys "
                     f"{sorted(params)})")
  v = {"params": params["backbone"], "batch_stats": stats.get("backbone", {})}
  return jax.tree.map(np.asarray, v), {"kind": "stage1", "checkpoint": str(step_dir)}
