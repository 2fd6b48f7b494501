"""Split properties: content-disjoint, deterministic per seed, every record exactly once,
the 60/20/20 sizes (KADID: 49/16/16 references), official and random splits."""
from __future__ import annotations

import numpy as np
import pytest

from deepfl_jax.data import splits


def kadid_like_contents():
  """10,125 records: 81 references x 125 (type, level), in KADID's file order."""
  return np.repeat([f"I{r:02d}" for r in range(1, 82)], 125)


def _check_partition(parts, n):
  allidx = np.concatenate([parts[p] for p in splits.PARTS])
  assert len(allidx) == n and np.array_equal(np.sort(allidx), np.arange(n))


def test_kadid_content_split_sizes_and_disjoint():
  content = kadid_like_contents()
  parts = splits.content_split(content, seed=0)
  _check_partition(parts, len(content))
  refs = {p: set(content[parts[p]]) for p in splits.PARTS}
  assert [len(refs[p]) for p in splits.PARTS] == [49, 16, 16]
  assert not (refs["train"] & refs["validation"] or refs["train"] & refs["test"]
              or refs["validation"] & refs["test"])
  assert [len(parts[p]) for p in splits.PARTS] == [49 * 125, 16 * 125, 16 * 125]


@pytest.mark.parametrize("n,expected", [(81, (49, 16, 16)), (25, (15, 5, 5)),
                                        (29, (17, 6, 6)), (30, (18, 6, 6)),
                                        (10, (6, 2, 2))])
def test_part_sizes(n, expected):
  assert splits.part_sizes(n) == expected


def test_deterministic_per_seed_and_seeds_differ():
  content = kadid_like_contents()
  a = splits.content_split(content, seed=3)
  b = splits.content_split(content, seed=3)
  c = splits.content_split(content, seed=4)
  for p in splits.PARTS:
    np.testing.assert_array_equal(a[p], b[p])
  assert not np.array_equal(a["test"], c["test"])


def test_content_split_independent_of_record_order():
  content = kadid_like_contents()
  perm = np.random.default_rng(0).permutation(len(content))
  a = splits.content_split(content, seed=7)
  b = splits.content_split(content[perm], seed=7)
  for p in splits.PARTS:
    assert set(content[a[p]]) == set(content[perm][b[p]])


def test_repeated_splits_use_fixed_seeds():
  index = {"content": kadid_like_contents()}
  reps = splits.repeated_splits(index, "content", num_repeats=5, seed0=10)
  assert len(reps) == 5
  for r, part in enumerate(reps):
    ref = splits.content_split(index["content"], seed=10 + r)
    for p in splits.PARTS:
      np.testing.assert_array_equal(part[p], ref[p])
  tests = [frozenset(index["content"][r["test"]]) for r in reps]
  assert len(set(tests)) == 5


def test_random_split():
  parts = splits.random_split(1162, seed=1)
  _check_partition(parts, 1162)
  assert [len(parts[p]) for p in splits.PARTS] == list(splits.part_sizes(1162))
  again = splits.make_split({"name": np.arange(1162)}, "random", seed=1)
  for p in splits.PARTS:
    np.testing.assert_array_equal(parts[p], again[p])


def test_official_split():
  sets = np.array(["training"] * 7058 + ["validation"] * 1000 + ["test"] * 2015)
  sets = sets[np.random.default_rng(0).permutation(len(sets))]
  parts = splits.make_split({"set": sets}, "official", seed=123)
  _check_partition(parts, len(sets))
  assert [len(parts[p]) for p in splits.PARTS] == [7058, 1000, 2015]
  assert set(sets[parts["validation"]]) == {"validation"}
  with pytest.raises(ValueError, match="unknown set labels"):
    splits.official_split(["training", "holdout"])


def test_bad_arguments():
  with pytest.raises(ValueError, match="fractions"):
    splits.part_sizes(10, (0.5, 0.2, 0.2))
  with pytest.raises(ValueError, match="unknown split kind"):
    splits.make_split({"name": [1]}, "stratified")
