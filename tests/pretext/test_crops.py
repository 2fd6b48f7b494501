"""The pretext streams crop with Stage 1's transform (issue 15 item 4: the comparison
uses the demo's protocol, random scales and flips of the pristine images)."""
from __future__ import annotations

import ml_collections
import numpy as np

from deepfl_jax.data import pipeline
from deepfl_jax.pretext import crops
from deepfl_jax.train import stage1


def _source():
  rng = np.random.default_rng(0)
  recs = [{"image": rng.integers(0, 256, (60, 80, 3), np.uint8), "name": f"p{i}",
           "content": f"p{i}"} for i in range(3)]
  return pipeline.in_memory_source(recs, index_fields=("name", "content"))


def test_pristine_crops_apply_the_given_transform():
  seen = []

  def transform(ex, rng):
    seen.append(ex["name"])
    return dict(ex, image=np.full((16, 24, 3), 7, np.uint8))

  it, pi, pc = crops.pristine_crops(_source(), None, per_process=2, crop_size=(16, 24),
                                    seed=0, process_index=0, process_count=1,
                                    transform=transform)
  with it:
    b = next(it)
  assert (pi, pc) == (0, 1) and len(seen) >= 2
  assert b["image"].shape == (2, 16, 24, 3) and np.all(b["image"] == 7)


def test_default_crop_is_native_scale_and_stage1_transform_rescales():
  src = _source()
  it, _, _ = crops.pristine_crops(src, None, per_process=3, crop_size=(16, 24), seed=1,
                                  process_index=0, process_count=1)
  with it:
    b = next(it)
  # Native scale: each crop is a window of some source image.
  windows = [im[y:y + 16, x:x + 24] for im in (r["image"] for r in src.records)
             for y in range(60 - 15) for x in range(80 - 23)]
  assert all(any(np.array_equal(c, w) for w in windows) for c in b["image"])
  # Stage 1's augmenting transform (config.stage1.augment) reaches the stream.
  c = ml_collections.ConfigDict({
      "source": "pristine", "crop_size": (16, 24),
      "augment": {"enabled": True, "min_scale": 0.25, "max_scale": 0.3, "flip": True}})
  t = stage1._crop_transform(c)  # pylint: disable=protected-access
  it, _, _ = crops.pristine_crops(src, None, per_process=3, crop_size=(16, 24), seed=1,
                                  process_index=0, process_count=1, transform=t)
  with it:
    b2 = next(it)
  assert b2["image"].shape == (3, 16, 24, 3) and b2["image"].dtype == np.uint8
  # Scale <= 0.3: a crop covers >= 53 x 80 source pixels (the whole 60 x 80 image
  # width), so no crop is a native-scale window.
  assert not any(any(np.array_equal(x, w) for w in windows) for x in b2["image"])
