"""Data order of in-memory training sets: step s's batch as a function of (seed, s).

`step_indices` draws a fresh permutation per epoch (`default_rng([seed, epoch])`), lets
batches run across epoch ends and cuts the global batch into one contiguous part per
process, so an iterator can start at any step without replaying the data (the order
`train.loop.train` relies on to resume). `array_batches` applies it to arrays held in
memory; `data.pipeline.batches` is the same contract over a stored database.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, Iterator

import jax
import numpy as np

# batches(start_step) -> iterator of THIS process's batches for steps start_step, ...
BatchesFn = Callable[[int], Iterable]


@functools.lru_cache(maxsize=4)
def _epoch_permutation(seed: int, epoch: int, num_examples: int) -> np.ndarray:
  perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
  perm.flags.writeable = False
  return perm


def step_indices(step: int, *, num_examples: int, batch_size: int, seed: int,
                 process_index: int = 0, process_count: int = 1) -> np.ndarray:
  """Example indices of `step`'s batch for one process: a deterministic function of
  the step, so an iterator can be positioned anywhere without replaying the data.

  Each epoch is a fresh permutation (`seed`, epoch); batches run across epoch ends.
  The global batch (batch_size) is cut into `process_count` equal contiguous parts.
  """
  if num_examples <= 0:
    raise ValueError("the training set is empty")
  if batch_size % process_count:
    raise ValueError(f"config.train.batch_size={batch_size} is not divisible by the "
                     f"{process_count} processes")
  first = step * batch_size
  pos = first + np.arange(batch_size)
  epochs = pos // num_examples
  out = np.empty(batch_size, np.int64)
  for e in np.unique(epochs):
    perm = _epoch_permutation(int(seed), int(e), int(num_examples))
    sel = epochs == e
    out[sel] = perm[pos[sel] % num_examples]
  local = batch_size // process_count
  return out[process_index * local:(process_index + 1) * local]


def array_batches(arrays: dict[str, np.ndarray], *, batch_size: int, seed: int
                  ) -> BatchesFn:
  """`batches(start_step)` over in-memory arrays (same leading length), for this
  process (`jax.process_index()` of `jax.process_count()`)."""
  n = len(next(iter(arrays.values())))

  def batches(start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      idx = step_indices(step, num_examples=n, batch_size=batch_size, seed=seed,
                         process_index=jax.process_index(),
                         process_count=jax.process_count())
      yield {k: v[idx] for k, v in arrays.items()}
      step += 1

  return batches
