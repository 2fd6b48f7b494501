"""Subprocess worker for tests/data/test_generation.py: one process of a 2-process
generation (JAX must see XLA_FLAGS=--xla_force_host_platform_device_count=2 first).

python _generate_worker.py TFDS_IN OUT_DIR PROCESS_INDEX PROCESS_COUNT
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import jax  # noqa: E402

from deepfl_jax.data import generation, pipeline  # noqa: E402
from tests.data.test_generation import SEED, SHARD, TYPES  # noqa: E402

if __name__ == "__main__":
  tfds_in, out, p, n = sys.argv[1:]
  assert jax.local_device_count() == 2, jax.devices()
  source = pipeline.load_source("kadis700k", tfds_in, with_references=False)
  r = generation.generate(source, out, seed=SEED, shard_size=SHARD, types=TYPES,
                          process_index=int(p), process_count=int(n), progress=False)
  print(json.dumps(r))
