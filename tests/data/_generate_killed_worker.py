"""Subprocess worker for tests/data/test_generation.py: a one-device generation that
the test kills with SIGKILL while it writes its second shard.

python _generate_killed_worker.py TFDS_IN OUT_DIR

After the first shard is on disk, the second shard's array_record writer stops half
way through its records (its temporary file open, holding whatever the writer has
flushed), prints KILL_ME and waits; the test then kills the process. Nothing in
deepfl_jax is patched except that writer, so what is on disk is what a real kill at
that moment leaves.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import jax  # noqa: E402

from deepfl_jax.data import generation, pipeline  # noqa: E402
from tests.data.test_generation import SEED, SHARD, TYPES  # noqa: E402

_write = generation._write_array_record  # pylint: disable=protected-access
_calls = []


def _write_then_hang(path, records):
  _calls.append(path)
  if len(_calls) == 1:
    return _write(path, records)
  # The second shard: write half of its records, then wait to be killed.
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  w = array_record_module.ArrayRecordWriter(str(path), "group_size:1")
  for r in records[:len(records) // 2]:
    w.write(r)
  print("KILL_ME", path, flush=True)
  time.sleep(600)
  raise SystemExit("not killed")


if __name__ == "__main__":
  tfds_in, out = sys.argv[1:]
  generation._write_array_record = _write_then_hang  # pylint: disable=protected-access
  source = pipeline.load_source("kadis700k", tfds_in, with_references=False)
  generation.generate(source, out, seed=SEED, shard_size=SHARD, types=TYPES,
                      progress=False, devices=jax.devices()[:1])
