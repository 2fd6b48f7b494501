"""KADIS-700k generation: the paper's flow (generate once, train from stored images).

Every pristine image of the `kadis700k` builder is distorted at its assigned type
(`dist_type`, incl. the 7/8 quirk) and all 5 levels, rounded to 8 bits (KADIS's BMPs
held 8 bits), labelled with the 11 raw FR scores and written as the TFDS dataset
`kadis700k_generated` (array_record, lossless PNG; builders/kadis700k_generated.py).

- Sharding: the records are cut into shards of `shard_size` pristine images; shard k
  belongs to process k mod P. A process runs one compiled program over its devices
  (`synthesis.synthesize_local` in `shard_map`): each device distorts and labels one
  pristine image (its 5 levels, one run of the type) per call.
- Determinism: image (record i, level l) uses the key split(fold_in(PRNGKey(seed),
  i), 5)[l - 1], so the records do not depend on the number of devices or processes.
  Type 22 uses MATLAB's exact host Otsu search by default (`host_otsu`).
- Resume: a shard is written to a temporary file and renamed when complete; a rerun
  skips finished shards (never rewrites them) and redoes interrupted ones. The
  dataset_info (split sizes, name index) is written when the last shard is done,
  with `fr_scores.npy` (all scores, for the Stage-1 equaliser).
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from deepfl_jax.data import pipeline, synthesis
from deepfl_jax.data.builders.kadis700k_generated import Kadis700kGenerated
from deepfl_jax.distortions.registry import DISTORTIONS
from deepfl_jax.train import parallel
from deepfl_jax.train.progress import Progress

NUM_LEVELS = 5
SPLIT = "full"
_INDEX_DIR = "generate_index"
_RUN_FILE = "generate_run.json"
SCORES_FILE = "fr_scores.npy"


def record_keys(seed: int, indices) -> jnp.ndarray:
  """(n * 5,) keys of records `indices` (n,), levels 1..5 in order (traceable)."""
  base = jax.random.PRNGKey(seed)
  keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(base, i), NUM_LEVELS))(
      jnp.asarray(indices, jnp.uint32))
  return keys.reshape((-1,) + keys.shape[2:])


@functools.lru_cache(maxsize=8)
def make_program(mesh, *, seed: int, size: tuple[int, int], types=None,
                 host_otsu: bool = True, color_mode: str = "rgb2gray_uint8"):
  """jit(shard_map): (images (D, H, W, 3) uint8, types (D,), indices (D,)) sharded over
  `mesh` -> (distorted (5D, H, W, 3) uint8, raw scores (5D, 11)). Cached: a resumed
  or repeated generation in the same process reuses the compiled program."""
  cfg = synthesis.SynthesisConfig(crop_size=tuple(size), batch_size=1,
                                  assignment="kadis", types=types, quantize=True,
                                  color_mode=color_mode, host_otsu=host_otsu)
  spec = jax.P(parallel.DATA_AXIS)

  def per_device(images, rec_types, indices):
    types_ = jnp.repeat(rec_types, NUM_LEVELS)
    levels = jnp.tile(jnp.arange(1, NUM_LEVELS + 1, dtype=jnp.int32), images.shape[0])
    out = synthesis.synthesize_local(images, types_, levels, record_keys(seed, indices),
                                     config=cfg)
    return jnp.round(out["image"] * 255.0).astype(jnp.uint8), out["scores"]

  return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(spec, spec, spec),
                               out_specs=(spec, spec), check_vma=False))


def _builder(data_dir):
  return Kadis700kGenerated(data_dir=str(data_dir), file_format="array_record")


def _shard_path(ds_dir: pathlib.Path, k: int, num_shards: int) -> pathlib.Path:
  return ds_dir / f"kadis700k_generated-{SPLIT}.array_record-{k:05d}-of-{num_shards:05d}"


def _atomic_write(path: pathlib.Path, write) -> None:
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  write(tmp)
  os.replace(tmp, path)


def _png(image: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  return buf.getvalue()


def _names(name: str, t: int) -> list[str]:
  stem = name.rsplit(".", 1)[0]
  return [f"{stem}_{DISTORTIONS[t].kadis_name}_{lv:02d}.png"
          for lv in range(1, NUM_LEVELS + 1)]


def _check_run(ds_dir: pathlib.Path, run: dict) -> None:
  path = ds_dir / _RUN_FILE
  if path.exists():
    old = json.loads(path.read_text())
    if old != run:
      diff = {k: (old.get(k), v) for k, v in run.items() if old.get(k) != v}
      raise ValueError(f"{ds_dir} holds a generation with other settings {diff} "
                       "(stored, requested); use another data_dir or the same settings")
  else:
    _atomic_write(path, lambda p: p.write_text(json.dumps(run)))


def generate(source, data_dir, *, seed: int = 0, shard_size: int = 1000,
             types: Sequence[int] | None = None, host_otsu: bool = True,
             devices: Sequence[jax.Device] | None = None,
             process_index: int | None = None, process_count: int | None = None,
             progress: bool = True) -> dict:
  """Writes (or resumes) `kadis700k_generated` under `data_dir` from `source` (the
  kadis700k builder's records: image, name, dist_type).

  Args:
    types: the type ids compiled in (default all 25); records of other types are an
      error. host_otsu: MATLAB's exact float64 Otsu search for type 22 (default).
    devices: this process's devices (default all local ones).
    process_index / process_count: this process's shards (default from jax).

  Returns {"written", "skipped", "num_shards", "finalized"}.
  """
  p = jax.process_index() if process_index is None else process_index
  n_proc = jax.process_count() if process_count is None else process_count
  devices = jax.local_devices() if devices is None else list(devices)
  n = len(source)
  if n == 0:
    raise ValueError("no pristine images to generate from")
  builder = _builder(data_dir)
  ds_dir = pathlib.Path(builder.data_dir)
  ds_dir.mkdir(parents=True, exist_ok=True)
  (ds_dir / _INDEX_DIR).mkdir(exist_ok=True)
  num_shards = math.ceil(n / shard_size)
  _check_run(ds_dir, {"seed": int(seed), "shard_size": int(shard_size),
                      "num_records": int(n), "host_otsu": bool(host_otsu),
                      "types": None if types is None else sorted(int(t) for t in types)})
  mine = [k for k in range(num_shards) if k % n_proc == p]
  todo = [k for k in mine if not _shard_path(ds_dir, k, num_shards).exists()]
  skipped = len(mine) - len(todo)          # finished by an earlier run
  mesh = parallel.make_mesh(devices)
  sharding = jax.NamedSharding(mesh, jax.P(parallel.DATA_AXIS))
  n_dev = len(devices)
  programs = {}
  total = sum(min(n, (k + 1) * shard_size) - k * shard_size for k in todo) * NUM_LEVELS
  bar = Progress(total, desc="generate", examples_per_step=1,
                 enabled=progress and p == 0)
  done = 0
  features = builder.info.features
  for k in todo:
    rows = list(range(k * shard_size, min(n, (k + 1) * shard_size)))
    serialized, index = [], {"name": [], "content": [], "dist_type": [], "level": [],
                             "fr_scores": []}
    for c in range(0, len(rows), n_dev):
      chunk = rows[c:c + n_dev]
      recs = [source[i] if not hasattr(source, "records") else source.records[i]
              for i in chunk]
      images = [np.asarray(r["image"])[..., :3] for r in recs]
      if len({im.shape for im in images}) > 1:
        raise ValueError(f"shard {k}: pristine images of different sizes in one call "
                         f"({sorted({im.shape for im in images})}); KADIS images are "
                         "512x384")
      rec_types = [int(np.asarray(r["dist_type"])) for r in recs]
      if types is not None and not set(rec_types) <= set(types):
        raise ValueError(f"records of types {sorted(set(rec_types) - set(types))} are "
                         f"outside types {tuple(types)}")
      pad = n_dev - len(chunk)      # the last call of a shard: repeat the last record
      batch = np.stack(images + images[-1:] * pad)
      shape = batch.shape[1:3]
      if shape not in programs:
        programs[shape] = make_program(mesh, seed=seed, size=tuple(shape),
                                       types=None if types is None else tuple(types),
                                       host_otsu=host_otsu)
      put = lambda a: jax.device_put(a, sharding)
      dist, scores = programs[shape](put(batch), put(np.asarray(
          rec_types + rec_types[-1:] * pad, np.int32)), put(np.asarray(
              chunk + chunk[-1:] * pad, np.int32)))
      dist, scores = np.asarray(dist), np.asarray(scores)
      for j, (r, t) in enumerate(zip(recs, rec_types)):
        name = r["name"].decode() if isinstance(r["name"], bytes) else str(r["name"])
        for lv, dname in enumerate(_names(name, t), start=1):
          row = j * NUM_LEVELS + lv - 1
          ex = {"image": _png(dist[row]), "name": dname, "content": name,
                "dist_type": t, "level": lv, "fr_scores": scores[row]}
          serialized.append(features.serialize_example(ex))
          for f in ("name", "content", "dist_type", "level"):
            index[f].append(ex[f])
          index["fr_scores"].append(scores[row].tolist())
      done += len(chunk) * NUM_LEVELS
      bar.update(done)
    _atomic_write(ds_dir / _INDEX_DIR / f"shard-{k:05d}.json",
                  lambda path: path.write_text(json.dumps(index)))
    shard = _shard_path(ds_dir, k, num_shards)
    for stale in ds_dir.glob(f".{shard.name}.tmp-*"):  # a killed run's partial write
      stale.unlink(missing_ok=True)
    _atomic_write(shard, lambda path: _write_array_record(path, serialized))
  bar.close()
  finalized = finalize(data_dir, num_shards)
  return {"written": len(todo), "skipped": skipped,
          "num_shards": num_shards, "finalized": finalized}


def _write_array_record(path: pathlib.Path, records: list[bytes]) -> None:
  # Lazy: array_record's C++ extension is loaded only when a shard is written.
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  w = array_record_module.ArrayRecordWriter(str(path), "group_size:1")
  for r in records:
    w.write(r)
  w.close()


def finalize(data_dir, num_shards: int) -> bool:
  """Writes dataset_info (split, name index) and fr_scores.npy once every shard is
  there; False (nothing written) while some are missing."""
  builder = _builder(data_dir)
  ds_dir = pathlib.Path(builder.data_dir)
  shards = [_shard_path(ds_dir, k, num_shards) for k in range(num_shards)]
  if not all(s.exists() for s in shards):
    return False
  if (ds_dir / "dataset_info.json").exists():
    return True
  parts = [json.loads((ds_dir / _INDEX_DIR / f"shard-{k:05d}.json").read_text())
           for k in range(num_shards)]
  template = tfds.core.ShardedFileTemplate(data_dir=ds_dir, dataset_name=builder.name,
                                           split=SPLIT, filetype_suffix="array_record")
  split = tfds.core.SplitInfo(name=SPLIT, shard_lengths=[len(x["name"]) for x in parts],
                              num_bytes=sum(s.stat().st_size for s in shards),
                              filename_template=template)
  info = builder.info
  info.set_splits(tfds.core.SplitDict([split]))
  info.metadata.update(
      score_name="fr_scores", split_kind="content", full_reference=False,
      index={SPLIT: {f: [v for x in parts for v in x[f]]
                     for f in ("name", "content", "dist_type", "level")}},
      run=json.loads((ds_dir / _RUN_FILE).read_text()))
  scores = np.asarray([v for x in parts for v in x["fr_scores"]], np.float32)
  _atomic_write(ds_dir / SCORES_FILE, lambda p: np.save(open(p, "wb"), scores))
  info.write_to_directory(ds_dir)
  return True


def load_scores(data_dir) -> np.ndarray:
  """(N, 11) raw FR scores of a finished generation (for `histeq.fit`)."""
  path = pathlib.Path(_builder(data_dir).data_dir) / SCORES_FILE
  if not path.exists():
    raise FileNotFoundError(f"{path} is missing: the generation in {data_dir} has not "
                            "finished (rerun the generate stage to complete it)")
  return np.load(path)


def run_generate(config, workdir: str) -> dict:
  """The `generate` stage from `config.generate`: data_dir (TFDS dir with the built
  kadis700k), out_dir (default <workdir>/generate/tfds), seed, shard_size, types
  (() = all 25), host_otsu."""
  c = config.generate
  if not c.get("data_dir"):
    raise ValueError("config.generate.data_dir: set it to the TFDS data directory where "
                     "the kadis700k builder was prepared (see deepfl_jax/data/builders)")
  source = pipeline.load_source("kadis700k", c.data_dir, with_references=False)
  out = c.get("out_dir") or os.path.join(workdir, "generate", "tfds")
  result = generate(source, out, seed=int(c.seed), shard_size=int(c.shard_size),
                    types=tuple(c.types) or None, host_otsu=bool(c.host_otsu))
  print(f"kadis700k_generated in {out}: {result}")
  return result
