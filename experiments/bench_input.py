"""Input throughput: online Stage-1 synthesis and reading a built dataset.

1. Online synthesis (`data.synthesis.stream`): random crops of pristine images ->
   on-device distortion (uniform random type and level) -> 11 FR labels in one fused
   jit -> histogram equalisation. Images per second after warm-up, with and without
   the labels (so the share of the metrics shows). Compilation is excluded by warming
   up every type first (one step per type). Compare with the Stage-1 training rate
   (experiments/bench_backbone.py) at the same crop size: labels must not be the
   bottleneck.
2. Reading a built TFDS dataset (`data.pipeline.reading_speed`): a KADID-10k-layout
   folder is written from mini-KADID images (512x384 PNGs), built with the kadid10k
   builder into array_record, and read back (PNG decode + batching) by the Grain
   pipeline with 0, 1 and 2 worker processes, or pass --dataset/--data-dir for a
   database you built.

  python experiments/bench_input.py [--crop 384,512] [--batch 8] [--group 4]
      [--types all|1,11,...] [--steps 5] [--read-images 100] [--work /tmp/bench_input]
"""
from __future__ import annotations

import argparse
import pathlib
import time

import jax
import numpy as np
from PIL import Image

from deepfl_jax.data import histeq, mini_kadid, pipeline, synthesis


def bench_synthesis(args, pristine) -> None:
  types = (tuple(range(1, 26)) if args.types == "all"
           else tuple(int(t) for t in args.types.split(",")))
  crop = tuple(int(v) for v in args.crop.split(","))
  # Warm-up: compile each type's distortion (chunk size = group) and the fused metrics.
  t0 = time.perf_counter()
  for t in types:
    cfg = synthesis.SynthesisConfig(crop_size=crop, batch_size=args.batch, types=(t,),
                                    group_size=args.group)
    b = next(synthesis.stream(pristine, config=cfg, num_steps=1, process_index=0,
                              process_count=1))
    jax.block_until_ready(b["scores"])
  compile_s = time.perf_counter() - t0
  cfg = synthesis.SynthesisConfig(crop_size=crop, batch_size=args.batch, types=types,
                                  group_size=args.group)
  eq = histeq.fit(np.asarray(b["scores"]))   # a stand-in equaliser (same cost)
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}); crop "
        f"{crop[0]}x{crop[1]}, batch {args.batch}, group {args.group}, {len(types)} "
        f"types; warm-up (compilation) {compile_s:.0f} s")
  for labels in (False, True):
    it = synthesis.stream(pristine, config=cfg, seed=1, equalizer=eq,
                          num_steps=args.steps, process_index=0, process_count=1,
                          with_labels=labels)
    t0 = time.perf_counter()
    n = 0
    for b in it:
      jax.block_until_ready(b["scores"] if labels else b["image"])
      n += b["image"].shape[0]
    dt = time.perf_counter() - t0
    what = "distort + 11 labels + equalise" if labels else "distort only"
    print(f"online synthesis ({what}): {n / dt:.2f} images/s ({n} images, {dt:.1f} s)",
          flush=True)


def _kadid_layout(work: pathlib.Path, source, n: int) -> pathlib.Path:
  """A KADID-10k-style manual folder with the first n mini-KADID images."""
  top = work / "manual" / "kadid10k"
  (top / "images").mkdir(parents=True, exist_ok=True)
  contents = sorted(set(source.index["content"]))
  cid = {c: i + 1 for i, c in enumerate(contents)}
  rows = []
  for i in range(min(n, len(source))):
    r = source.records[i]
    c = cid[r["content"]]
    name = f"I{c:02d}_{r['dist_type']:02d}_{r['level']:02d}.png"
    Image.fromarray(r["image"]).save(top / "images" / name)
    rows.append(f"{name},I{c:02d}.png,{r['score']:.4f},{r['std']:.4f}")
  for c, k in cid.items():
    ref = source.reference_image(f"{c}.png")
    Image.fromarray(ref).save(top / "images" / f"I{k:02d}.png")
  (top / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n" + "\n".join(rows) + "\n")
  return work / "manual"


def bench_reading(args) -> None:
  from deepfl_jax.data import builders  # pylint: disable=import-outside-toplevel
  if args.dataset:
    source = pipeline.load_source(args.dataset, args.data_dir)
    label = f"{args.dataset} from {args.data_dir}"
  else:
    work = pathlib.Path(args.work)
    photos = mini_kadid.PHOTOS[:max(1, -(-args.read_images // 125))]
    t0 = time.perf_counter()
    mk = mini_kadid.load(work / "mini", photos=photos)
    print(f"mini-KADID ({len(photos)} photos x 125, 384x512; cached after the first "
          f"run): {time.perf_counter() - t0:.0f} s")
    manual = _kadid_layout(work, mk, args.read_images)
    t0 = time.perf_counter()
    builder = builders.prepare("kadid10k", manual, work / "tfds")
    print(f"built a {args.read_images}-image KADID-layout dataset (512x384 PNG) in "
          f"{time.perf_counter() - t0:.0f} s")
    source = pipeline.load_source(builder)
    label = "KADID-layout array_record, 512x384 PNG"
  for workers in (0, 1, 2):
    r = pipeline.reading_speed(source, batch_size=args.read_batch,
                               num_batches=args.read_batches, num_workers=workers)
    print(f"reading {label}, {workers} Grain worker processes: "
          f"{r['images_per_s']:.1f} images/s")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--crop", default="384,512", help="Stage-1 crop H,W")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--group", type=int, default=4)
  p.add_argument("--types", default="all")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--photos", type=int, default=8)
  p.add_argument("--read-images", type=int, default=100)
  p.add_argument("--read-batch", type=int, default=16)
  p.add_argument("--read-batches", type=int, default=10)
  p.add_argument("--dataset", default="")
  p.add_argument("--data-dir", default="")
  p.add_argument("--work", default="/tmp/bench_input")
  p.add_argument("--skip", default="", help="synthesis | reading")
  args = p.parse_args()
  crop = tuple(int(v) for v in args.crop.split(","))
  size = (max(crop[0], 384), max(crop[1], 512))
  if args.skip != "synthesis":
    photos = mini_kadid.PHOTOS[:args.photos]
    bench_synthesis(args, mini_kadid.pristine_source(photos, size))
  if args.skip != "reading":
    bench_reading(args)


if __name__ == "__main__":
  main()
