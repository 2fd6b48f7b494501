"""Host input pipeline over a built IQA database (`tfds.data_source`), on Grain.

No TensorFlow: TFDS reads the array_record files and decodes PNGs with PIL/OpenCV;
Grain (`grain.MapDataset` -> `IterDataset`) runs the reading, decoding and batching,
in this process (threads) or in worker processes (`num_workers`), with prefetch and a
checkpointable iterator state. This module fixes the order, sharding and batches.

Order and resumption. Step s of a run (s = 0, 1, ...) is a pure function of
(seed, s): epoch e = s // steps_per_epoch uses the permutation
`default_rng([seed, e]).permutation(len(indices))` of the chosen records, and global
batch b = s % steps_per_epoch is its slice [b*G, (b+1)*G) with G = batch_size *
process_count. Process p takes rows [p*B, (p+1)*B) of that global batch (B = batch
size per process), so the processes' batches at a step are disjoint and together equal
the one-process global batch. A run restarted with `start_step=s` therefore sees
exactly the batches it would have seen, on any number of processes. Grain's element
is one step's batch (`MapDataset.range(start, stop).map(StepBatch)`), so its workers
split steps, not rows, and the batches do not depend on the number of workers either.
The iterator's state (`Batches.get_state`, Grain's state plus the step) is saved with
the orbax checkpoint (`train.checkpoint`), so a resumed run continues the same stream.

Every batch carries `mask` (bool, (B,)): False marks padding rows of the last batch
when `drop_remainder=False` (they repeat the batch's first record); evaluation code
must weight by it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from absl import logging

Example = dict[str, Any]
Transform = Callable[[Example, np.random.Generator], Example]


# --- the source ---------------------------------------------------------------------
@dataclasses.dataclass
class IqaSource:
  """A built database split with random access.

  records: `records[i]` -> dict of NumPy values (image (H, W, 3) uint8, strings as str
    bytes from TFDS); any sequence with __len__/__getitem__ works (tests use lists).
  index: column index of the small fields (name, content, score, ...), NumPy arrays of
    length len(records), read from metadata.json without touching any image.
  metadata: the builder's metadata (score_name, higher_is_better, split_kind, ...).
  references: the `references` split of a full-reference database, or None.
  """
  records: Sequence[Example]
  index: dict[str, np.ndarray]
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
  references: "IqaSource | None" = None

  def __len__(self) -> int:
    return len(self.records)

  def reference_image(self, name: str) -> np.ndarray:
    """The pristine image `name` (a distorted record's `reference` field)."""
    if self.references is None:
      raise ValueError("this database has no references split")
    pos = self._ref_pos().get(_to_str(name))
    if pos is None:
      raise KeyError(f"no reference named {name!r}")
    return self.references.records[pos]["image"]

  def _ref_pos(self) -> dict[str, int]:
    if not hasattr(self, "_ref_cache"):
      self._ref_cache = {n: i for i, n in enumerate(self.references.index["name"])}
    return self._ref_cache


def _to_str(v):
  return v.decode("utf-8") if isinstance(v, bytes) else v


def _column(values: list) -> np.ndarray:
  if values and isinstance(values[0], (str, bytes)):
    return np.asarray([_to_str(v) for v in values], dtype=object)
  return np.asarray(values)


def _index_from_records(records, fields) -> dict[str, np.ndarray]:
  cols = {f: [] for f in fields}
  for i in range(len(records)):
    r = records[i]
    for f in fields:
      cols[f].append(r[f])
  return {f: _column(v) for f, v in cols.items()}


def in_memory_source(examples: Sequence[Example], *, index_fields: Sequence[str] = (),
                     metadata: Mapping[str, Any] | None = None,
                     references: "IqaSource | None" = None) -> IqaSource:
  """An IqaSource over a list of example dicts (e.g. a generated mini-KADID), usable by
  `batches` and `splits.make_split` like a built database."""
  index = {f: _column([e[f] for e in examples]) for f in index_fields}
  return IqaSource(records=list(examples), index=index, metadata=dict(metadata or {}),
                   references=references)


def load_source(builder_or_name, data_dir=None, *, split: str = "full",
                config: str | None = None, with_references: bool = True) -> IqaSource:
  """Opens a built database: a prepared builder, or its TFDS name (e.g. "kadid10k") with
  the `data_dir` it was built into (and `config`, e.g. "skip" or "1024x768", when it
  was not built with the default config). Checks that metadata.json's index matches the
  records (first, middle, last name); falls back to scanning the records (slow: reads
  every image's bytes) when the index is absent or does not match."""
  # Lazy: TFDS and the builders are heavy and only opening a stored database needs them.
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  # Importing the builders registers them with TFDS (needed by tfds.builder(name)).
  from deepfl_jax.data import builders as _builders  # pylint: disable=import-outside-toplevel
  builder = builder_or_name
  if isinstance(builder_or_name, str):
    name = builder_or_name if config is None else f"{builder_or_name}/{config}"
    builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
  metadata = dict(builder.info.metadata or {})
  skip = {"image": tfds.decode.SkipDecoding()}

  def open_split(s: str) -> IqaSource:
    records = builder.as_data_source(split=s)
    raw = builder.as_data_source(split=s, decoders=skip)
    cols = (metadata.get("index") or {}).get(s)
    n = len(records)
    ok = bool(cols) and "name" in cols and all(len(v) == n for v in cols.values())
    if ok and n:
      ok = all(_to_str(raw[i]["name"]) == cols["name"][i] for i in {0, n // 2, n - 1})
    if ok:
      index = {f: _column(v) for f, v in cols.items()}
    else:
      fields = [k for k in builder.info.features.keys()
                if k != "image" and builder.info.features[k].shape == ()]
      index = _index_from_records(raw, fields)
    return IqaSource(records=records, index=index, metadata=metadata)

  source = open_split(split)
  if with_references and _builders.REFERENCES in builder.info.splits:
    source.references = open_split(_builders.REFERENCES)
  return source


# --- order ----------------------------------------------------------------------------
def steps_per_epoch(num_records: int, batch_size: int, process_count: int = 1,
                    drop_remainder: bool = True) -> int:
  g = batch_size * process_count
  return num_records // g if drop_remainder else math.ceil(num_records / g)


def epoch_order(num_records: int, seed: int, epoch: int, shuffle: bool = True
                ) -> np.ndarray:
  """Positions 0..num_records-1 in the order of `epoch` (a fresh permutation per epoch)."""
  if not shuffle:
    return np.arange(num_records)
  return np.random.default_rng([seed, epoch]).permutation(num_records)


def batch_indices(indices: Sequence[int] | np.ndarray, step: int, *, batch_size: int,
                  seed: int = 0, shuffle: bool = True, process_index: int = 0,
                  process_count: int = 1, drop_remainder: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
  """(record indices (B,), mask (B,)) of process `process_index` at `step`; pure."""
  indices = np.asarray(indices, np.int64)
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  spe = steps_per_epoch(len(indices), batch_size, process_count, drop_remainder)
  if spe == 0:
    raise ValueError(f"{len(indices)} records are fewer than one global batch of "
                     f"{batch_size * process_count}; use drop_remainder=False")
  epoch, b = divmod(step, spe)
  g = batch_size * process_count
  chosen = indices[epoch_order(len(indices), seed, epoch, shuffle)][b * g:(b + 1) * g]
  mask = np.ones(g, bool)
  if len(chosen) < g:  # padded last batch (drop_remainder=False)
    mask[len(chosen):] = False
    chosen = np.concatenate([chosen, np.full(g - len(chosen), chosen[0])])
  sl = slice(process_index * batch_size, (process_index + 1) * batch_size)
  return chosen[sl], mask[sl]


# --- batches --------------------------------------------------------------------------
def _collate(examples: list[Example]) -> dict[str, np.ndarray]:
  out = {}
  for k in examples[0]:
    vals = [_to_str(e[k]) for e in examples]
    if isinstance(vals[0], str):
      out[k] = np.asarray(vals, dtype=object)
      continue
    arrs = [np.asarray(v) for v in vals]
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
      raise ValueError(f"field {k!r} has different shapes in one batch {sorted(shapes)}: "
                       "use batch_size=1, records of one size, or a `transform` that "
                       "crops/resizes to a common shape")
    out[k] = np.stack(arrs)
  return out


def _fetch(records, idx: np.ndarray) -> list[Example]:
  getitems = getattr(records, "__getitems__", None)
  if getitems is not None:
    return list(getitems([int(i) for i in idx]))
  return [records[int(i)] for i in idx]


def make_batch(source: IqaSource | Sequence[Example], idx: np.ndarray, mask: np.ndarray, *,
               step: int, seed: int = 0, process_index: int = 0, batch_size: int = 0,
               fields: Sequence[str] | None = None, transform: Transform | None = None
               ) -> dict[str, np.ndarray]:
  """Reads, transforms and stacks the records `idx` (one process's part of `step`).
  The transform's generator is seeded by (seed, step, row in the global batch), so
  random crops do not depend on the process layout either."""
  records = source.records if isinstance(source, IqaSource) else source
  examples = _fetch(records, idx)
  out = []
  for j, ex in enumerate(examples):
    ex = dict(ex) if fields is None else {k: ex[k] for k in fields}
    if transform is not None:
      row = process_index * (batch_size or len(idx)) + j
      ex = transform(ex, np.random.default_rng([seed, step, row, 0x7F4A]))
    out.append(ex)
  batch = _collate(out)
  batch["mask"] = np.asarray(mask, bool)
  return batch


@dataclasses.dataclass
class StepBatch:
  """Grain map: step -> this process's batch of that step (`batch_indices` +
  `make_batch`). A plain picklable object, so Grain's worker processes can run it."""
  source: Any
  indices: np.ndarray
  batch_size: int
  seed: int
  shuffle: bool
  process_index: int
  process_count: int
  drop_remainder: bool
  fields: Sequence[str] | None
  transform: Transform | None

  def __call__(self, step: int) -> dict[str, np.ndarray]:
    step = int(step)
    idx, mask = batch_indices(self.indices, step, batch_size=self.batch_size,
                              seed=self.seed, shuffle=self.shuffle,
                              process_index=self.process_index,
                              process_count=self.process_count,
                              drop_remainder=self.drop_remainder)
    return make_batch(self.source, idx, mask, step=step, seed=self.seed,
                      process_index=self.process_index, batch_size=self.batch_size,
                      fields=self.fields, transform=self.transform)


_FOREVER = 2 ** 62  # the stop of an endless stream (Grain datasets have a length)


def _grain():
  # Lazy: Grain takes ~1 s to import; in-memory and index-only users never need it.
  import grain  # pylint: disable=import-outside-toplevel
  from absl import flags  # pylint: disable=import-outside-toplevel
  # Grain reads absl flags; outside an absl app (tests, notebooks) use their defaults.
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
  return grain


class Batches:
  """Iterator over the batches of steps start, start + 1, ... (`batches`).

  `.step` is the step of the next batch. `get_state()` / `set_state()` (JSON bytes:
  Grain's iterator state, the step and the stream's first step) make it an item of an
  orbax checkpoint (`grain.checkpoint.CheckpointHandler`). `close()` (or the context
  manager) stops Grain's threads and worker processes.
  """

  def __init__(self, fn: StepBatch, start: int, stop: int | None, *, prefetch: int,
               num_workers: int):
    self._fn, self._stop = fn, stop
    self._prefetch, self._num_workers = max(1, int(prefetch)), int(num_workers)
    self._it = None
    self._open(start)

  def _open(self, start: int, grain_state=None):
    grain = _grain()
    self.close()
    self._start = self.step = int(start)
    stop = _FOREVER if self._stop is None else max(int(self._stop), self._start)
    ds = grain.MapDataset.range(self._start, stop).map(self._fn)
    # Threads read (and decode) `prefetch` steps ahead in this process...
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._prefetch,
                                              prefetch_buffer_size=self._prefetch))
    if self._num_workers > 0:  # ...or worker processes, each a step at a time.
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=self._num_workers, per_worker_buffer_size=self._prefetch))
    self._it = iter(ds)
    if grain_state is not None:
      self._it.set_state(grain_state)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._it is None:
      raise StopIteration
    batch = next(self._it)
    self.step += 1
    return batch

  def get_state(self) -> bytes:
    """The position after the last batch returned, as JSON bytes."""
    return json.dumps({"start": self._start, "step": self.step,
                       "grain": self._it.get_state()}).encode()

  def set_state(self, state: bytes | str | dict) -> None:
    """Moves to a position saved by `get_state` (of a stream with the same settings)."""
    d = json.loads(state) if isinstance(state, (bytes, str)) else dict(state)
    try:
      self._open(int(d["start"]), d["grain"])
    except (KeyError, IndexError, TypeError, ValueError) as e:
      # Grain's state depends on the worker count (e.g. a resume on another machine);
      # the stream is a pure function of the step, so position by the step instead.
      logging.warning("input state of another layout (%s); continuing at step %d",
                      e, int(d["step"]))
      self._open(int(d["step"]))
    self.step = int(d["step"])

  def start_prefetch(self) -> None:
    """Part of Grain's checkpoint protocol; reading starts on the first `next`."""

  def close(self) -> None:
    it, self._it = self._it, None
    if it is not None and hasattr(it, "close"):
      it.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def batches(source: IqaSource | Sequence[Example], indices: Sequence[int] | None = None,
            *, batch_size: int, seed: int = 0, shuffle: bool = True,
            num_epochs: int | None = None, start_step: int = 0,
            process_index: int | None = None, process_count: int | None = None,
            drop_remainder: bool = True, fields: Sequence[str] | None = None,
            transform: Transform | None = None, prefetch: int = 2,
            num_workers: int = 0) -> Batches:
  """Batches of `source` over `indices` (default: all records; e.g. a part from
  splits.py) for this process, from `start_step` on.

  process_index / process_count default to `jax.process_index()` /
  `jax.process_count()`; `batch_size` is per process. `num_epochs=None` repeats
  forever. Yields dicts of NumPy arrays (strings as object arrays) plus `mask`; the
  returned iterator's `.step` is the step of the next batch and `get_state()` its
  checkpointable state. `prefetch` steps are read ahead (by as many threads);
  `num_workers` > 0 reads and decodes in that many Grain worker processes (the source
  and transform must be picklable; the order and content of batches do not depend
  on it).
  """
  if process_index is None or process_count is None:
    import jax  # pylint: disable=import-outside-toplevel  # the package stays JAX-free
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  n = len(source)
  indices = np.arange(n) if indices is None else np.asarray(indices, np.int64)
  # Checked here, not at the first batch: a bad layout fails before any worker starts.
  batch_indices(indices, 0, batch_size=batch_size, seed=seed, shuffle=shuffle,
                process_index=process_index, process_count=process_count,
                drop_remainder=drop_remainder)
  spe = steps_per_epoch(len(indices), batch_size, process_count, drop_remainder)
  stop = None if num_epochs is None else num_epochs * spe
  fn = StepBatch(source, indices, batch_size, seed, shuffle, process_index,
                 process_count, drop_remainder, None if fields is None else
                 tuple(fields), transform)
  return Batches(fn, start_step, stop, prefetch=prefetch, num_workers=num_workers)


def reading_speed(source: IqaSource | Sequence[Example], *, batch_size: int = 32,
                  num_batches: int = 20, warmup: int = 2, seed: int = 0,
                  prefetch: int = 2, num_workers: int = 0) -> dict[str, float]:
  """Images per second read (decode + batch) from `source` by `batches` on one
  process (`num_workers` Grain worker processes); for experiments/bench_input.py."""
  it = batches(source, batch_size=batch_size, seed=seed, num_epochs=None,
               process_index=0, process_count=1, drop_remainder=False, prefetch=prefetch,
               num_workers=num_workers)
  with it:
    for _ in range(warmup):
      next(it)
    t0 = time.perf_counter()
    for _ in range(num_batches):
      next(it)
    dt = time.perf_counter() - t0
  return {"images_per_s": num_batches * batch_size / dt, "seconds": dt,
          "batches": float(num_batches), "batch_size": float(batch_size)}
