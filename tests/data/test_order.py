"""Data order of in-memory sets: epochs reshuffled, batches across epoch ends, the
global batch split between processes, and iterators positioned at any step."""
from __future__ import annotations

import numpy as np

from deepfl_jax.data import order


def test_step_indices_epochs_and_process_split():
  n, b = 10, 4
  steps = [order.step_indices(s, num_examples=n, batch_size=b, seed=1) for s in range(5)]
  flat = np.concatenate(steps)
  # Epoch 0 covers steps 0..2 (first 10 positions): a permutation of all examples.
  assert sorted(flat[:10].tolist()) == list(range(n))
  assert sorted(flat[10:20].tolist()) == list(range(n))
  assert not np.array_equal(flat[:10], flat[10:20])  # reshuffled per epoch
  halves = [order.step_indices(3, num_examples=n, batch_size=b, seed=1, process_index=i,
                            process_count=2) for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), steps[3])


def test_array_batches_start_anywhere():
  arrays = {"x": np.arange(10) * 10, "y": np.arange(10)}
  full = order.array_batches(arrays, batch_size=4, seed=3)(0)
  first = [next(full) for _ in range(6)]
  for b in first:  # rows stay aligned across arrays
    np.testing.assert_array_equal(b["x"], b["y"] * 10)
  later = order.array_batches(arrays, batch_size=4, seed=3)(4)
  np.testing.assert_array_equal(next(later)["y"], first[4]["y"])
  np.testing.assert_array_equal(
      first[4]["y"], order.step_indices(4, num_examples=10, batch_size=4, seed=3))
