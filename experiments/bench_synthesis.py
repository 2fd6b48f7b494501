"""Stage-1 synthesis cost: mixed vs single-type batches, reads per step, distortion mix.

1. Synthesis + labels (`synthesis.synthesize_local`: distort, quantise, 11 FR labels,
   equalise), ONE compiled program with all 25 types: images/s of batches of mixed
   types (a type per image) against the mean cost of single-type batches of the same
   size (goal: mixed at most 1.3x the mean). The same for the distortion alone, and,
   as the control the design avoids, `distort(strategy="switch")` (lax.switch under
   vmap: every branch for every image).
2. Device-to-host reads per step of `synthesis.stream` after warm-up (every
   conversion of a jax.Array to a host value; goal 0).
3. Distortion alone, a uniform mix of the 25 types (`distort_runs`, runs of one
   image), images/s, and the per-type rates of the same program (the slow types).

  python experiments/bench_synthesis.py [--size 384,512] [--batch 8] [--reps 2]
      [--parts 1,2,3]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import array  # private: the Array class whose host reads are counted

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepfl_jax.data import histeq, mini_kadid, synthesis  # noqa: E402
from deepfl_jax.distortions import DISTORTIONS, distort, distort_runs  # noqa: E402
from deepfl_jax.metrics import METRIC_NAMES  # noqa: E402

TYPES = tuple(range(1, 26))


def _crops(size, n, seed=0):
  rng = np.random.default_rng(seed)
  photos = [mini_kadid.pristine_image(p, (384, 512)) for p in mini_kadid.PHOTOS]
  return np.stack([synthesis.random_crop(photos[i % len(photos)], size, rng)
                   for i in range(n)])


def _time(fn, reps):
  jax.block_until_ready(fn())   # compile / warm
  t0 = time.perf_counter()
  for _ in range(reps):
    jax.block_until_ready(fn())
  return (time.perf_counter() - t0) / reps


def mixed_vs_single(args, size):
  n = args.batch
  cfg = synthesis.SynthesisConfig(crop_size=size, batch_size=n, group_size=1)
  eq = histeq.Equalizer(values=jnp.tile(jnp.linspace(0.0, 1.0, 8), (11, 1)),
                        cdf=jnp.tile(jnp.linspace(0.0, 1.0, 8), (11, 1)),
                        higher_is_better=jnp.ones(11, bool), names=METRIC_NAMES)
  crops = jnp.asarray(_crops(size, n))
  keys = jax.random.split(jax.random.PRNGKey(0), n)
  levels = jnp.asarray([(i % 5) + 1 for i in range(n)], jnp.int32)
  full = jax.jit(lambda c, t: synthesis.synthesize_local(c, t, levels, keys, config=cfg,
                                                         equalizer=eq)["target"])
  dist = jax.jit(lambda c, t: distort_runs(c.astype(jnp.float32) / 255, t, levels,
                                           keys))
  vmapped = jax.jit(lambda c, t: distort(c.astype(jnp.float32) / 255, t, levels, keys,
                                         strategy="switch"))
  rng = np.random.default_rng(1)
  for name, f in (("distort + labels + equalise", full), ("distort only", dist),
                  ("control: switch under vmap, distort only", vmapped)):
    t0 = time.perf_counter()
    jax.block_until_ready(f(crops, jnp.ones(n, jnp.int32)))
    compile_s = time.perf_counter() - t0
    single = {t: _time(lambda: f(crops, jnp.full(n, t, jnp.int32)), args.reps)
              for t in TYPES}
    mean_single = float(np.mean(list(single.values())))
    mixes = [jnp.asarray(rng.permutation(TYPES)[:n], jnp.int32) for _ in range(3)]
    mixed = float(np.mean([_time(lambda m=m: f(crops, m), args.reps) for m in mixes]))
    # The mean over the types a mixed batch draws is the mean over all types.
    print(f"{name}: batch {n} at {size[0]}x{size[1]} (compile {compile_s:.0f} s): "
          f"mixed {n / mixed:.2f} img/s, single-type mean {n / mean_single:.2f} img/s, "
          f"mixed / mean cost {mixed / mean_single:.2f}", flush=True)
    if name == "distort only":
      slow = sorted(single.items(), key=lambda kv: -kv[1])[:6]
      print("  slowest single-type batches (img/s): " + ", ".join(
          f"{t} {DISTORTIONS[t].name} {n / s:.1f}" for t, s in slow), flush=True)
      uniform = n * len(single) / sum(single.values())
      print(f"  distortion alone, uniform mix of the 25 types (harmonic mean of the "
            f"single-type rates): {uniform:.1f} img/s", flush=True)


def reads_per_step(args, size):
  orig = array.ArrayImpl._value
  count = [0]

  def value(arr):
    count[0] += 1
    return orig.fget(arr)

  cfg = synthesis.SynthesisConfig(crop_size=size, batch_size=args.batch, group_size=1,
                                  types=(1, 11, 22))
  src = mini_kadid.pristine_source(("astronaut", "coffee"), size=(384, 512))
  it = synthesis.stream(src, config=cfg, seed=0, process_index=0, process_count=1)
  jax.block_until_ready(next(it)["scores"])
  array.ArrayImpl._value = property(value)
  try:
    steps = 3
    for _ in range(steps):
      b = next(it)
    jax.block_until_ready(b["scores"])
  finally:
    array.ArrayImpl._value = orig
  print(f"synthesis.stream: {count[0] / steps:.1f} device-to-host reads per step after "
        f"warm-up ({steps} steps)", flush=True)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--size", default="384,512")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--reps", type=int, default=2)
  p.add_argument("--parts", default="1,2")
  args = p.parse_args()
  size = tuple(int(v) for v in args.size.split(","))
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
  parts = args.parts.split(",")
  if "2" in parts:
    reads_per_step(args, size)
  if "1" in parts:
    mixed_vs_single(args, size)


if __name__ == "__main__":
  main()
