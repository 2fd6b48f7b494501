"""Sort-free median / k-th smallest (deepfl_jax.ops.order_stats) against NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.ops import order_stats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 5, 6, 1001])
def test_median_and_kth_match_numpy(dtype, n):
  rng = np.random.default_rng(n)
  a = rng.standard_normal((3, n)).astype(dtype)
  a[0, : n // 2] = 0.25                          # ties
  if n > 5:
    a[1, :3], a[1, 3:5] = -0.0, 0.0                # signed zeros
  ks = sorted({0, (n - 1) // 2, n - 1})
  run = jax.jit(lambda a: (order_stats.median(a),
                           [order_stats.kth_smallest(a, k) for k in ks]))
  with jax.enable_x64(dtype == np.float64):
    m, kth = run(jnp.asarray(a))
  assert m.dtype == dtype
  np.testing.assert_array_equal(m, np.median(a, axis=-1))
  srt = np.sort(a, axis=-1)
  for k, v in zip(ks, kth):
    np.testing.assert_array_equal(v, srt[:, k])


def test_median_axis_and_gradient():
  rng = np.random.default_rng(1)
  a = jnp.asarray(rng.random((10, 4)), jnp.float32)
  np.testing.assert_array_equal(order_stats.median(a, axis=0), np.median(a, axis=0))
  w = jnp.arange(4.0)
  g = jax.jit(jax.grad(lambda a: jnp.sum(order_stats.median(a, axis=0) * w)))(a)
  g_ref = jax.grad(lambda a: jnp.sum(jnp.median(a, axis=0) * w))(a)
  np.testing.assert_allclose(g, g_ref)
