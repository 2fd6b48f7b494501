"""Runs an experiment: `python -m deepfl_jax.main --config=configs/<exp>.py --workdir=DIR`.

The config's `stages` names the steps to run, in order; each stage is a function
`(config, workdir) -> results` from `deepfl_jax.stages.STAGES` that reads and writes the
work directory, so any stage can be rerun alone (`--config.stages=...`).
"""
from __future__ import annotations

import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory for checkpoints and "
                               "results (default: ./workdir/<config name>).")


def _save_config(config, workdir: str) -> None:
  """The config of this invocation as `<workdir>/config.json` (process 0, atomically:
  a reader never sees half a file), so a work directory says what produced it."""
  from deepfl_jax import atomic  # pylint: disable=import-outside-toplevel
  if atomic.is_writer():
    atomic.write_text(os.path.join(workdir, "config.json"),
                      config.to_json_best_effort(indent=1, sort_keys=True) + "\n")


def main(argv):
  del argv
  from deepfl_jax import stages  # Imported late: flags parse before JAX starts.
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config=configs/<experiment>.py is required")
  workdir = _WORKDIR.value or os.path.join("workdir", config.get("name", "run"))
  os.makedirs(workdir, exist_ok=True)
  _save_config(config, workdir)
  for stage in config.stages:
    if stage not in stages.STAGES:
      raise app.UsageError(f"config.stages: unknown stage {stage!r}; known: "
                           f"{sorted(stages.STAGES)}")
    logging.info("stage %s -> %s", stage, workdir)
    stages.STAGES[stage](config, workdir)


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main)
