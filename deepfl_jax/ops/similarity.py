"""The similarity term shared by SSIM-family metrics (FSIM, VSI, GMSD-like maps, SC-QI)."""
import jax.numpy as jnp


def similarity(a: jnp.ndarray, b: jnp.ndarray, c: float) -> jnp.ndarray:
  """(2 a b + c) / (a^2 + b^2 + c), elementwise; 1 where a == b."""
  return (2 * a * b + c) / (a * a + b * b + c)
