"""Host-side NumPy input pipeline over a built IQA database (`tfds.data_source`).

No TensorFlow: TFDS reads the array_record files and decodes PNGs with PIL/OpenCV; this
module orders, shards, batches and prefetches.

Order and resumption. Step s of a run (s = 0, 1, ...) is a pure function of
(seed, s): epoch e = s // steps_per_epoch uses the permutation
`default_rng([seed, e]).permutation(len(indices))` of the chosen records, and global
batch b = s % steps_per_epoch is its slice [b*G, (b+1)*G) with G = batch_size *
process_count. Process p takes rows [p*B, (p+1)*B) of that global batch (B = batch
size per process), so the processes' batches at a step are disjoint and together equal
the one-process global batch. A run restarted with `start_step=s` therefore sees
exactly the batches it would have seen, on any number of processes.

Every batch carries `mask` (bool, (B,)): False marks padding rows of the last batch
when `drop_remainder=False` (they repeat the batch's first record); evaluation code
must weight by it.
"""
from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import numpy as np

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


def _fetch(records, idx: np.ndarray, pool: ThreadPoolExecutor | None = None
           ) -> list[Example]:
  if pool is not None:  # PNG decoding releases the GIL: threads overlap it
    return list(pool.map(lambda i: records[int(i)], idx))
  getitems = getattr(records, "__getitems__", None)
  if getitems is not None:
    return list(getitems([int(i) for i in idx]))
  return [records[int(i)] for i in idx]


def make_batch(source: IqaSource | Sequence[Example], idx: np.ndarray, mask: np.ndarray, *,
               step: int, seed: int = 0, process_index: int = 0, batch_size: int = 0,
               fields: Sequence[str] | None = None, transform: Transform | None = None,
               pool: ThreadPoolExecutor | None = None) -> dict[str, np.ndarray]:
  """Reads, transforms and stacks the records `idx` (one process's part of `step`).
  The transform's generator is seeded by (seed, step, row in the global batch), so
  random crops do not depend on the process layout either."""
  records = source.records if isinstance(source, IqaSource) else source
  examples = _fetch(records, idx, pool)
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


def _put(q: queue.Queue, halt: threading.Event, item) -> bool:
  while not halt.is_set():
    try:
      q.put(item, timeout=0.1)
      return True
    except queue.Full:
      continue
  return False


def _produce_loop(produce, start, stop, q: queue.Queue, halt: threading.Event):
  # A module-level function: the thread must not hold the iterator, so that dropping
  # the iterator (garbage collection -> __del__) stops the thread.
  s = start
  try:
    while (stop is None or s < stop) and not halt.is_set():
      if not _put(q, halt, ("ok", produce(s))):
        return
      s += 1
    _put(q, halt, ("end", None))
  except BaseException as e:  # pylint: disable=broad-except
    _put(q, halt, ("error", e))


class Prefetch:
  """Iterator that runs `produce(step)` for consecutive steps in a background thread,
  keeping up to `size` results ready. Exceptions reach the consumer; `close()` (or the
  context manager, or dropping the iterator) stops the thread."""

  def __init__(self, produce: Callable[[int], Any], start: int, stop: int | None,
               size: int = 2):
    self.step = start
    self._queue: queue.Queue = queue.Queue(maxsize=max(1, size))
    self._stop = threading.Event()
    self._thread = threading.Thread(
        target=_produce_loop, args=(produce, start, stop, self._queue, self._stop),
        daemon=True)
    self._thread.start()

  def __iter__(self):
    return self

  def __next__(self):
    if self._stop.is_set():
      raise StopIteration
    kind, value = self._queue.get()
    if kind == "ok":
      self.step += 1
      return value
    self.close()
    if kind == "error":
      raise value
    raise StopIteration

  def close(self):
    self._stop.set()
    if self._thread is not threading.current_thread():
      self._thread.join(timeout=5)

  def __del__(self):
    self._stop.set()

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
            num_workers: int = 0) -> Prefetch:
  """Batches of `source` over `indices` (default: all records; e.g. a part from
  splits.py) for this process, from `start_step` on.

  process_index / process_count default to `jax.process_index()` /
  `jax.process_count()`; `batch_size` is per process. `num_epochs=None` repeats
  forever. Yields dicts of NumPy arrays (strings as object arrays) plus `mask`; the
  returned iterator's `.step` is the step of the next batch (store it in checkpoints).
  `num_workers` > 0 reads and decodes the records of a batch in that many threads
  (the order and content of batches do not depend on it).
  """
  if process_index is None or process_count is None:
    import jax  # pylint: disable=import-outside-toplevel
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  n = len(source)
  indices = np.arange(n) if indices is None else np.asarray(indices, np.int64)
  spe = steps_per_epoch(len(indices), batch_size, process_count, drop_remainder)
  stop = None if num_epochs is None else num_epochs * spe
  pool = ThreadPoolExecutor(num_workers) if num_workers > 0 else None

  def produce(step: int):
    idx, mask = batch_indices(indices, step, batch_size=batch_size, seed=seed,
                              shuffle=shuffle, process_index=process_index,
                              process_count=process_count, drop_remainder=drop_remainder)
    return make_batch(source, idx, mask, step=step, seed=seed,
                      process_index=process_index, batch_size=batch_size, fields=fields,
                      transform=transform, pool=pool)

  return Prefetch(produce, start_step, stop, prefetch)


def reading_speed(source: IqaSource | Sequence[Example], *, batch_size: int = 32,
                  num_batches: int = 20, warmup: int = 2, seed: int = 0,
                  prefetch: int = 2, num_workers: int = 0) -> dict[str, float]:
  """Images per second read (decode + batch) from `source` by `batches` on one
  process; for experiments/bench_input.py."""
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
