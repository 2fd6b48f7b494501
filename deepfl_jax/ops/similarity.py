"""The similarity term shared by SSIM-family metrics (FSIM, VSI, GMSD-like maps, SC-QI),
and the weighted-mean pooling of similarity maps."""
import jax.numpy as jnp

from deepfl_jax.ops import gradient


def similarity(a: jnp.ndarray, b: jnp.ndarray, c: float) -> jnp.ndarray:
  """(2 a b + c) / (a^2 + b^2 + c), elementwise; 1 where a == b."""
  return (2 * a * b + c) / (a * a + b * b + c)


def similarity_sq(a2: jnp.ndarray, b2: jnp.ndarray, c: float) -> jnp.ndarray:
  """Similarity of magnitudes a, b >= 0 given their squares a2 = a^2, b2 = b^2:
  (2 sqrt(a2 b2) + c) / (a2 + b2 + c), elementwise.

  One square root of the product instead of two; gradient-safe at 0 (safe_sqrt), e.g.
  for squared gradient magnitudes of flat regions.
  """
  return (2 * gradient.safe_sqrt(a2 * b2) + c) / (a2 + b2 + c)


def weighted_mean(sim: jnp.ndarray, weight: jnp.ndarray,
                  fallback: float | None = None) -> jnp.ndarray:
  """sum(sim weight) / sum(weight) over the last two axes: (..., H, W) -> (...).

  Where the weights sum to 0 (e.g. flat images; MATLAB gives 0/0) the result is
  `fallback`, or the plain mean of sim if fallback is None.
  """
  total = jnp.sum(weight, axis=(-2, -1))
  ok = total > 0
  pooled = jnp.sum(sim * weight, axis=(-2, -1)) / jnp.where(ok, total, 1.0)
  alt = jnp.mean(sim, axis=(-2, -1)) if fallback is None else fallback
  return jnp.where(ok, pooled, alt)
