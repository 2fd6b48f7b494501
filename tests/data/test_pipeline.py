"""Input pipeline: deterministic order per seed, process sharding (simulated by
arguments), resume from a step, padding masks, prefetch errors, and a real built
database read through tfds.data_source."""
from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pytest

from deepfl_jax.data import builders, load_source, pipeline, splits
from tests.data import fakes


def memory_source(n=23):
  return [{"image": np.full((2, 3, 3), i, np.uint8), "name": f"r{i}".encode(),
           "score": np.float32(i) / 2} for i in range(n)]


def collect(it, k):
  with it:
    return [next(it) for _ in range(k)]


def ids(batch):
  return batch["image"][:, 0, 0, 0].astype(int).tolist()


def test_same_seed_same_batches_other_seed_differs():
  src = memory_source()
  kw = dict(batch_size=4, process_index=0, process_count=1)
  a = collect(pipeline.batches(src, seed=5, **kw), 12)
  b = collect(pipeline.batches(src, seed=5, **kw), 12)
  c = collect(pipeline.batches(src, seed=6, **kw), 12)
  assert [ids(x) for x in a] == [ids(x) for x in b]
  assert [ids(x) for x in a] != [ids(x) for x in c]
  assert a[0]["name"].dtype == object and a[0]["name"][0].startswith("r")
  np.testing.assert_allclose(a[0]["score"], np.asarray(ids(a[0])) / 2)


def test_each_epoch_is_a_fresh_permutation_of_the_chosen_indices():
  src = memory_source(24)
  chosen = np.array([1, 3, 4, 8, 9, 10, 15, 16, 20, 21, 22, 23])
  it = pipeline.batches(src, chosen, batch_size=3, seed=0, process_index=0,
                        process_count=1)
  got = [ids(b) for b in collect(it, 8)]  # 2 epochs of 4 steps
  e0, e1 = sum(got[:4], []), sum(got[4:], [])
  assert sorted(e0) == sorted(e1) == chosen.tolist()
  assert e0 != e1


@pytest.mark.parametrize("count", [2, 3])
def test_process_shards_are_disjoint_and_form_the_global_batch(count):
  src = memory_source(50)
  single = collect(pipeline.batches(src, batch_size=2 * count, seed=1, process_index=0,
                                    process_count=1), 10)
  shards = [collect(pipeline.batches(src, batch_size=2, seed=1, process_index=p,
                                     process_count=count), 10) for p in range(count)]
  for s in range(10):  # crosses an epoch boundary (50 // (2 * count) steps)
    flat = sum([ids(shards[p][s]) for p in range(count)], [])
    assert len(set(flat)) == len(flat) == 2 * count
    assert flat == ids(single[s])


def test_resume_from_step_sees_the_same_data():
  src = memory_source(29)
  kw = dict(batch_size=4, seed=9, process_index=1, process_count=2)
  full = collect(pipeline.batches(src, **kw), 15)
  it = pipeline.batches(src, start_step=9, **kw)
  assert it.step == 9
  resumed = collect(it, 6)
  assert [ids(b) for b in resumed] == [ids(b) for b in full[9:]]
  assert it.step == 15


def test_num_epochs_and_padded_last_batch():
  src = memory_source(10)
  it = pipeline.batches(src, batch_size=4, shuffle=False, num_epochs=1,
                        drop_remainder=False, process_index=0, process_count=1)
  got = list(it)
  assert [ids(b) for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 8]]
  assert got[-1]["mask"].tolist() == [True, True, False, False]
  assert all(b["mask"].all() for b in got[:-1])
  # two processes: the padding falls on the second process's rows
  a, b = (list(pipeline.batches(src, batch_size=2, shuffle=False, num_epochs=1,
                                drop_remainder=False, process_index=p, process_count=2))
          for p in (0, 1))
  assert sum(int(x["mask"].sum()) for x in a + b) == 10


def test_transform_rng_does_not_depend_on_process_layout():
  src = memory_source(16)

  def jitter(ex, rng):
    return dict(ex, noise=rng.normal(size=2))

  one = collect(pipeline.batches(src, batch_size=4, seed=2, transform=jitter,
                                 process_index=0, process_count=1), 2)
  two = [collect(pipeline.batches(src, batch_size=2, seed=2, transform=jitter,
                                  process_index=p, process_count=2), 2) for p in (0, 1)]
  for s in range(2):
    np.testing.assert_array_equal(
        one[s]["noise"], np.concatenate([two[0][s]["noise"], two[1][s]["noise"]]))


def test_errors_reach_the_consumer():
  src = memory_source(8)
  src[5] = dict(src[5], image=np.zeros((4, 4, 3), np.uint8))  # another size
  it = pipeline.batches(src, batch_size=8, shuffle=False, process_index=0,
                        process_count=1)
  with pytest.raises(ValueError, match="different shapes"):
    next(it)
  with pytest.raises(ValueError, match="fewer than one global batch"):
    pipeline.batch_indices(np.arange(3), 0, batch_size=2, process_count=2)
  with pytest.raises(ValueError, match="process_index"):
    pipeline.batch_indices(np.arange(30), 0, batch_size=2, process_index=2,
                           process_count=2)


def test_defaults_to_jax_process_layout():
  it = pipeline.batches(memory_source(8), batch_size=4, seed=0)
  ref = pipeline.batches(memory_source(8), batch_size=4, seed=0, process_index=0,
                         process_count=1)
  assert ids(collect(it, 1)[0]) == ids(collect(ref, 1)[0])


def test_built_database_through_data_source(tmp_path):
  fakes.kadid10k(tmp_path / "manual")
  builder = builders.prepare("kadid10k", tmp_path / "manual", tmp_path / "tfds")
  source = load_source("kadid10k", tmp_path / "tfds")
  assert len(source) == 10
  kw = dict(batch_size=3, seed=4, process_index=0, process_count=1)
  a = collect(pipeline.batches(source, **kw), 4)
  b = collect(pipeline.batches(source, start_step=2, **kw), 2)
  for x, y in zip(a[2:], b):
    np.testing.assert_array_equal(x["image"], y["image"])
    assert list(x["name"]) == list(y["name"])
  first = a[0]
  assert first["image"].shape == (3, fakes.H, fakes.W, 3) and first["image"].dtype == np.uint8
  pos = {n: i for i, n in enumerate(source.index["name"])}
  for name, score in zip(first["name"], first["score"]):
    assert score == np.float32(source.index["score"][pos[name]])
  speed = pipeline.reading_speed(source, batch_size=4, num_batches=3, warmup=1)
  assert speed["images_per_s"] > 0
  assert builder.info.splits["references"].num_examples == 5


def test_worker_processes_do_not_change_batches_and_stop_on_close():
  src = memory_source(20)

  def jitter(ex, rng):  # a closure: Grain ships it to the workers with cloudpickle
    return dict(ex, noise=rng.normal(size=2))

  kw = dict(batch_size=5, seed=3, process_index=0, process_count=1, transform=jitter)
  a = collect(pipeline.batches(src, **kw), 6)
  before = set(multiprocessing.active_children())
  it = pipeline.batches(src, num_workers=2, **kw)
  b = collect(it, 6)  # collect closes the iterator
  assert [ids(x) for x in a] == [ids(x) for x in b]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["noise"], y["noise"])
  assert not set(multiprocessing.active_children()) - before  # workers are gone


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 1])
def test_iterator_state_restores_the_stream(workers):
  src = memory_source(17)
  kw = dict(batch_size=3, seed=4, process_index=0, process_count=1,
            num_workers=workers)
  it = pipeline.batches(src, **kw)
  with it:
    first = [ids(next(it)) for _ in range(4)]
    state = it.get_state()
    rest = [ids(next(it)) for _ in range(5)]
  assert it.step == 9
  again = pipeline.batches(src, **kw)  # a new process: set the saved state
  again.set_state(state)
  assert again.step == 4
  assert [ids(b) for b in collect(again, 5)] == rest
  assert first != rest[:4]
  if not workers:  # the state and `start_step` give the same stream
    positioned = collect(pipeline.batches(src, start_step=4, **kw), 5)
    assert [ids(b) for b in positioned] == rest
  else:  # a resume with another worker count continues at the saved step
    other = pipeline.batches(src, **dict(kw, num_workers=0))
    other.set_state(state)
    assert [ids(b) for b in collect(other, 5)] == rest


def test_in_memory_source_with_splits():
  examples = [{"image": np.full((2, 2, 3), i, np.uint8), "name": f"c{i // 5}_{i % 5}",
               "content": f"c{i // 5}", "score": float(i)} for i in range(50)]
  src = pipeline.in_memory_source(examples, index_fields=("name", "content", "score"),
                                  metadata={"split_kind": "content"})
  parts = splits.make_split(src.index, src.metadata["split_kind"], seed=0)
  assert [len(parts[p]) for p in splits.PARTS] == [30, 10, 10]
  got = collect(pipeline.batches(src, parts["test"], batch_size=5, seed=0,
                                 process_index=0, process_count=1), 2)
  contents = {src.index["content"][i] for i in parts["test"]}
  assert {n.split("_")[0] for b in got for n in b["name"]} <= contents


def test_load_source_without_index_scans_records(tmp_path):
  fakes.tid2013(tmp_path / "manual")
  builder = builders.prepare("tid2013", tmp_path / "manual", tmp_path / "tfds")
  good = load_source(builder)
  meta_file = builder.data_path / "metadata.json"
  meta = json.loads(meta_file.read_text())
  meta["index"] = {}
  meta_file.write_text(json.dumps(meta))
  scanned = load_source("tid2013", tmp_path / "tfds")
  for f in ("name", "content", "reference", "dist_type", "level"):
    assert list(scanned.index[f]) == list(good.index[f]), f
  np.testing.assert_allclose(scanned.index["score"], good.index["score"], rtol=1e-6)
