"""Orbax checkpoints of the `TrainState`: every N steps and at exit, keep K, resume.

Layout: `<workdir>/checkpoints/<step>/{state, meta, data}`; `meta` (JSON) records what
fixes the data order (global batch size, seed), so a resume that would silently change
it is refused; `data` (when the input iterator has a state, e.g. the Grain pipeline's)
holds each process's input position, restored into the new iterator on resume. All
processes call `save` (orbax writes each replicated array once).
"""
from __future__ import annotations

import os
import shutil

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


TMP_MARKER = ".orbax-checkpoint-tmp"


def _remove_unfinished_saves(directory: str) -> list[str]:
  """Removes `<step>.orbax-checkpoint-tmp*` folders (a save that a killed process
  never finished; orbax ignores them but they hold a whole state) on process 0, before
  any save of this run; returns their names. Done here, synchronously: orbax's own
  cleanup option runs in a background future that `close` does not wait for."""
  if jax.process_index() != 0 or not os.path.isdir(directory):
    return []
  stray = sorted(d for d in os.listdir(directory) if TMP_MARKER in d)
  for d in stray:
    shutil.rmtree(os.path.join(directory, d), ignore_errors=True)
  if stray:
    logging.info("removed unfinished checkpoint folders in %s: %s", directory, stray)
  return stray


class _DataState:
  """A frozen input-iterator state in the shape Grain's checkpoint handler saves."""

  def __init__(self, state: bytes):
    self._state = state

  def get_state(self) -> bytes:
    return self._state


class Checkpointer:
  """A `CheckpointManager` over `directory` (created if absent, never wiped; stray
  temporary folders of an unfinished save are removed).

  Args:
    directory: checkpoint folder (absolute or relative; orbax needs absolute paths).
    save_every: `save(step, ...)` writes only when step % save_every == 0, unless forced.
    keep: number of most recent checkpoints kept.
    meta: JSON-able dict saved with every checkpoint and checked on restore (keys whose
      values differ from the checkpoint's make `restore` raise).
    read_only: only read (another stage's checkpoints, e.g. Stage 2 reading Stage 1's):
      the folder is neither created nor cleaned.
  """

  def __init__(self, directory: str | os.PathLike, *, save_every: int = 1000,
               keep: int = 3, meta: dict | None = None, async_save: bool = True,
               read_only: bool = False):
    if save_every <= 0:
      raise ValueError(f"config.train.checkpoint_every must be >= 1, got {save_every}")
    if keep <= 0:
      raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}")
    self.directory = os.path.abspath(os.fspath(directory))
    self.meta = dict(meta or {})
    self.save_every = save_every
    # The interval is applied here (orbax's default policy would also save the first
    # step of a run); every save below is forced.
    if not read_only:
      _remove_unfinished_saves(self.directory)
    # Not orbax's own read_only option: it logs three warnings per manager.
    self.read_only = read_only
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=1, max_to_keep=keep, create=not read_only,
        enable_async_checkpointing=async_save)
    # Lazy here and below: Grain (~1 s to import) is needed only for data iterators.
    import grain  # pylint: disable=import-outside-toplevel
    self._mngr = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler(),
                       "data": grain.checkpoint.CheckpointHandler()})

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def is_due(self, step: int) -> bool:
    """Whether `step` is on the save interval (`save` skips steps already saved)."""
    return step % self.save_every == 0

  def save(self, step: int, state, *, force: bool = False,
           extra_meta: dict | None = None, data=None) -> bool:
    """Saves `state` as `step` if due (or forced and not saved yet). True if saved.

    `extra_meta` (JSON values) is stored with this checkpoint only and not checked on
    restore (e.g. the validation score of a best checkpoint). `data`: the input
    iterator (with `get_state() -> bytes`, e.g. `data.pipeline.Batches`); its state
    at this call is saved as item "data" (one file per process, Grain's format)."""
    if self.read_only:
      raise ValueError(f"{self.directory} was opened read-only; it is not saved to")
    if step in self.all_steps():
      return False  # never overwrite an existing checkpoint
    if not force and step % self.save_every:
      return False
    import grain  # pylint: disable=import-outside-toplevel
    meta = dict(extra_meta or {}, **self.meta, step=step)
    items = dict(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    if data is not None:
      # A snapshot now: an asynchronous save must not see later batches.
      items["data"] = grain.checkpoint.CheckpointSave(_DataState(data.get_state()))
    return self._mngr.save(step, args=ocp.args.Composite(**items), force=True)

  def restore_data(self, iterator, step: int | None = None) -> bool:
    """Sets `iterator` (with `set_state`) to the input state saved with `step`
    (default: latest). False (iterator untouched) when that checkpoint has none."""
    import grain  # pylint: disable=import-outside-toplevel
    step = self.latest_step() if step is None else step
    if step is None or not os.path.isdir(os.path.join(self.directory, str(step),
                                                      "data")):
      return False
    self._mngr.restore(step, args=ocp.args.Composite(
        data=grain.checkpoint.CheckpointRestore(iterator)))
    return True

  def saved_meta(self, step: int | None = None) -> dict:
    """The JSON meta saved with `step` (default: latest)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    return dict(self._mngr.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"])

  def restore(self, template, step: int | None = None, mesh: Mesh | None = None):
    """The state saved at `step` (default: latest), shaped like `template` (a state or
    its `jax.eval_shape`), arrays replicated over `mesh` (default: first device).
    `template` None: the tree as saved (e.g. Stage 1's state read by Stage 2, whose
    optimiser state it does not know)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    saved_meta = self.saved_meta(step)
    changed = {k: (saved_meta.get(k), v) for k, v in self.meta.items()
               if k in saved_meta and saved_meta[k] != v}
    if changed:
      detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in
                         changed.items())
      raise ValueError(
          f"{self.directory} holds a run with other settings ({detail}); resuming would "
          f"change the data order. Use a new --workdir, or the checkpoint's values.")
    sharding = (NamedSharding(mesh, P()) if mesh is not None else
                jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    abstract = None if template is None else jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), template)
    try:
      restored = self._mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract)))
    except (ValueError, KeyError) as e:
      raise ValueError(f"checkpoint {self.directory}/{step} does not match the model "
                       f"and optimizer of this config ({e}); use a new --workdir") from e
    logging.info("restored step %d from %s", step, self.directory)
    return restored["state"]

  def close(self):
    self._mngr.wait_until_finished()
    self._mngr.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
