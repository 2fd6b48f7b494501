"""The training state: one pytree of arrays, replicated across devices.

`TrainState` holds only arrays (no functions), so orbax saves and restores it as it
is, and `jax.shard_map` / `jax.jit` pass it without static arguments. The optimiser
(`optax.GradientTransformation`) and the model live outside it, in the step function.
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """step: int32 (); params, batch_stats: Flax collections; opt_state: optax state;
  rng: raw uint32 (2,) key (`jax.random.PRNGKey`) that seeds every step's randomness
  through `fold_in(rng, step)`, so a resumed run draws the same numbers."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array

  @classmethod
  def create(cls, *, params, batch_stats, tx: optax.GradientTransformation,
             rng: jax.Array) -> "TrainState":
    """A step-0 state; `batch_stats` may be {} for models without batch-norm."""
    return cls(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
               opt_state=tx.init(params), rng=jnp.asarray(rng, jnp.uint32))

  def apply_gradients(self, tx: optax.GradientTransformation, grads,
                      batch_stats=None) -> "TrainState":
    """One optimiser update; `batch_stats` replaces the running statistics if given."""
    updates, opt_state = tx.update(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                        opt_state=opt_state,
                        batch_stats=self.batch_stats if batch_stats is None else batch_stats)

  def step_rng(self) -> jax.Array:
    """The key of the current step (same on every device; fold in the device index for
    per-device dropout)."""
    return jax.random.fold_in(self.rng, self.step)


def param_count(tree) -> int:
  """Number of scalars in a pytree of arrays (or ShapeDtypeStructs)."""
  return sum(int(x.size) for x in jax.tree.leaves(tree))
