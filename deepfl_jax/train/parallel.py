"""Data-parallel training over all devices of all processes (pmap style, shard_map).

A per-device step sees its shard of the global batch and a full copy of the state; its
gradients, batch-norm running statistics, loss and metrics are averaged across the
device axis with `lax.pmean`, so every device ends the step with the same state. The
batch-norm layers of the model should also name the axis (`bn_axis_name=DATA_AXIS`),
so that they normalise with the statistics of the GLOBAL batch (synchronised BN): the
data-parallel step then equals the single-device step on the same global batch.

Multi-host: after `jax.distributed.initialize(...)` `jax.devices()` lists every
process's devices; the mesh spans them all, each process feeds its local part of the
batch (`shard_batch`), and the same code runs unchanged (JAX's multi-controller model).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from deepfl_jax.train.state import TrainState

DATA_AXIS = "data"
# Metric of every step: 1.0 where some gradient entry is NaN or inf (after the pmean),
# read by the loop at its log / checkpoint boundaries (no extra host sync per step).
NONFINITE_GRAD = "nonfinite_gradient"

# loss_fn(params, batch_stats, batch, rng) -> (loss, (new_batch_stats, metrics)) on one
# device's shard of the batch; metrics is a dict of scalars.
LossFn = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, tuple[Any, dict]]]


def make_mesh(devices: Sequence[jax.Device] | None = None,
              axis_name: str = DATA_AXIS) -> Mesh:
  """A 1-D mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (axis_name,))


def check_batch_size(batch_size: int, mesh: Mesh,
                     key: str = "config.train.batch_size") -> int:
  """Per-device batch size; a clear error when `batch_size` does not split evenly."""
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    lower = max(n, batch_size // n * n)
    raise ValueError(
        f"{key}={batch_size} is not divisible by the number of devices ({n}: "
        f"{jax.process_count()} process(es) x {jax.local_device_count()} local "
        f"device(s)); the global batch is split evenly over all devices. Set "
        f"--{key}={lower} or {lower + n} (a multiple of {n}), or run on fewer devices.")
  return batch_size // n


def replicate(tree, mesh: Mesh):
  """Host values, identical on every process -> arrays replicated over the mesh.

  The values are copied, so donating the result to a step never touches `tree`."""
  sharding = NamedSharding(mesh, P())
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.array(x)), tree)


def shard_batch(local_batch, mesh: Mesh, axis_name: str = DATA_AXIS):
  """This process's part of the batch (leading axis) -> global arrays sharded over the
  mesh's data axis. Every process passes the same number of examples. Arrays already
  sharded so over the mesh (global) pass through unchanged."""
  sharding = NamedSharding(mesh, P(axis_name))

  def put(x):
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
      # Already global and sharded as the step takes it (the online synthesis
      # program's output): nothing moves.
      return x
    if isinstance(x, jax.Array) and jax.process_count() == 1:
      # On some device: reshard there instead of a round trip through the host.
      return jax.device_put(x, sharding)
    x = np.asarray(x)
    global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
    return jax.make_array_from_process_local_data(sharding, x, global_shape)

  return jax.tree.map(put, local_batch)


def to_host(tree):
  """Replicated (or single-device) arrays -> NumPy, read from this process's copy."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if not x.is_fully_replicated:
        raise ValueError("to_host needs replicated arrays; this one is sharded over "
                         "processes")
      x = x.addressable_data(0)
    return np.asarray(x)
  return jax.tree.map(get, tree)


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, mesh: Mesh, *,
                    learning_rate_fn: optax.Schedule | None = None,
                    axis_name: str = DATA_AXIS, donate: bool = True
                    ) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
  """jit(shard_map(per-device step)): `(state, batch) -> (state, metrics)`.

  `state` is replicated over the mesh (see `replicate`), `batch` sharded on its leading
  axis (see `shard_batch`). Each device's randomness is `fold_in(fold_in(state.rng,
  step), device index)`. The returned metrics (scalars, averaged over devices) add
  "loss", `NONFINITE_GRAD` (1.0 if any gradient entry is not finite) and, with
  `learning_rate_fn`, "learning_rate" (the rate used by this step).
  """

  def per_device(state: TrainState, batch):
    # A per-device copy, as under pmap: without it shard_map's varying-axis tracking
    # would psum the gradient of the replicated parameters (n times the mean).
    params, batch_stats = jax.lax.pcast((state.params, state.batch_stats), axis_name,
                                        to="varying")
    rng = jax.random.fold_in(state.step_rng(), jax.lax.axis_index(axis_name))
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (new_stats, metrics)), grads = grad_fn(params, batch_stats, batch, rng)
    grads, new_stats, loss, metrics = jax.lax.pmean((grads, new_stats, loss, metrics),
                                                    axis_name)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g))
                                for g in jax.tree.leaves(grads)]))
    metrics = dict(metrics, loss=loss)
    metrics[NONFINITE_GRAD] = 1.0 - finite.astype(jnp.float32)
    if learning_rate_fn is not None:
      metrics["learning_rate"] = jnp.asarray(learning_rate_fn(state.step), jnp.float32)
    return state.apply_gradients(tx, grads, batch_stats=new_stats), metrics

  mapped = jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(axis_name)),
                         out_specs=(P(), P()))
  return jax.jit(mapped, donate_argnums=(0,) if donate else ())
