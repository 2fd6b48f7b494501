"""Stage 1 training throughput: images per second of the data-parallel train step
(InceptionResNetV2 + multi-task head on narrow MLSP, MSE on 11 proxies, Adam) at
299x299, on all local devices.

  python experiments/bench_train.py [--batch 8] [--steps 5] [--size 299]
      [--dtype float32|bfloat16] [--width 1.0] [--json OUT.json]

The timed steps exclude compilation (one warm-up step first); the batch is random
images and targets already on the devices, so this measures the step alone (no input
pipeline). `--batch` is the global batch (a multiple of the device count).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from deepfl_jax import train as tr
from deepfl_jax.train import stage1


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--size", type=int, default=299)
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--width", type=float, default=1.0, help="filter multiplier (1 = Keras)")
  p.add_argument("--json", default=None, help="also write the result here")
  a = p.parse_args()

  mesh = tr.make_mesh()
  tr.check_batch_size(a.batch, mesh, key="--batch")
  model = stage1.make_model(width=a.width, dtype=tr.compute_dtype(a.dtype))
  t0 = time.perf_counter()
  v = stage1.init_variables(model, jax.random.PRNGKey(0), (a.size, a.size))
  t_init = time.perf_counter() - t0
  tx = tr.make_optimizer(name="adam", learning_rate=1e-4)
  state = tr.replicate(tr.TrainState.create(params=v["params"],
                                            batch_stats=v["batch_stats"], tx=tx,
                                            rng=jax.random.PRNGKey(1)), mesh)
  del v
  step = tr.make_train_step(stage1.make_loss_fn(model), tx, mesh)
  rng = np.random.default_rng(0)
  local = a.batch // jax.process_count()
  batch = tr.shard_batch({
      "image": rng.uniform(size=(local, a.size, a.size, 3)).astype(np.float32),
      "target": rng.uniform(size=(local, 11)).astype(np.float32)}, mesh)

  t0 = time.perf_counter()
  state, m = step(state, batch)
  jax.block_until_ready(m)
  t_first = time.perf_counter() - t0
  times = []
  for _ in range(a.steps):
    t0 = time.perf_counter()
    state, m = step(state, batch)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  per_step = float(np.median(times))
  result = {
      "images_per_s": a.batch / per_step,
      "step_s_median": per_step, "step_s_all": times,
      "first_step_s (compile + run)": t_first, "init_s": t_init,
      "loss_last": float(m["loss"]), "batch": a.batch, "size": a.size,
      "dtype": a.dtype, "width": a.width,
      "params": tr.param_count(state.params),
      "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      "backend": jax.default_backend(), "jax": jax.__version__,
      "cpu_count": os.cpu_count(), "machine": platform.machine(),
  }
  print(json.dumps(result, indent=1))
  if a.json:
    with open(a.json, "w") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
