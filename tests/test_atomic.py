"""Atomic writes: a writer killed (SIGKILL) mid-write or just before its rename leaves
the previous file intact; a failed write leaves no temporary file behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deepfl_jax import atomic
from deepfl_jax.data import histeq

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The child writes `argv[1]` and is killed by the test while it writes.
_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from deepfl_jax import atomic
    path, where = sys.argv[1], sys.argv[2]
    if where == "mid-write":
      with atomic.replacing(path) as tmp:
        with open(tmp, "w") as f:
          f.write('{"half": ')
          f.flush()
          print("writing", flush=True)
          time.sleep(120)
    else:  # a real shared file of a run: the equaliser, killed before its rename
      from deepfl_jax.data import histeq
      eq = histeq.fit(np.random.default_rng(1).uniform(size=(40, 11)))
      def stalled(*args):
        print("writing", flush=True)
        time.sleep(120)
      os.replace = stalled
      histeq.save(eq, path)
    """)


@pytest.mark.parametrize("where", ["mid-write", "before-rename"])
def test_killed_writer_leaves_previous_file_intact(tmp_path, where):
  path = tmp_path / "equalizer.json"
  old = histeq.fit(np.random.default_rng(0).uniform(size=(30, 11)))
  histeq.save(old, path)
  before = path.read_bytes()
  env = dict(os.environ, PYTHONPATH=_ROOT, JAX_PLATFORMS="cpu")
  child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), where],
                           stdout=subprocess.PIPE, env=env, text=True)
  try:
    assert child.stdout.readline().strip() == "writing"
    assert any(p.name.startswith(".equalizer.json.") for p in tmp_path.iterdir())
  finally:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
  assert child.returncode == -signal.SIGKILL
  assert path.read_bytes() == before
  again = histeq.load(path)
  np.testing.assert_array_equal(np.asarray(again.values), np.asarray(old.values))


def test_writes_replace_and_failures_clean_up(tmp_path):
  path = tmp_path / "sub" / "results.json"
  atomic.write_json(path, {"a": 1})
  atomic.write_json(path, {"a": 2})
  assert json.loads(path.read_text()) == {"a": 2}
  mask = os.umask(0)
  os.umask(mask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask  # as a plain open() gives
  with pytest.raises(RuntimeError):
    with atomic.replacing(path) as tmp:
      tmp.write_text("partial")
      raise RuntimeError("writer failed")
  assert json.loads(path.read_text()) == {"a": 2}
  assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]
  atomic.save_npy(tmp_path / "f.npy", np.arange(5))
  np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), np.arange(5))
  atomic.savez(tmp_path / "f.npz", x=np.ones(2))
  with np.load(tmp_path / "f.npz") as z:
    np.testing.assert_array_equal(z["x"], np.ones(2))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy", "f.npz", "sub"]
