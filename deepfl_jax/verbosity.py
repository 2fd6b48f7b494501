"""Quiet-by-default console of the command-line tools: progress bars, stage headers,
results and warnings; library INFO logs (orbax writes ~40 lines per checkpoint), JAX's
backend probing ("Unable to initialize backend 'tpu' ... libtpu.so") and XLA's C++
log lines (e.g. "slow operation" alarms of constant folding) only with `--verbosity`
(or `-v`) given. An error of XLA that matters still reaches Python as an exception.
"""
from __future__ import annotations

import logging as py_logging
import os
from typing import Sequence

from absl import logging as absl_logging

# Loggers whose INFO lines are library bookkeeping, not progress.
_NOISY = ("jax._src.xla_bridge", "jax._src.distributed", "orbax", "absl",
          "tensorflow", "tensorflow_datasets")


def verbose_requested(argv: Sequence[str]) -> bool:
  """True when the command line names a verbosity (absl's --verbosity / -v)."""
  return any(a == "-v" or a.startswith(("--verbosity", "-v=", "--v=")) for a in argv)


def quiet_native_logs(argv: Sequence[str]) -> None:
  """Hides XLA's C++ log lines below FATAL unless a verbosity is requested or the user
  set TF_CPP_MIN_LOG_LEVEL. Must run before JAX is imported (the C++ logger reads the
  variable once)."""
  if not verbose_requested(argv):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def quiet_python_logs(verbose: bool) -> None:
  """WARNING and above from absl-logging libraries (orbax, JAX, TFDS) unless
  `verbose`; call after flags are parsed (absl applies --verbosity then)."""
  if verbose:
    return
  absl_logging.set_verbosity(absl_logging.WARNING)
  for name in _NOISY:
    py_logging.getLogger(name).setLevel(py_logging.WARNING)
