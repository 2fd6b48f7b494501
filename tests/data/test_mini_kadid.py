"""The embedded mini-KADID and its KADID-10k (type, level) DMOS table
(deepfl_jax/data/mini_kadid.py, kadid_type_level_dmos.csv)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from deepfl_jax.data import mini_kadid, splits
from deepfl_jax.tools import make_kadid_dmos_table as mk
from deepfl_jax.distortions import DISTORTIONS

SIZE = (64, 96)
TYPES = (1, 11, 23)          # Gaussian blur, white noise, colour block (stochastic)
PHOTOS = ("astronaut", "coffee", "rocket")
# KADID-10k types whose mean DMOS is not ordered by level: colour shift (levels 4 and 5
# tie), mean shift and contrast change (level 3 is best; KADID-10k's dmos.csv).
NOT_MONOTONE = {5, 18, 25}


def _table_rows():
  with open(mini_kadid.TABLE_PATH, newline="") as f:
    return list(csv.DictReader(f))


def test_dmos_table_shape_and_range():
  rows = _table_rows()
  assert len(rows) == 125
  assert list(rows[0]) == list(mk.COLUMNS)
  assert [(int(r["type_id"]), int(r["level"])) for r in rows] == [
      (t, l) for t in range(1, 26) for l in range(1, 6)]
  for r in rows:
    assert r["type_name"] == DISTORTIONS[int(r["type_id"])].name
    assert 1 <= float(r["dmos_mean"]) <= 5 and 0 < float(r["dmos_std"]) < 2
    assert int(r["n"]) == 81
  t = mini_kadid.load_dmos_table()
  assert t.mean.shape == (25, 5) and t.label(1, 1) == float(rows[0]["dmos_mean"])


def test_dmos_table_ordered_by_level():
  t = mini_kadid.load_dmos_table()
  monotone = {i + 1 for i in range(25) if np.all(np.diff(t.mean[i]) < 0)}
  assert monotone == set(range(1, 26)) - NOT_MONOTONE
  # Mean shift and contrast change peak at level 3 (identity / mildest change).
  assert t.mean[17].argmax() == 2 and t.mean[24].argmax() == 2
  assert t.mean[:, 0].mean() > t.mean[:, 4].mean() + 1.5


def test_pristine_photos():
  imgs = {p: mini_kadid.pristine_image(p, (48, 64)) for p in mini_kadid.PHOTOS}
  for p, img in imgs.items():
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8, p
    assert img.std() > 10, p                    # a real picture, not a flat field
  # Different photographs (chelsea is listed once: skimage's `cat` is the same photo).
  flat = np.stack([i.reshape(-1).astype(float) for i in imgs.values()])
  assert np.all(np.abs(np.corrcoef(flat) - np.eye(len(flat))) < 0.99)
  big = np.arange(100 * 200 * 3, dtype=np.uint8).reshape(100, 200, 3)
  np.testing.assert_array_equal(mini_kadid.fit_to_size(big, (100, 200)), big)
  with pytest.raises(ValueError, match="unknown"):
    mini_kadid.pristine_image("camera")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
  root = tmp_path_factory.mktemp("mini")
  return root, mini_kadid.load(root, photos=PHOTOS, size=SIZE, types=TYPES, seed=0)


def test_generation_is_deterministic_and_labelled(generated, tmp_path):
  root, src = generated
  assert len(src) == len(PHOTOS) * len(TYPES) * 5
  again = mini_kadid.load(tmp_path, photos=PHOTOS, size=SIZE, types=TYPES, seed=0)
  table = mini_kadid.load_dmos_table()
  for i in range(len(src)):
    a, b = src.records[i], again.records[i]
    assert a["name"] == b["name"]
    np.testing.assert_array_equal(a["image"], b["image"], err_msg=a["name"])
    assert a["image"].shape == (*SIZE, 3) and a["image"].dtype == np.uint8
    # Labels: KADID's content-independent DMOS mean of the (type, level).
    assert a["score"] == table.mean[a["dist_type"] - 1, a["level"] - 1]
    assert a["std"] == table.std[a["dist_type"] - 1, a["level"] - 1]
  np.testing.assert_array_equal(src.index["score"],
                                table.label(src.index["dist_type"], src.index["level"]))
  assert "content-independent" in src.metadata["label_note"]
  # The seed matters for stochastic types (white noise), not for deterministic ones.
  other = mini_kadid.load(tmp_path, photos=PHOTOS[:1], size=SIZE, types=(1, 11), seed=1)
  same = {r: src.records[r] for r in range(10)}
  for i in range(10):
    o = other.records[i]
    assert o["name"] == same[i]["name"]
    assert np.array_equal(o["image"], same[i]["image"]) == (o["dist_type"] == 1)


def test_distortions_grow_with_level(generated):
  _, src = generated
  for i in range(0, len(src), 5):
    ref = src.reference_image(src.records[i]["reference"]).astype(float)
    err = [np.abs(src.records[i + l]["image"] - ref).mean() for l in range(5)]
    assert err[4] > err[0], src.records[i]["name"]


def test_cache_subsets_and_splits(generated, monkeypatch):
  root, src = generated
  def fail(*a, **k):
    raise AssertionError("should have been read from the cache")
  monkeypatch.setattr(mini_kadid, "_generate", fail)
  cached = mini_kadid.load(root, photos=PHOTOS, size=SIZE, types=TYPES, seed=0,
                           in_memory=True)
  for i in (0, 7, len(src) - 1):
    np.testing.assert_array_equal(cached.records[i]["image"], src.records[i]["image"])
  monkeypatch.undo()
  # An image depends only on (seed, photo, type, level): a subset reproduces it.
  sub = mini_kadid.load(root, photos=("coffee",), size=SIZE, types=(11,), seed=0)
  j = list(src.index["name"]).index(sub.records[3]["name"])
  np.testing.assert_array_equal(sub.records[3]["image"], src.records[j]["image"])
  part = splits.make_split(src.index, src.metadata["split_kind"], seed=0)
  contents = [set(src.index["content"][part[p]]) for p in splits.PARTS]
  assert all(len(c) == 1 for c in contents) and set.union(*contents) == set(PHOTOS)
  assert sum(len(v) for v in part.values()) == len(src)


def test_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="unknown"):
    mini_kadid.load(tmp_path, photos=("lena",))
  with pytest.raises(ValueError, match="types"):
    mini_kadid.load(tmp_path, photos=PHOTOS, types=(0,))
