"""Data-parallel training: 4 simulated CPU devices vs one device, synchronised batch
norm, the batch-size error, and two processes under `jax.distributed` on localhost.

JAX reads XLA_FLAGS / the distributed settings once per process, so these run in
subprocesses (`_dp_worker.py`), with bounded timeouts and loopback addresses only.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from deepfl_jax import train as tr
from tests.train import _procs, _tiny

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "_dp_worker.py"


_env = _procs.env


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
  out = tmp_path_factory.mktemp("dp") / "result.json"
  proc = subprocess.run([sys.executable, str(WORKER), "local", str(out)], env=_env(4),
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(out.read_text())


@pytest.mark.slow
def test_data_parallel_step_equals_single_device_step(four_devices):
  r = four_devices
  assert r["n_devices"] == 4 and r["n_shards"] == 4 and r["step"] == 3
  # One step on 4 devices (2 examples each) == one step on the whole batch of 8.
  assert r["param_diff_per_step"][0] < 1e-5
  # Adam amplifies float32 reduction-order noise in small gradients a little.
  assert max(r["param_diff_per_step"]) < 1e-4
  assert r["loss_diff"] < 1e-5 and r["opt_diff"] < 1e-5
  assert r["param_change"] > 0.05  # the steps did move the parameters
  # The replicas hold bit-identical parameters.
  assert r["kernel_shard_spread"] == 0.0


def test_batch_norm_statistics_synchronised(four_devices):
  r = four_devices
  assert r["mean_shard_spread"] == 0.0 and r["var_shard_spread"] == 0.0
  # Running statistics (momentum 0) == statistics of the full global batch.
  assert r["mean_full_diff"] < 1e-5 and r["var_full_diff"] < 1e-5
  assert r["stats_diff_ref"] < 1e-4
  # Control: per-device batch norm (no axis name) is measurably different, so the
  # comparisons above can fail.
  assert r["ghost_param_diff_per_step"][0] > 1e-3 and r["ghost_var_diff"] > 1e-3


def test_batch_size_not_divisible_names_key_and_fix(four_devices):
  for msg, bad, fix in ((four_devices["batch_error"], 10, "8 or 12"),
                        (four_devices["fit_error"], 6, "4 or 8")):
    assert msg is not None
    assert f"config.train.batch_size={bad}" in msg
    assert f"--config.train.batch_size={fix}" in msg and "multiple of 4" in msg


@pytest.mark.slow  # two jax.distributed processes
def test_two_processes_end_with_identical_parameters(tmp_path):
  port = _procs.free_port()
  codes, logs = _procs.run_together(
      [[sys.executable, str(WORKER), "multi", str(tmp_path), str(port), str(i)]
       for i in range(2)], _env(2))
  assert codes == [0, 0], "\n".join(l[-3000:] for l in logs)
  a, b = (dict(np.load(tmp_path / f"params_{i}.npz")) for i in range(2))
  assert int(a["step"]) == int(b["step"]) == 5 and int(a["local_devices"]) == 2
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)
  # Both processes wrote one checkpoint series (steps 2, 4 and 5 at exit).
  steps = sorted(int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir()
                 if p.name.isdigit())
  assert steps == [2, 4, 5]
  # Each process's input position (Grain iterator state) is saved with the state.
  for i in range(2):
    saved = tmp_path / "run" / "checkpoints" / "4" / "data" / f"process_{i}-of-2.json"
    assert json.loads(saved.read_text())["step"] == 4

  # The same run in this process on one device (sync BN over the whole batch) matches.
  ref = _tiny.run_loop(str(tmp_path / "ref"), num_steps=5,
                       mesh=_make_one_device_mesh())
  ref_params = {"/".join(str(k.key) for k in path): np.asarray(v) for path, v in
                jax.tree_util.tree_flatten_with_path(ref.params)[0]}
  assert ref_params.keys() == {k for k in a if k not in ("step", "local_devices")}
  for k, v in ref_params.items():
    np.testing.assert_allclose(a[k], v, atol=1e-4, rtol=0, err_msg=k)
  init = jax.tree_util.tree_flatten_with_path(_tiny.initial_state().params)[0]
  moved = max(float(np.max(np.abs(a["/".join(str(k.key) for k in path)] - np.asarray(v))))
              for path, v in init)
  assert moved > 1e-2  # five Adam steps at lr 3e-2 moved the parameters


def _make_one_device_mesh():
  return tr.make_mesh(jax.devices()[:1])
