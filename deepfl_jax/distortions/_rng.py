"""`jax.random.normal` / `uniform` for the large draws of the distortions, same values.

On the CPU, JAX lowers its threefry2x32 hash as a rolled loop of five four-round
blocks: every block reads and writes two arrays of the draw's size, and a 384x512x3
draw costs about 6 CPU ms. The same hash written out (20 rounds in one elementwise
expression, which XLA fuses into one pass; a loop of two halves keeps it apart from the
consumers) costs about 0.8 ms, a normal draw 1.6 ms instead of 6.5. `bits`, `uniform` and
`normal` below compute exactly what `jax.random.bits`, `uniform` and `normal` compute
for the default threefry2x32 keys with `jax_threefry_partitionable` (JAX's default):
the counters are the flat index of each element (as `prng.iota_2x32_shape`), the
output the xor of the two hash words, and the float transforms those of
`jax.random.uniform` (23 random mantissa bits) and `normal` (sqrt(2) erfinv of a
uniform on (-1, 1)). Any other key implementation, dtype or configuration falls back
to `jax.random` itself. tests/distortions/test_rng.py checks bitwise equality.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _key_words(key: jax.Array):
  """(k1, k2) uint32 words of a threefry2x32 key, or None if it is not one."""
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    if key.shape or "threefry" not in str(jax.random.key_impl(key)):
      return None
    key = jax.random.key_data(key)
  elif jax.config.jax_default_prng_impl != "threefry2x32":
    return None
  if key.shape != (2,) or key.dtype != jnp.uint32:
    return None
  return key[0], key[1]


def _threefry2x32(k1, k2, x1, x2):
  """Threefry-2x32 with 20 rounds (JAX's `_threefry2x32_lowering`, unrolled)."""
  ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
  x1, x2 = x1 + ks[0], x2 + ks[1]
  for i in range(5):
    for r in _ROTATIONS[i % 2]:
      x1 = x1 + x2
      x2 = lax.shift_left(x2, np.uint32(r)) | lax.shift_right_logical(x2, np.uint32(32 - r))
      x2 = x1 ^ x2
    x1 = x1 + ks[(i + 1) % 3]
    x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
  return x1, x2


def _fast(key, shape, dtype):
  """The key's words when the fast path applies (float32, partitionable threefry)."""
  if (jnp.dtype(dtype) != jnp.float32 or not jax.config.jax_threefry_partitionable
      or math.prod(shape) >= 2 ** 32 or not shape):
    return None
  return _key_words(key)


def bits(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """`jax.random.bits(key, shape)` (uint32) of a threefry2x32 key, unrolled hash."""
  words = _fast(key, shape, jnp.float32)
  if words is None:
    return jax.random.bits(key, shape)
  n = math.prod(shape)
  half = -(-n // 2)

  def chunk(_, i):
    count = lax.iota(jnp.uint32, half) + (i * half).astype(jnp.uint32)   # high words 0
    b1, b2 = _threefry2x32(*words, jnp.zeros_like(count), count)
    return None, b1 ^ b2

  # Two halves in a loop, so that the bits are materialised as JAX's own loop leaves
  # them: fused with `normal`'s erfinv (or optimization barriers, which XLA:CPU drops)
  # the hash ran 2x slower than JAX's rolled loop instead of 4x faster.
  _, b = lax.scan(chunk, None, jnp.arange(2, dtype=jnp.uint32))
  return b.reshape(-1)[:n].reshape(shape)


def _unit(key, shape, lo, hi):
  """`jax.random.uniform(key, shape, float32, lo, hi)` on the fast path."""
  b = bits(key, shape)
  f = lax.bitcast_convert_type(lax.shift_right_logical(b, np.uint32(9))
                               | np.uint32(0x3F800000), jnp.float32) - np.float32(1.0)
  lo, hi = jnp.float32(lo), jnp.float32(hi)
  return lax.max(lo, f * (hi - lo) + lo)


def uniform(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """`jax.random.uniform(key, shape, dtype)` in [0, 1): the same values."""
  if _fast(key, shape, dtype) is None:
    return jax.random.uniform(key, shape, dtype)
  return _unit(key, shape, 0.0, 1.0)


def normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
  """`jax.random.normal(key, shape, dtype)`: the same values."""
  if _fast(key, shape, dtype) is None:
    return jax.random.normal(key, shape, dtype)
  lo = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
  return np.float32(np.sqrt(2)) * lax.erf_inv(_unit(key, shape, lo, 1.0))
