"""Subprocess worker for tests/pretext/test_run.py (JAX must see its flags first).

python _dp_worker.py OUT.json   (XLA_FLAGS=--xla_force_host_platform_device_count=4)
  two training steps of each pretext task on all 4 devices and on 1 device, same global
  batch: losses and parameters; plus the contrastive loss WITHOUT gathering negatives
  across devices (negative control).
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import _tiny_backbone  # noqa: E402
from deepfl_jax import config_defaults, train as tr  # noqa: E402
from deepfl_jax.pretext import contrastive, ranking, run  # noqa: E402


def main(out_path):
  assert jax.device_count() == 4, jax.devices()
  rng = np.random.default_rng(0)
  c = config_defaults.pretext_config()
  c.proj_hidden, c.proj_dim = 16, 8
  m = ml_collections.ConfigDict({"input_scale": "unit"})
  data = {
      "ranking": {"image": rng.uniform(size=(24, 16, 16, 3)).astype(np.float32),
                  "group": np.repeat(np.arange(4), 6).astype(np.int32),
                  "level": np.tile(np.arange(6), 4).astype(np.int32)},
      "contrastive": {"image": rng.uniform(size=(16, 16, 16, 3)).astype(np.float32)},
  }
  data["ranking_mlsp"] = data["ranking"]
  # Plain SGD: Adam would blow rounding-level gradient differences up to +-lr.
  tx = optax.sgd(0.05)
  res = {}
  for task in ("ranking", "ranking_mlsp", "contrastive", "contrastive_local"):
    base = task.replace("_local", "")
    model = run.attach_head(base, _tiny_backbone.TinyBackbone(), c, m)
    v = model.init(jax.random.PRNGKey(0), data[base]["image"][:1])
    if base == "contrastive":
      loss_fn = contrastive.make_loss_fn(
          model, temperature=0.2, axis_name=None if task.endswith("_local") else "data")
    else:
      loss_fn = ranking.make_loss_fn(model, margin=1.0)
    out = {}
    for n in (4, 1):
      mesh = tr.make_mesh(jax.devices()[:n])
      step = tr.make_train_step(loss_fn, tx, mesh, donate=False)
      state = tr.replicate(tr.TrainState.create(
          params=v["params"], batch_stats=v.get("batch_stats", {}), tx=tx,
          rng=jax.random.PRNGKey(1)), mesh)
      losses = []
      for _ in range(2):
        state, metrics = step(state, tr.shard_batch(data[base], mesh))
        losses.append(float(metrics["loss"]))
      params = tr.to_host(state.params)
      out[n] = {"losses": losses,
                "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(params)]}
    res[task] = {
        "losses_4": out[4]["losses"], "losses_1": out[1]["losses"],
        "param_maxdiff": max(float(np.max(np.abs(np.subtract(a, b))))
                             for a, b in zip(out[4]["params"], out[1]["params"])),
        "param_change": max(float(np.max(np.abs(np.subtract(a, b)))) for a, b in
                            zip(out[1]["params"], [np.asarray(x).ravel() for x in
                                                   jax.tree.leaves(v["params"])]))}
  with open(out_path, "w") as f:
    json.dump(res, f)


if __name__ == "__main__":
  main(sys.argv[1])
