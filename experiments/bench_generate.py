"""KADIS-700k generation throughput (`data.generation.generate`): distort + 11 raw FR
labels + PNG encode + array_record write, images/s after warm-up, and the projected
time for KADIS-700k's 700,000 images here and per device.

The pristine images are crops of the embedded photographs at KADIS's 384x512, with
types cycling over all 25 (a uniform mix), written to --work.

  python experiments/bench_generate.py [--images 10] [--host-otsu] [--work /tmp/bench_gen]
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepfl_jax.data import generation, mini_kadid  # noqa: E402


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--images", type=int, default=10, help="pristine images (x5 written)")
  p.add_argument("--host-otsu", action="store_true")
  p.add_argument("--work", default="/tmp/bench_generate")
  a = p.parse_args()
  work = pathlib.Path(a.work)
  shutil.rmtree(work, ignore_errors=True)
  photos = [mini_kadid.pristine_image(n, (384, 512)) for n in mini_kadid.PHOTOS]
  source = [{"image": photos[i % len(photos)], "name": f"p{i:04d}.png",
             "dist_type": i % 25 + 1} for i in range(a.images + 1)]
  kw = dict(seed=0, shard_size=a.images, host_otsu=a.host_otsu, progress=False)
  t0 = time.perf_counter()   # warm-up: compile (a 1-image generation)
  generation.generate(source[:1], work / "warm", **kw)
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  generation.generate(source[1:], work / "timed", **kw)
  dt = time.perf_counter() - t0
  n = 5 * a.images
  rate = n / dt
  dev = jax.local_device_count()
  print(f"{dev} x {jax.devices()[0].device_kind}: warm-up (compile) {compile_s:.0f} s; "
        f"{n} images (384x512, 25 types, host_otsu={a.host_otsu}) in {dt:.1f} s: "
        f"{rate:.2f} images/s; KADIS-700k (700,000 images) projected "
        f"{700_000 / rate / 3600:.1f} h here, {700_000 / rate / 3600 * dev:.1f} "
        f"device-hours")


if __name__ == "__main__":
  main()
