"""SIGTERM / SIGINT at any point of a step: the loop finishes the step, checkpoints the
step reached, exits 143 / 130 with one line, and a rerun resumes there and ends where an
uninterrupted run ends. The worker signals itself at a chosen point, so no timing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from deepfl_jax import train as tr
from deepfl_jax.train import loop
from tests.train import _procs, _tiny

STEPS = 7
_WORKER = os.path.join(os.path.dirname(__file__), "_signal_worker.py")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  return _tiny.run_loop(str(tmp_path_factory.mktemp("full")), STEPS)


def _ckpt_steps(workdir):
  return sorted(int(p) for p in os.listdir(os.path.join(workdir, "checkpoints"))
                if p.isdigit())


# (point, step at which the signal arrives, signal, checkpoint expected, exit status).
# Checkpoints are due every 2 steps; step 4's "save" case signals while it is written.
CASES = [("load", 2, "SIGTERM", 3, 143), ("step", 4, "SIGTERM", 5, 143),
         ("save", 4, "SIGTERM", 4, 143), ("step", 2, "SIGINT", 3, 130)]


@pytest.mark.slow
@pytest.mark.parametrize("point,at,signame,reached,code", CASES)
def test_signal_checkpoints_step_reached_and_resumes(uninterrupted, tmp_path, point, at,
                                                     signame, reached, code):
  workdir = str(tmp_path / "run")
  # A stray temporary folder of a save that a killed process never finished.
  stray = tmp_path / "run" / "checkpoints" / "2.orbax-checkpoint-tmp-1700000000"
  stray.mkdir(parents=True)
  env = dict(os.environ, PYTHONPATH=os.getcwd(), JAX_PLATFORMS="cpu")
  p = subprocess.run([sys.executable, _WORKER, workdir, point, str(at), signame,
                      str(STEPS)], capture_output=True, text=True, timeout=240, env=env)
  assert p.returncode == code, p.stderr[-3000:]
  last = p.stderr.strip().splitlines()[-1]
  assert last.startswith(f"worker: stopped by {signame} at step {reached};"), last
  assert "Traceback" not in p.stderr and "could not checkpoint" not in p.stderr
  assert _ckpt_steps(workdir)[-1] == reached
  assert not stray.exists()
  assert not [d for d in os.listdir(os.path.join(workdir, "checkpoints"))
              if "tmp" in d]
  calls = []

  def counting(step):
    def counted(state, batch):
      calls.append(1)
      return step(state, batch)
    return counted

  resumed = _tiny.run_loop(workdir, STEPS, step_wrapper=counting)
  assert len(calls) == STEPS - reached  # resumed from the step reached
  for a, b in zip(jax.tree.leaves(tr.to_host(resumed.params)),
                  jax.tree.leaves(tr.to_host(uninterrupted.params)), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_signal_to_one_process_stops_all_at_the_same_step(tmp_path):
  port = _procs.free_port()
  workdir = str(tmp_path / "run")
  codes, logs = _procs.run_together(
      [[sys.executable, _WORKER, "multi", workdir, str(port), str(i)] for i in range(2)],
      _procs.env(2))
  assert codes == [143, 143], "\n".join(l[-2000:] for l in logs)
  # Process 0 got SIGTERM inside step 6; process 1 got none. Both stopped at step 8,
  # the first log / checkpoint step after it (logs and saves every 4 steps), and saved
  # that one checkpoint (orbax writes it jointly).
  for log in logs:
    assert "worker: stopped by SIGTERM at step 8;" in log
    # The flag was gathered at the start and at steps 1, 4 and 8 only: not per step.
    assert "worker: 4 stop-flag gathers" in log
  assert _ckpt_steps(workdir) == [4, 8]


def test_several_processes_gather_the_flag_only_at_boundaries(monkeypatch):
  gathered = []

  def allgather(x):  # process 1 of 2 saw SIGTERM
    gathered.append(int(x))
    return np.array([x, signal.SIGTERM], np.int32)

  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(loop, "multihost_utils",
                      types.SimpleNamespace(process_allgather=allgather))
  stop = loop._StopSignals()  # pylint: disable=protected-access
  assert not stop.requested(boundary=False) and gathered == []  # no round trip
  assert stop.requested(boundary=True) and gathered == [0]
  assert stop.signum == signal.SIGTERM
