"""Subprocess worker for tests/train/test_parallel.py (JAX must see its flags first).

python _dp_worker.py local OUT.json
    (with XLA_FLAGS=--xla_force_host_platform_device_count=4) one data-parallel step vs
    the single-device step, batch-norm synchronisation, batch-size error.
python _dp_worker.py multi OUT_DIR PORT PROCESS_ID
    one of two processes of a jax.distributed run on 127.0.0.1:PORT; trains a few steps
    with the loop and writes its final parameters to OUT_DIR/params_<id>.npz.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tiny  # noqa: E402
import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from deepfl_jax import config_defaults  # noqa: E402
from deepfl_jax import train as tr  # noqa: E402
from deepfl_jax.data import pipeline  # noqa: E402


def local(out_path: str):
  assert jax.device_count() == 4, jax.devices()
  mesh = tr.make_mesh()
  data = _tiny.dataset(8, seed=3)  # global batch 8: 2 per device
  tx = _tiny.optimizer()
  state0 = _tiny.initial_state()
  steps = 3

  # Reference: plain single-device training on the whole batch, no mesh at all.
  ref_model = _tiny.TinyNet(axis_name=None)
  ref_loss = _tiny.loss_fn_for(ref_model)

  @jax.jit
  def ref_step(state, batch):
    (loss, (stats, _)), g = jax.value_and_grad(ref_loss, has_aux=True)(
        state.params, state.batch_stats, batch, None)
    return state.apply_gradients(tx, g, batch_stats=stats), loss

  ref = state0
  ref_losses, ref_params = [], []
  for _ in range(steps):
    ref, loss = ref_step(ref, data)
    ref_losses.append(float(loss))
    ref_params.append(ref.params)

  def run(model):
    step = tr.make_train_step(_tiny.loss_fn_for(model), tx, mesh)
    state = tr.replicate(state0, mesh)
    batch = tr.shard_batch(data, mesh)
    losses, params = [], []
    for _ in range(steps):
      state, metrics = step(state, batch)
      losses.append(float(metrics["loss"]))
      params.append(tr.to_host(state.params))
    return state, losses, params

  dp, dp_losses, dp_params = run(_tiny.TinyNet())
  # Negative control: per-device ("ghost") batch-norm differs from the full batch.
  ghost, _, ghost_params = run(_tiny.TinyNet(axis_name=None))

  def maxdiff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

  # Batch statistics of the batch the last step saw (momentum 0): full-batch conv
  # features under the parameters that step started from.
  feats = ref_model.apply({"params": dp_params[-2]}, data["image"], features_only=True)
  full_mean = np.asarray(feats.mean(axis=(0, 1, 2)))
  full_var = np.asarray(feats.var(axis=(0, 1, 2)))

  bs = dp.batch_stats["bn"]
  shards_mean = [np.asarray(s.data) for s in bs["mean"].addressable_shards]
  shards_var = [np.asarray(s.data) for s in bs["var"].addressable_shards]
  shards_kernel = [np.asarray(s.data) for s in
                   dp.params["conv"]["kernel"].addressable_shards]

  try:
    tr.check_batch_size(10, mesh)
    batch_error = None
  except ValueError as e:
    batch_error = str(e)
  cfg = ml_collections.ConfigDict({"train": config_defaults.train_config(),
                                   "optim": config_defaults.optim_config()})
  cfg.train.batch_size = 6
  try:
    tr.fit(cfg, "/nonexistent/never-created", init_variables=_tiny.init_variables,
           loss_fn=_tiny.loss_fn_for(_tiny.TinyNet()), batches=None)
    fit_error = None
  except ValueError as e:
    fit_error = str(e)

  result = {
      "n_devices": jax.device_count(),
      "n_shards": len(shards_mean),
      "param_diff_per_step": [maxdiff(a, b) for a, b in zip(dp_params, ref_params)],
      "ghost_param_diff_per_step": [maxdiff(a, b) for a, b in
                                    zip(ghost_params, ref_params)],
      "leaf_diff": jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), dp_params[-1],
                                tr.to_host(ref.params)),
      "param_change": maxdiff(dp.params, state0.params),
      "stats_diff_ref": maxdiff(dp.batch_stats, ref.batch_stats),
      "opt_diff": maxdiff(dp.opt_state, ref.opt_state),
      "loss_diff": max(abs(a - b) for a, b in zip(dp_losses, ref_losses)),
      "mean_full_diff": float(np.max(np.abs(shards_mean[0] - full_mean))),
      "var_full_diff": float(np.max(np.abs(shards_var[0] - full_var))),
      "mean_shard_spread": max(float(np.max(np.abs(s - shards_mean[0])))
                               for s in shards_mean),
      "var_shard_spread": max(float(np.max(np.abs(s - shards_var[0])))
                              for s in shards_var),
      "kernel_shard_spread": max(float(np.max(np.abs(s - shards_kernel[0])))
                                 for s in shards_kernel),
      "ghost_param_diff": maxdiff(ghost.params, ref.params),
      "ghost_var_diff": float(np.max(np.abs(np.asarray(
          ghost.batch_stats["bn"]["var"].addressable_shards[0].data) - full_var))),
      "step": int(tr.to_host(dp.step)),
      "batch_error": batch_error,
      "fit_error": fit_error,
  }
  with open(out_path, "w") as f:
    json.dump(result, f)


def multi(out_dir: str, port: str, process_id: str):
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                             process_id=int(process_id), initialization_timeout=60,
                             heartbeat_timeout_seconds=30, shutdown_timeout_seconds=30)
  assert jax.process_count() == 2 and jax.device_count() == 2 * jax.local_device_count()
  # Each process reads only its half of each global batch, through the Grain pipeline
  # (its iterator state goes into the checkpoint, one file per process).
  data = _tiny.dataset()
  examples = [{k: v[i] for k, v in data.items()} for i in range(len(data["image"]))]
  state = _tiny.run_loop(
      os.path.join(out_dir, "run"), num_steps=5, checkpoint_every=2,
      batches=lambda start: pipeline.batches(examples, batch_size=4, seed=0,
                                             start_step=start, fields=("image", "target")))
  params = tr.to_host(state.params)
  flat = {"/".join(str(k.key) for k in path): v
          for path, v in jax.tree_util.tree_flatten_with_path(params)[0]}
  np.savez(os.path.join(out_dir, f"params_{process_id}.npz"), step=tr.to_host(state.step),
           local_devices=jax.local_device_count(), **flat)
  jax.distributed.shutdown()


if __name__ == "__main__":
  {"local": local, "multi": multi}[sys.argv[1]](*sys.argv[2:])
