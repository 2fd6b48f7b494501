"""Random pristine crops for the pretext streams: `pipeline.batches` with Stage 1's
crop transform (`train.stage1._crop_transform`: e.g. the random scales and flips of
`data.pristine.augment_transform`), positioned at a step (so resumed runs see the same
crops)."""
from __future__ import annotations

from typing import Iterator

import jax
import numpy as np

from deepfl_jax.data import pipeline, synthesis


def pristine_crops(source, indices, *, per_process: int, crop_size, seed: int,
                   start_step: int = 0, process_index: int | None = None,
                   process_count: int | None = None, transform=None):
  """(batches of `per_process` uint8 crops for this process, process index, count).

  `indices`: the records to use (default all); fewer records than crops per step (e.g.
  the 8 embedded photographs) are listed several times, each occurrence its own crop.
  `transform`: Stage 1's crop transform (a `pipeline.Transform` making uint8 crops of
  `crop_size`); None: a uniformly placed crop at native scale."""
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  indices = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
  if len(indices) == 0:
    raise ValueError("no pristine images to crop (empty training or validation part)")
  if len(indices) < per_process * pc:
    indices = np.tile(indices, -(-per_process * pc // len(indices)))
  crops = pipeline.batches(source, indices, batch_size=per_process, seed=seed,
                           start_step=start_step, process_index=pi, process_count=pc,
                           transform=transform or synthesis.crop_transform(
                               tuple(crop_size)))
  return crops, pi, pc


def crops_by_step(source, indices, *, per_process: int, crop_size, seed: int,
                  start_step: int = 0, process_index: int | None = None,
                  process_count: int | None = None, transform=None
                  ) -> Iterator[tuple[int, np.ndarray, int, int]]:
  """(step, uint8 crops (per_process, H, W, 3), process index, count) for every step
  from `start_step` on, from `pristine_crops` (same arguments); the input pipeline
  closes with the generator. The pretext streams draw each step's randomness from
  (seed, step)."""
  crops, pi, pc = pristine_crops(source, indices, per_process=per_process,
                                 crop_size=crop_size, seed=seed, start_step=start_step,
                                 process_index=process_index, process_count=process_count,
                                 transform=transform)
  with crops:
    step = start_step
    while True:
      yield step, next(crops)["image"], pi, pc
      step += 1
