"""Subprocess worker for the multi-device tests of tests/data/test_synthesis.py (JAX
must see XLA_FLAGS=--xla_force_host_platform_device_count=4 before it is imported).

python _synth_worker.py OUT.json WORKDIR
  For the "uniform" and "kadis" assignments: five Stage 1 steps of the training loop
  (tiny network, 176 px crops, 3 distortion types incl. type 22) on 4 devices, counting
  every read of a jax.Array to the host (`ArrayImpl._value`, the funnel of
  np.asarray / float / int / bool / tolist) per phase; the images and targets of
  steps 3..5 against the one-device stream; per-device FLOPs of the synthesis +
  label program on 4 devices vs the one-device program.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax._src import array  # noqa: E402

from deepfl_jax import train as tr  # noqa: E402
from deepfl_jax.data import histeq, mini_kadid, synthesis  # noqa: E402
from deepfl_jax.metrics import METRIC_NAMES  # noqa: E402
from deepfl_jax.train import loop, parallel, progress, stage1  # noqa: E402

CROP = (176, 176)
TYPES = (1, 11, 22)


class ReadCounter:
  """Counts conversions of jax.Arrays to host values, tagged with the current phase."""

  def __init__(self):
    self.cls = array.ArrayImpl
    self.orig = array.ArrayImpl._value
    self.events = []          # (phase, shape)
    self.phase = "setup"
    counter = self

    def value(arr):
      counter.events.append((counter.phase, tuple(arr.shape)))
      return counter.orig.fget(arr)

    self.cls._value = property(value)

  def close(self):
    self.cls._value = self.orig


def pristine(assignment):
  names = ("astronaut", "coffee", "chelsea", "rocket")
  return [{"image": mini_kadid.pristine_image(n, (192, 200)), "content": n,
           "dist_type": TYPES[i % len(TYPES)]} for i, n in enumerate(names)]


def run_loop(assignment, workdir, counter):

  class TapNet(nn.Module):
    @nn.compact
    def __call__(self, x, train=False, taps=False, final=True):
      x = nn.Conv(4, (3, 3), strides=4, use_bias=False)(x)
      x = nn.BatchNorm(use_running_average=not train, axis_name=tr.DATA_AXIS)(x)
      return None, (nn.relu(x),)

  model = stage1.make_model(width=0.125, blocks=(1, 1, 1), head_hidden=(8,),
                            head_dropout=(0.0,)).clone(backbone=TapNet())
  mesh = tr.make_mesh()
  kadis = assignment == "kadis"
  # 8 images on 4 devices: 2 per device ("uniform"), or 4 crops x 5 levels ("kadis").
  syn = synthesis.SynthesisConfig(crop_size=CROP, batch_size=4 if kadis else 8,
                                  assignment=assignment, types=TYPES, group_size=1)
  eq = histeq.Equalizer(values=jnp.tile(jnp.linspace(0.0, 1.0, 5), (11, 1)),
                        cdf=jnp.tile(jnp.linspace(0.0, 1.0, 5), (11, 1)),
                        higher_is_better=jnp.ones(11, bool), names=METRIC_NAMES)
  source = pristine(assignment)
  batches = stage1.synthesis_batches(source, syn, seed=5, equalizer=eq, mesh=mesh)
  tx = tr.make_optimizer(learning_rate=1e-3)
  init_rng = jax.random.PRNGKey(0)

  def init_state():
    v = jax.jit(lambda r: model.init(r, jnp.zeros((1, *CROP, 3)), train=False))(init_rng)
    return tr.TrainState.create(params=v["params"], batch_stats=v["batch_stats"],
                                tx=tx, rng=init_rng)

  seen, steps = [], [0]
  orig_shard = parallel.shard_batch
  orig_write = progress.MetricWriter.write

  def shard_batch(local, mesh_):
    steps[0] += 1
    counter.phase = f"{assignment}:step{steps[0]}"
    if steps[0] >= 3:
      seen.append(local)
    return orig_shard(local, mesh_)

  def write(self, step, metrics):
    counter.phase = f"{assignment}:log{step}"
    orig_write(self, step, metrics)
    counter.phase = f"{assignment}:after_log{step}"

  parallel.shard_batch, progress.MetricWriter.write = shard_batch, write
  try:
    inner = tr.make_train_step(stage1.make_loss_fn(model), tx, mesh)
    n_leaves = []

    def step_fn(state, batch):
      state, metrics = inner(state, batch)
      n_leaves.append(len(jax.tree.leaves(metrics)))
      return state, metrics

    loop.train(workdir=os.path.join(workdir, assignment), init_state=init_state,
               train_step=step_fn, batches=batches, num_steps=5, mesh=mesh,
               batch_size=20 if kadis else 8, checkpoint_every=1000, log_every=1000,
               progress=False)
  finally:
    parallel.shard_batch, progress.MetricWriter.write = orig_shard, orig_write
  counter.phase = "compare"
  with open(os.path.join(workdir, assignment, "metrics.jsonl")) as f:
    logged = [json.loads(line) for line in f]
  # The same steps from the one-device stream.
  one = tr.make_mesh(jax.devices()[:1])
  ref = list(synthesis.stream(source, config=syn, seed=5, equalizer=eq, start_step=2,
                              num_steps=3, mesh=one))
  diff = {k: max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k]))))
                 for a, b in zip(seen, ref)) for k in ("image", "target")}
  shards = [len(b["image"].addressable_shards) for b in seen]
  return {"logged_keys": sorted(k for k in logged[-1] if k != "step"),
          "metric_leaves": n_leaves,
          "diff": diff, "shards": shards,
          "ref_types": [np.asarray(r["dist_type"]).tolist() for r in ref],
          "n_images": [int(b["image"].shape[0]) for b in seen]}


def flops():
  syn = synthesis.SynthesisConfig(crop_size=CROP, batch_size=8, types=(1, 11),
                                  group_size=1)
  out = {}
  for name, devices in (("four", jax.devices()), ("one", jax.devices()[:1])):
    mesh = tr.make_mesh(devices)
    prog = synthesis.make_program(syn, mesh, seed=0, num_images=8, unroll=True)
    crops = jax.device_put(jnp.zeros((8, *CROP, 3), jnp.uint8),
                           jax.NamedSharding(mesh, jax.P(tr.DATA_AXIS)))
    rec = jax.device_put(jnp.zeros((8,), jnp.int32),
                         jax.NamedSharding(mesh, jax.P(tr.DATA_AXIS)))
    cost = prog.lower(crops, rec, np.int32(0), None).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    out[name] = float(cost["flops"])
  return out


def main(out_path, workdir):
  assert jax.device_count() == 4, jax.devices()
  counter = ReadCounter()
  result = {}
  try:
    for assignment in ("uniform", "kadis"):
      result[assignment] = run_loop(assignment, workdir, counter)
  finally:
    counter.close()
  reads = {}
  for phase, shape in counter.events:
    reads.setdefault(phase, []).append(shape)
  result["reads"] = reads
  result["flops"] = flops()
  with open(out_path, "w") as f:
    json.dump(result, f)


if __name__ == "__main__":
  main(*sys.argv[1:])
