"""QPT's degradation sampler: deterministic per key, order / skipping / repetition,
distinct degradations per content, the count, and applying a plan."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from deepfl_jax.pretext import degradations as dg


def test_sampler_deterministic_per_key():
  space = dg.DegradationSpace()
  a = dg.sample(jax.random.PRNGKey(0), 4, 3, space)
  assert a == dg.sample(jax.random.PRNGKey(0), 4, 3, space)
  assert a != dg.sample(jax.random.PRNGKey(1), 4, 3, space)


def test_sampler_covers_order_skipping_repetition_and_chain():
  space = dg.DegradationSpace(ops=(16, 17, 25), max_ops=3, skip_prob=0.3,
                              second_order_prob=0.5)
  plans = [p for c in dg.sample(jax.random.PRNGKey(2), 200, 2, space) for p in c]
  first = [tuple(op for op, _ in p if op in space.ops) for p in plans]
  assert all(len(p) >= 1 for p in plans)
  lengths = {len(f) for f in first}
  assert {0, 1, 2, 3} <= lengths or {1, 2, 3} <= lengths   # skipping
  assert any(len(set(f)) < len(f) for f in first)            # repetition
  assert any(f[:2] == (16, 17) for f in first) and any(f[:2] == (17, 16) for f in first)
  assert any(op in (dg.RESIZE, dg.POISSON) for p in plans for op, _ in p)  # chain
  for p in plans:
    for op, v in p:
      if op in space.ops:
        lo, hi = dg.param_range(op)
        assert lo <= v <= hi
  # Continuous parameters: hardly any value repeats.
  vals = [v for p in plans for op, v in p if op == 16]
  assert len(set(vals)) > 0.95 * len(vals)
  for c in dg.sample(jax.random.PRNGKey(3), 50, 4, space):
    assert len(set(c)) == 4


def test_count_degradations():
  space = dg.DegradationSpace(ops=(1, 2), max_ops=2, second_order_prob=0.0)
  assert dg.count_degradations(space, param_bins=3)["total"] == 6 + 36
  full = dg.count_degradations(dg.DegradationSpace(), param_bins=10)
  assert full["first_order"] == 190 + 190 ** 2 + 190 ** 3
  assert full["total"] > 2e7   # at least QPT's reported size


@pytest.mark.slow
def test_apply_plan_and_errors():
  x = np.full((16, 16, 3), 0.5, np.float32)
  y = np.asarray(dg.apply(x, ((16, 0.7), (dg.RESIZE, 0.5), (dg.POISSON, 100.0)),
                          jax.random.PRNGKey(0)))
  assert y.shape == x.shape and np.all((y >= 0) & (y <= 1)) and y.mean() > 0.5
  same = np.asarray(dg.apply(x, ((16, 0.7), (dg.RESIZE, 0.5), (dg.POISSON, 100.0)),
                             jax.random.PRNGKey(0)))
  np.testing.assert_array_equal(y, same)
  with pytest.raises(ValueError, match="type ids"):
    dg.DegradationSpace(ops=(99,))
