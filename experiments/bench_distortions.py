"""Throughput of the distortion engine: images/s per KADID type at 512x384.

Times `deepfl_jax.distortions.distort` (mapmm -> type -> mapmm, jit-compiled) for
one image per call and for a batch of images of one type per call, after a warm-up
call (compilation excluded, reported separately), with the process CPU time per image
of the single calls (steadier than wall time on a shared machine). Projects the time
to regenerate KADIS-700k (140,000 references x 5 levels = 700,000 images, types
assigned uniformly) from the better of the two rates per type; the original MATLAB
script took one to two days. With --mix, also the uniform mix of the types: the
harmonic mean of the single-image rates, and `distort_runs` (the training stream's
program: a scalar switch per image inside a map) on batches holding each type once,
levels 1..5 in turn. On a shared CPU the numbers are noisy: report the load next to
them.

  python experiments/bench_distortions.py [--types 1,2,...] [--batch 8] [--reps 3]
      [--mix]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.distortions import DISTORTIONS, distort, distort_runs

KADIS_IMAGES = 700_000


def _image(h, w, n, seed=0):
  """Smooth random colour images in [0, 1] (content does not change the timing)."""
  rng = np.random.default_rng(seed)
  base = rng.uniform(size=(n, h // 16 + 1, w // 16 + 1, 3))
  img = np.kron(base, np.ones((1, 16, 16, 1)))[:, :h, :w]
  img = np.clip(img + 0.03 * rng.normal(size=img.shape), 0, 1)
  return jnp.asarray(img, jnp.float32)


def _time(fn, reps, cpu=False):
  """Mean wall seconds per call (and process CPU seconds with cpu=True), after warm-up."""
  fn().block_until_ready()
  t0, c0 = time.perf_counter(), time.process_time()
  for _ in range(reps):
    fn().block_until_ready()
  wall, proc = (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps
  return (wall, proc) if cpu else wall


def _mix(h, w, types, reps):
  """Uniform mix through `distort_runs`: batches with each type once, shuffled."""
  n = len(types)
  rng = np.random.default_rng(1)
  images = _image(h, w, n, seed=2)
  keys = jax.random.split(jax.random.PRNGKey(1), n)
  run = jax.jit(lambda x, t, lv, k: distort_runs(x, t, lv, k, branches=tuple(types)))
  plans = [(jnp.asarray(rng.permutation(types), jnp.int32),
            jnp.asarray([(i + j) % 5 + 1 for i in range(n)], jnp.int32)) for j in range(2)]
  t0 = time.perf_counter()
  run(images, *plans[0], keys).block_until_ready()
  compile_s = time.perf_counter() - t0
  secs = [_time(lambda p=p: run(images, *p, keys), reps, cpu=True) for p in plans]
  wall, proc = np.mean([s[0] for s in secs]), np.mean([s[1] for s in secs])
  return compile_s, n / wall, 1e3 * proc / n


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--types", default="all")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--height", type=int, default=384)
  p.add_argument("--width", type=int, default=512)
  p.add_argument("--level", type=int, default=3)
  p.add_argument("--mix", action="store_true")
  args = p.parse_args()
  types = (sorted(DISTORTIONS) if args.types == "all"
           else [int(t) for t in args.types.split(",")])
  h, w, n = args.height, args.width, args.batch
  single = _image(h, w, 1)[0]
  batch = _image(h, w, n)
  key = jax.random.PRNGKey(0)
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"{h}x{w}, batch {n}, level {args.level}, {args.reps} reps")
  print("| id | type | compile single (s) | single (img/s) | single (CPU ms/img) "
        "| batched (img/s) |")
  print("|---|---|---|---|---|---|")
  rates, single_rates = {}, {}
  for t in types:
    d = DISTORTIONS[t]
    t0 = time.perf_counter()
    distort(single, t, args.level, key).block_until_ready()
    compile_s = time.perf_counter() - t0
    s, cpu = _time(lambda: distort(single, t, args.level, key), args.reps, cpu=True)
    levels = jnp.full((n,), args.level)
    b = _time(lambda: distort(batch, jnp.full((n,), t), levels, key), args.reps)
    rates[t], single_rates[t] = max(n / b, 1 / s), 1 / s
    print(f"| {t} | {d.name} | {compile_s:.1f} | {1 / s:.1f} | {1e3 * cpu:.1f} "
          f"| {n / b:.1f} |", flush=True)
  if rates:
    per_type = KADIS_IMAGES / len(DISTORTIONS)
    secs = sum(per_type / r for r in rates.values()) * len(DISTORTIONS) / len(rates)
    print(f"\nprojected KADIS-700k ({KADIS_IMAGES:,} images, uniform types, the better "
          f"of single/batched per type"
          f"{'' if len(rates) == len(DISTORTIONS) else ', mean over measured types'}"
          f"): {secs / 3600:.1f} h (MATLAB: 24-48 h)")
  if args.mix and rates:
    harmonic = len(single_rates) / sum(1 / r for r in single_rates.values())
    print(f"uniform mix of {len(types)} types, harmonic mean of the single-image rates: "
          f"{harmonic:.1f} img/s", flush=True)
    compile_s, rate, cpu_ms = _mix(h, w, types, args.reps)
    print(f"uniform mix through distort_runs (batches of {len(types)}, each type once; "
          f"compile {compile_s:.0f} s): {rate:.1f} img/s, {cpu_ms:.1f} CPU ms/img",
          flush=True)


if __name__ == "__main__":
  main()
