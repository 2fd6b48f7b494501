"""Samplers: the KADIS-700k assignment and uniform random (type, level) draws.

KADIS-700k's `kadis700k_ref_imgs.csv` (columns ref_im, dist_type_1, dist_type_2) gives
each pristine image ONE type, generated at all five levels. Quirk of the release: no
row has type 8 as dist_type_1, but 5,529 of the rows with dist_type_1 = 7 carry
dist_type_2 = 8 and the published FR scores label those images type 8 ("saturate"):
such rows generate type 8 (KADIS-700k release files; Lin, Hosu & Saupe, "KADID-10k: A
Large-scale Artificially Distorted IQA Database", QoMEX 2019).
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.distortions.registry import NUM_LEVELS, NUM_TYPES


@dataclasses.dataclass(frozen=True)
class KadisJob:
  ref_im: str
  dist_type: int
  level: int

  @property
  def dist_im(self) -> str:
    """File name of the official script: <ref stem>_<type %02d>_<level %02d>.bmp."""
    stem = os.path.splitext(os.path.basename(self.ref_im))[0]
    return f"{stem}_{self.dist_type:02d}_{self.level:02d}.bmp"


def kadis_type(dist_type_1: int, dist_type_2: int | None = None) -> int:
  """The type actually generated for a KADIS row (7 with dist_type_2 = 8 -> 8)."""
  t1 = int(dist_type_1)
  if t1 == 7 and dist_type_2 is not None and int(dist_type_2) == 8:
    return 8
  if not 1 <= t1 <= NUM_TYPES:
    raise ValueError(f"unknown distortion type {t1} in KADIS row")
  return t1


def read_kadis_csv(path) -> list[tuple[str, int, int | None]]:
  """Rows (ref_im, dist_type_1, dist_type_2) of kadis700k_ref_imgs.csv."""
  with open(path, newline="") as f:
    rows = []
    for r in csv.DictReader(f):
      t2 = r.get("dist_type_2")
      rows.append((r["ref_im"], int(r["dist_type_1"]),
                   int(t2) if t2 not in (None, "") else None))
  return rows


def kadis_assignment(rows: Iterable[Sequence]) -> list[KadisJob]:
  """Expands KADIS rows (ref_im, dist_type_1[, dist_type_2]) into one job per level,
  in CSV order, levels 1..5."""
  jobs = []
  for row in rows:
    ref, t1 = row[0], row[1]
    t2 = row[2] if len(row) > 2 else None
    t = kadis_type(t1, t2)
    jobs.extend(KadisJob(ref, t, lv) for lv in range(1, NUM_LEVELS + 1))
  return jobs


def sample_type_level(key, n: int, types: Sequence[int] | None = None,
                      levels: Sequence[int] | None = None):
  """Uniform random (type, level) pairs for online synthesis.

  Args:
    key: PRNG key. n: number of draws.
    types / levels: allowed ids (default all 25 types, all 5 levels).
  Returns:
    (types (n,) int32 in 1..25, levels (n,) int32 in 1..5), independent and uniform
    over the allowed sets.
  """
  # The allowed sets are checked in NumPy: no device read, also inside a jit.
  ts = np.asarray(np.arange(1, NUM_TYPES + 1) if types is None else types, np.int32)
  ls = np.asarray(np.arange(1, NUM_LEVELS + 1) if levels is None else levels, np.int32)
  if ts.size == 0 or ls.size == 0:
    raise ValueError("types and levels must not be empty")
  if ts.min() < 1 or ts.max() > NUM_TYPES:
    raise ValueError(f"types must be ids 1..{NUM_TYPES}")
  if ls.min() < 1 or ls.max() > NUM_LEVELS:
    raise ValueError(f"levels must be 1..{NUM_LEVELS}")
  kt, kl = jax.random.split(key)
  return (jnp.asarray(ts)[jax.random.randint(kt, (n,), 0, ts.size)],
          jnp.asarray(ls)[jax.random.randint(kl, (n,), 0, ls.size)])
