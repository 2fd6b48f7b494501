"""Train / validation / test partitions of an IQA database, as index arrays.

Evaluation protocols of DeepFL-IQA (Lin, Hosu, Saupe 2020, Stage 3):
  * synthetic databases (KADID-10k, TID2013, LIVE, CSIQ, KADIS-700k): 60/20/20 by
    reference content, so no content is in two parts (KADID: 49/16/16 references);
  * KonIQ-10k: the official training/validation/test sets (7058/1000/2015);
  * authentic databases without an official split (LIVE in the Wild): random 60/20/20.
Each is repeated N times with seeds `seed0 + r`; a split is a pure function of its seed.
Indices refer to the records of a built split (`full`), in the stored order.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

PARTS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
# KonIQ's `set` column -> part name.
OFFICIAL_SETS = {"training": "train", "train": "train", "validation": "validation",
                 "test": "test"}


def part_sizes(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[int, ...]:
  """Sizes of the parts of n items: validation and test get round(f * n) (half away from
  zero), train the rest (81 contents -> 49/16/16; 25 -> 15/5/5; 29 -> 17/6/6)."""
  f = np.asarray(fractions, np.float64)
  if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
    raise ValueError(f"fractions must be three non-negative numbers summing to 1, got "
                     f"{tuple(fractions)}")
  val, test = (int(np.floor(x * n + 0.5)) for x in f[1:])
  if val + test > n:
    raise ValueError(f"cannot split {n} items with fractions {tuple(fractions)}")
  return n - val - test, val, test


def _assign(groups: np.ndarray, n_groups: int, fractions, seed: int) -> dict[str, np.ndarray]:
  order = np.random.default_rng(seed).permutation(n_groups)
  sizes = part_sizes(n_groups, fractions)
  part_of_group = np.empty(n_groups, np.int64)
  start = 0
  for p, size in enumerate(sizes):
    part_of_group[order[start:start + size]] = p
    start += size
  part = part_of_group[groups]
  return {name: np.flatnonzero(part == p) for p, name in enumerate(PARTS)}


def content_split(content: Sequence[str] | np.ndarray, seed: int,
                  fractions: Sequence[float] = DEFAULT_FRACTIONS) -> dict[str, np.ndarray]:
  """Split by reference content: `content[i]` names the pristine source of record i.
  Contents are sorted before the seeded permutation, so the result does not depend on
  record order. Returns {"train", "validation", "test"} -> sorted int64 indices."""
  uniq, groups = np.unique(np.asarray(content, dtype=object).astype(str),
                           return_inverse=True)
  return _assign(groups.reshape(-1), len(uniq), fractions, seed)


def random_split(n: int, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
                 ) -> dict[str, np.ndarray]:
  """Random split of n records (each its own content)."""
  return _assign(np.arange(n), n, fractions, seed)


def official_split(sets: Sequence[str], mapping: Mapping[str, str] = OFFICIAL_SETS
                   ) -> dict[str, np.ndarray]:
  """Split given by a database's own set labels (KonIQ's `set` column)."""
  labels = np.asarray([mapping.get(str(s), "") for s in sets], dtype=object)
  unknown = sorted({str(s) for s, l in zip(sets, labels) if not l})
  if unknown:
    raise ValueError(f"unknown set labels {unknown}; known: {sorted(mapping)}")
  return {p: np.flatnonzero(labels == p) for p in PARTS}


def make_split(index: Mapping[str, Sequence], kind: str, seed: int = 0,
               fractions: Sequence[float] = DEFAULT_FRACTIONS) -> dict[str, np.ndarray]:
  """Split from a column index (`metadata.json`'s index of split `full`, or
  `pipeline.IqaSource.index`): kind "content" uses `content`, "official" uses `set`
  (the seed is ignored), "random" uses the number of records."""
  if kind == "content":
    return content_split(index["content"], seed, fractions)
  if kind == "official":
    return official_split(index["set"])
  if kind == "random":
    return random_split(len(index["name"]), seed, fractions)
  raise ValueError(f"unknown split kind {kind!r}: content | official | random")


def repeated_splits(index: Mapping[str, Sequence], kind: str, num_repeats: int,
                    seed0: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS
                    ) -> list[dict[str, np.ndarray]]:
  """`num_repeats` splits with seeds seed0, seed0 + 1, ... (the official split once per
  repeat, identical each time)."""
  return [make_split(index, kind, seed0 + r, fractions) for r in range(num_repeats)]
