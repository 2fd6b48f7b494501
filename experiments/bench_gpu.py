"""One table of the accelerator-bound parts, for a lent GPU (under 5 minutes there).

Rows (images/s, compilation excluded by a warm-up call, median of --reps timed calls):
  1. fused FR labels (`metrics.fused.fr_scores_core`, 11 metrics), 384x512, batch 64;
  2. Stage-1 synthesis + labels of a mixed batch (`synthesis.make_program` on all
     local devices: a type per image, distort, quantise, 11 labels, equalise);
  3. the Stage-1 train step (full InceptionResNetV2 + MLSP head, Adam), 384x512,
     float32 and bfloat16 compute;
  4. narrow MLSP features (`models.mlsp_extractor`), 384x512.
`--tiny` shrinks everything (176x176, batch 2, 1/8-width backbone, one block per
stage, 3 types) to prove the script runs on a CPU; those figures mean nothing.

  python experiments/bench_gpu.py [--tiny] [--reps 3] [--batch 64] [--train-batch 32]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepfl_jax import train as tr  # noqa: E402
from deepfl_jax.data import histeq, synthesis  # noqa: E402
from deepfl_jax.metrics import METRIC_NAMES  # noqa: E402
from deepfl_jax.metrics import fused  # noqa: E402
from deepfl_jax.metrics.sff import load_w  # noqa: E402
from deepfl_jax.models import InceptionResNetV2, mlsp_extractor  # noqa: E402
from deepfl_jax.train import stage1  # noqa: E402


def _rate(fn, n, reps):
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return n / float(np.median(times)), compile_s


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--tiny", action="store_true")
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--train-batch", type=int, default=32)
  a = p.parse_args()
  size = (176, 176) if a.tiny else (384, 512)
  batch = 2 if a.tiny else a.batch
  train_batch = 2 * jax.device_count() if a.tiny else a.train_batch
  width, blocks = ((0.125, (1, 1, 1)) if a.tiny else (1.0, (10, 20, 10)))
  types = (1, 11, 22) if a.tiny else None
  rng = np.random.default_rng(0)
  mesh = tr.make_mesh()
  rows = []

  x = jnp.asarray(rng.integers(0, 256, (batch, *size, 3)), jnp.float32)
  y = jnp.clip(x + jnp.asarray(rng.normal(0, 8, x.shape), jnp.float32), 0, 255)
  w = jnp.asarray(load_w(None), jnp.float32)
  labels = jax.jit(lambda x, y: fused.stack(fused.fr_scores_core(x, y, w)))
  rows.append(("fused FR labels (11 metrics)", batch, *_rate(lambda: labels(x, y),
                                                             batch, a.reps)))

  n_syn = batch - batch % mesh.devices.size or mesh.devices.size
  cfg = synthesis.SynthesisConfig(crop_size=size, batch_size=n_syn, group_size=1,
                                  types=types)
  eq = histeq.Equalizer(values=jnp.tile(jnp.linspace(0.0, 1.0, 8), (11, 1)),
                        cdf=jnp.tile(jnp.linspace(0.0, 1.0, 8), (11, 1)),
                        higher_is_better=jnp.ones(11, bool), names=METRIC_NAMES)
  prog = synthesis.make_program(cfg, mesh, seed=0, num_images=n_syn)
  sharded = jax.NamedSharding(mesh, jax.P(tr.DATA_AXIS))
  crops = jax.device_put(jnp.asarray(rng.integers(0, 256, (n_syn, *size, 3)),
                                     jnp.uint8), sharded)
  rec = jax.device_put(jnp.zeros((n_syn,), jnp.int32), sharded)
  step = [0]

  def synth():
    step[0] += 1        # a new plan (mixed types) every call
    return prog(crops, rec, np.int32(step[0]), eq)["target"]

  rows.append(("synthesis + labels, mixed types", n_syn, *_rate(synth, n_syn, a.reps)))

  for dtype in ("float32", "bfloat16"):
    model = stage1.make_model(width=width, blocks=blocks, dtype=tr.compute_dtype(dtype))
    v = stage1.init_variables(model, jax.random.PRNGKey(0), size)
    tx = tr.make_optimizer(name="adam", learning_rate=1e-4)
    state = tr.replicate(tr.TrainState.create(params=v["params"],
                                              batch_stats=v["batch_stats"], tx=tx,
                                              rng=jax.random.PRNGKey(1)), mesh)
    train_step = tr.make_train_step(stage1.make_loss_fn(model), tx, mesh, donate=False)
    data = tr.shard_batch({
        "image": rng.uniform(size=(train_batch, *size, 3)).astype(np.float32),
        "target": rng.uniform(size=(train_batch, 11)).astype(np.float32)}, mesh)
    rows.append((f"Stage-1 train step ({dtype})", train_batch,
                 *_rate(lambda: train_step(state, data)[1]["loss"], train_batch,
                        a.reps)))

  backbone = InceptionResNetV2(width=width, blocks=blocks)
  bv = jax.jit(lambda r: backbone.init(r, jnp.zeros((1, *size, 3)), taps=True,
                                       final=False))(jax.random.PRNGKey(0))
  extract = mlsp_extractor(bv, model=backbone)
  imgs = jnp.asarray(rng.uniform(size=(batch, *size, 3)), jnp.float32)
  rows.append(("narrow MLSP features", batch, *_rate(lambda: extract(imgs), batch,
                                                      a.reps)))

  dev = jax.devices()[0]
  print(f"\n{jax.device_count()} x {dev.device_kind} ({jax.default_backend()}), jax "
        f"{jax.__version__}, {size[0]}x{size[1]}" + (" (--tiny: NOT meaningful)"
                                                      if a.tiny else ""))
  print("| what | batch | images/s | first call (compile) s |")
  print("|---|---|---|---|")
  for name, n, rate, comp in rows:
    print(f"| {name} | {n} | {rate:.1f} | {comp:.0f} |")


if __name__ == "__main__":
  main()
