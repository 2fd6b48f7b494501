"""Atomic writes of the shared files a run leaves for other processes and later stages.

A file another process (or a later stage, or a resumed run) reads is never written in
place: it is written to a temporary name in the same folder, flushed to disk, and
renamed over the target (`os.replace`, atomic on POSIX file systems). A reader sees the
previous file or the complete new one, never a torn write, even if the writer is killed
mid-way (preemption, OOM killer, Ctrl-C). Only process 0 of a multi-process run writes
shared files (`is_writer`); the others compute the same values and read them back.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, Iterator

import numpy as np


def is_writer() -> bool:
  """True on the process that writes shared files (JAX process 0)."""
  # Lazy: this module stays JAX-free (it is imported before JAX's logging is set up).
  import jax  # pylint: disable=import-outside-toplevel
  return jax.process_index() == 0


def _fsync_dir(folder: pathlib.Path) -> None:
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return  # e.g. a platform without directory file descriptors
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def replacing(path: str | os.PathLike, suffix: str = "") -> Iterator[pathlib.Path]:
  """Yields a temporary path beside `path`; on a clean exit its file replaces `path`.

  The caller writes the temporary file by any means (e.g. `np.save`, `img.save`);
  `suffix` keeps the extension those writers expect. If the block raises, the
  temporary file is removed and `path` is left as it was.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}",
                             dir=path.parent)
  os.close(fd)
  tmp = pathlib.Path(tmp)
  try:
    yield tmp
    with open(tmp, "rb+") as f:  # the bytes are on disk before the rename
      os.fsync(f.fileno())
    # mkstemp creates 0600; give the file the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
  finally:
    tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
  """Atomically writes `data` to `path`."""
  with replacing(path) as tmp:
    with open(tmp, "wb") as f:
      f.write(data)
  return pathlib.Path(path)


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
  """Atomically writes `text` (UTF-8) to `path`."""
  return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, **dumps_kwargs) -> pathlib.Path:
  """Atomically writes `json.dumps(obj, **dumps_kwargs)` to `path`."""
  return write_text(path, json.dumps(obj, **dumps_kwargs))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> pathlib.Path:
  """Atomically writes `array` as a .npy file (`np.save`) to `path`."""
  with replacing(path, ".npy") as tmp:
    np.save(tmp, array)
  return pathlib.Path(path)


def savez(path: str | os.PathLike, **arrays: np.ndarray) -> pathlib.Path:
  """Atomically writes an .npz archive (`np.savez`) of `arrays` to `path`."""
  with replacing(path, ".npz") as tmp:
    np.savez(tmp, **arrays)
  return pathlib.Path(path)
