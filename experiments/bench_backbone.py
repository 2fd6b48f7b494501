"""Throughput of the Flax InceptionResNetV2 next to Keras' (Keras 3, JAX backend).

Measures, in one process on the same devices:
  1. narrow MLSP extraction (43 taps -> 16,928-d) at 512x384 (KADID size), images/s;
  2. a training step at 299x299: backbone in training mode (batch statistics updated),
     global average pool, Dense(11), MSE on 11 proxy targets, Adam; images/s;
and, for the Flax forward pass, its XLA-counted FLOPs per image and the fraction of
this machine's measured float32 matrix-multiply rate it reaches.

Usage: python experiments/bench_backbone.py [--batch 8] [--iters 5] [--no-keras]
Keras is optional (`pip install keras`); it runs on the JAX backend here, so the
comparison is Flax vs Keras' own layers compiled by the same XLA.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import numpy as np
import optax

from deepfl_jax.models import InceptionResNetV2, mlsp_extractor
from deepfl_jax.models import inception_resnet_v2 as irv2

MLSP_SIZE = (384, 512)   # (H, W): KADID-10k 512x384
TRAIN_SIZE = (299, 299)


def _time(fn, iters: int, warmup: int = 1) -> tuple[float, float]:
  """(seconds per call, seconds of the first call incl. compilation)."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - t0
  for _ in range(warmup - 1):
    jax.block_until_ready(fn())
  t0 = time.perf_counter()
  for _ in range(iters):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / iters, first


def _first(fn) -> float:
  t0 = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - t0


def _interleaved(fns: dict, iters: int) -> dict:
  """Median seconds per call of each fn, timed in alternation (A B A B ...), so that
  load from other users of a shared machine hits all contenders alike."""
  times = {k: [] for k in fns}
  for _ in range(iters):
    for k, fn in fns.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times[k].append(time.perf_counter() - t0)
  return {k: float(np.median(v)) for k, v in times.items()}


def matmul_rate(n: int = 2048, iters: int = 10) -> float:
  """Measured float32 FLOP/s of an n x n matmul on the default device."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  per, _ = _time(lambda: f(a), iters, warmup=2)
  return 2 * n ** 3 / per


def flax_bench(batch: int, dtype) -> dict:
  """Zero-argument callables {"mlsp", "train"} plus "mlsp_flops_per_image"."""
  model = InceptionResNetV2(dtype=dtype)
  variables = irv2.init_variables(model)  # host-drawn: no per-parameter compilation
  out = {}
  x = jax.random.uniform(jax.random.PRNGKey(1), (batch, *MLSP_SIZE, 3))
  fn = mlsp_extractor(variables, model=model)
  out["mlsp"] = lambda: fn(x)
  flops = fn.func.lower(variables, x).cost_analysis()  # HLO estimate, no compile
  flops = flops[0] if isinstance(flops, (list, tuple)) else flops
  out["mlsp_flops_per_image"] = float(flops.get("flops", float("nan"))) / batch

  # Training step at 299x299: GAP -> Dense(11) -> MSE, Adam (lr 1e-4).
  head = jax.random.normal(jax.random.PRNGKey(2), (1536, 11)) * 0.01
  params = {"backbone": variables["params"], "head": head}
  stats = variables["batch_stats"]
  tx = optax.adam(1e-4)
  opt = tx.init(params)

  def loss_fn(params, stats, x, y):
    feats, upd = model.apply({"params": params["backbone"], "batch_stats": stats}, x,
                             train=True, mutable=["batch_stats"])
    pred = feats.mean(axis=(1, 2)).astype(jnp.float32) @ params["head"]
    return jnp.mean((pred - y) ** 2), upd["batch_stats"]

  @jax.jit
  def step(params, stats, opt, x, y):
    (loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), stats, opt, loss

  xt = jax.random.uniform(jax.random.PRNGKey(3), (batch, *TRAIN_SIZE, 3))
  yt = jax.random.uniform(jax.random.PRNGKey(4), (batch, 11))
  state = [params, stats, opt]

  def run():
    state[0], state[1], state[2], loss = step(state[0], state[1], state[2], xt, yt)
    return loss

  out["train"] = run
  return out


def keras_bench(batch: int) -> dict:
  """Zero-argument callables {"mlsp", "train"} on Keras' model."""
  import keras
  from keras.src.initializers import random_initializers

  rng = np.random.default_rng(0)

  def glorot(self, shape, dtype=None):  # host draw: Keras compiles one program per shape
    receptive = int(np.prod(shape[:-2]))
    limit = np.sqrt(6.0 / ((shape[-2] + shape[-1]) * receptive))
    return rng.uniform(-limit, limit, shape).astype("float32")

  random_initializers.GlorotUniform.__call__ = glorot
  base = keras.applications.InceptionResNetV2(weights=None, include_top=False,
                                              input_shape=(None, None, 3))
  gaps = [keras.layers.GlobalAveragePooling2D()(l.output) for l in base.layers
          if "mixed" in l.name]
  mlsp = keras.Model(base.input, keras.layers.Concatenate()(gaps))
  out = {}
  x = np.random.default_rng(1).uniform(size=(batch, *MLSP_SIZE, 3)).astype("float32")
  out["mlsp"] = lambda: mlsp.predict_on_batch(x)

  feats = keras.layers.GlobalAveragePooling2D()(base.output)
  train = keras.Model(base.input, keras.layers.Dense(11)(feats))
  train.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=True)
  xt = np.random.default_rng(3).uniform(size=(batch, *TRAIN_SIZE, 3)).astype("float32")
  yt = np.random.default_rng(4).uniform(size=(batch, 11)).astype("float32")
  out["train"] = lambda: train.train_on_batch(xt, yt)
  return out


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--iters", type=int, default=5,
                 help="timed rounds; Flax and Keras alternate, median per call")
  p.add_argument("--no-keras", action="store_true")
  p.add_argument("--bf16", action="store_true", help="Flax compute in bfloat16")
  args = p.parse_args()
  dev = jax.devices()[0]
  print(f"device: {dev.platform} {dev.device_kind} x{jax.device_count()}, "
        f"jax {jax.__version__}, batch {args.batch}, {args.iters} timed iterations")
  rate = matmul_rate()
  print(f"measured float32 matmul (2048^3) before the runs: {rate / 1e9:.1f} GFLOP/s")
  f = flax_bench(args.batch, jnp.bfloat16 if args.bf16 else jnp.float32)
  k = None
  if not args.no_keras:
    try:
      k = keras_bench(args.batch)
    except ImportError as e:
      print(f"keras unavailable ({e}); Flax only")
  rows = [("narrow MLSP 512x384 (inference)", "mlsp"),
          ("train step 299x299 (GAP+Dense11, MSE, Adam)", "train")]
  res = {}
  for _, key in rows:
    fns = {"flax": f[key]} | ({"keras": k[key]} if k else {})
    first = {name: _first(fn) for name, fn in fns.items()}  # compilation + 1 call
    per = _interleaved(fns, args.iters)
    res[key] = {name: (args.batch / per[name], first[name]) for name in fns}
  print("\n| task | Flax img/s | Keras img/s | Flax/Keras | first call Flax / Keras (s) |")
  print("|---|---|---|---|---|")
  for label, key in rows:
    fl, ff = res[key]["flax"]
    if k is None:
      print(f"| {label} | {fl:.2f} | - | - | {ff:.1f} / - |")
    else:
      kl, kf = res[key]["keras"]
      print(f"| {label} | {fl:.2f} | {kl:.2f} | {fl / kl:.2f} | {ff:.1f} / {kf:.1f} |")
  f["mlsp"] = res["mlsp"]["flax"]
  rate = max(rate, matmul_rate())  # again after the load of the runs: the best seen
  gflop = f["mlsp_flops_per_image"] / 1e9
  achieved = f["mlsp"][0] * f["mlsp_flops_per_image"]
  print(f"\nFlax MLSP forward: {gflop:.1f} GFLOP/image (XLA cost analysis), "
        f"{achieved / 1e9:.1f} GFLOP/s = {achieved / rate:.1%} of the measured matmul rate "
        f"({rate / 1e9:.1f} GFLOP/s, best of before/after)")


if __name__ == "__main__":
  main()
