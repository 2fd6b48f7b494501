"""A width-reduced InceptionResNetV2 (width 1/8, one block per stage: 556 MLSP
features), a few tiny images of two sizes and Stage 1 checkpoints of it, shared by the
Stage 2 tests (weights, features, feature cache, run_stage2); their fixtures
`small_variables` and `tiny_source` are in conftest.py."""
from __future__ import annotations

import jax
import numpy as np

from deepfl_jax.data.pipeline import in_memory_source
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.train.checkpoint import Checkpointer

WIDTH, BLOCKS = 0.125, (1, 1, 1)
SMALL = irv2.InceptionResNetV2(width=WIDTH, blocks=BLOCKS)
NUM_FEATURES = sum(irv2.tap_widths(WIDTH, BLOCKS))


def init_small_variables(seed: int = 3) -> dict:
  """Random variables of `SMALL` as NumPy arrays."""
  return jax.tree.map(np.asarray, irv2.init_variables(SMALL, seed=seed))


def make_tiny_source(n=7):
  """n images: sizes alternate 75x75 / 80x96 (so size groups interleave), scores."""
  rng = np.random.default_rng(0)
  examples = []
  for i in range(n):
    shape = (75, 75, 3) if i % 3 else (80, 96, 3)
    examples.append({"image": rng.integers(0, 256, shape, dtype=np.uint8),
                     "name": f"im{i}.png", "content": f"c{i % 4}",
                     "score": float(i) / 2})
  return in_memory_source(examples, index_fields=("name", "content", "score"),
                          metadata={"name": "tiny", "split_kind": "content",
                                    "score_name": "mos"})


def save_stage1(folder, step: int, v) -> None:
  """A Stage 1 checkpoint (backbone `v` beside a head) at `folder/<step>`."""
  state = {"step": np.int32(step),
           "params": {"backbone": v["params"], "head": {"w": np.ones(2, np.float32)}},
           "batch_stats": {"backbone": v["batch_stats"], "head": {}}}
  with Checkpointer(folder, save_every=1, async_save=False) as c:
    c.save(step, state, force=True)
