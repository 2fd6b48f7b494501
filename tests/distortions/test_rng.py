"""deepfl_jax.distortions._rng: the unrolled threefry draws equal jax.random's, bit for bit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.distortions import _rng

SHAPES = ((96, 128, 3), (5, 37, 41, 2), (7,), (3, 1))


@pytest.mark.parametrize("name", ["bits", "uniform", "normal"])
@pytest.mark.parametrize("shape", SHAPES)
def test_equal_to_jax_random(name, shape):
  for seed in (0, 1, 2024):
    key = jax.random.PRNGKey(seed)
    want = np.asarray(getattr(jax.random, name)(key, shape))
    got = np.asarray(jax.jit(lambda k: getattr(_rng, name)(k, shape))(key))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(getattr(_rng, name)(key, shape)), want)


def test_vmapped_keys_and_typed_keys():
  keys = jax.random.split(jax.random.PRNGKey(3), 4)
  want = jax.vmap(lambda k: jax.random.normal(k, (24, 32, 3)))(keys)
  got = jax.jit(jax.vmap(lambda k: _rng.normal(k, (24, 32, 3))))(keys)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  key = jax.random.key(5)
  np.testing.assert_array_equal(np.asarray(_rng.uniform(key, (50, 3))),
                                np.asarray(jax.random.uniform(key, (50, 3))))


def test_other_dtypes_fall_back_to_jax_random():
  key = jax.random.PRNGKey(7)
  got = _rng.normal(key, (8, 8), jnp.bfloat16)
  assert got.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(got, np.float32),
                                np.asarray(jax.random.normal(key, (8, 8), jnp.bfloat16),
                                           np.float32))
