"""Runs an experiment: `python -m deepfl_jax.main --config=configs/<exp>.py --workdir=DIR`.

The config's `stages` names the steps to run, in order; each stage is a function
`(config, workdir) -> results` from `deepfl_jax.stages.STAGES` that reads and writes the
work directory, so any stage can be rerun alone (`--config.stages=stage3`).

Override any config field as --config.<section>.<key>=VALUE, e.g.
  python -m deepfl_jax.main --config=configs/demo.py --config.train.num_steps=100
configs/README.md lists the configs; the keys of a section are in its config file.
The whole config is checked before any work: a bad value or an unknown key stops the
run with one line naming it (exit status 2).

Output: stage headers, progress bars and results; --verbosity=0 (or -v 0) adds library
logs (orbax, JAX, XLA). Ctrl-C or SIGTERM stops after the current training step, saves
a checkpoint and exits with status 130 / 143; rerun the same command to resume.
"""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
from typing import NoReturn, Sequence

from deepfl_jax import verbosity

verbosity.quiet_native_logs(sys.argv[1:])  # before the config file imports JAX

# pylint: disable=wrong-import-position
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from deepfl_jax import atomic, config_validation, stages  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/demo.py. Override any of its "
    "fields as --config.<section>.<key>=VALUE, e.g. --config.train.num_steps=100 or "
    "--config.stages=stage3 (configs/README.md).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory for checkpoints and "
                               "results (default: ./workdir/<config name>).")
_PROG = "deepfl_jax.main"


def _fail(message) -> NoReturn:
  print(f"{_PROG}: error: {message}", file=sys.stderr)
  sys.exit(2)


def _config_argument(args: Sequence[str]) -> str | None:
  for i, a in enumerate(args):
    if a.startswith("--config="):
      return a.split("=", 1)[1]
    if a == "--config" and i + 1 < len(args):
      return args[i + 1]
  return None


def _check_config_arguments(args: Sequence[str]) -> None:
  """One line (exit 2) for a missing config file or an override of an unknown key,
  before absl parses the flags (its error would be a long chained traceback)."""
  spec = _config_argument(args)
  if spec is None:
    return
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    folder = os.path.dirname(path) or "."
    siblings = (sorted(f for f in os.listdir(folder) if f.endswith(".py"))
                if os.path.isdir(folder) else [])
    _fail(f"--config={spec}: no such config file"
          f"{config_validation.did_you_mean(os.path.basename(path), siblings)}")
  try:
    module_spec = importlib.util.spec_from_file_location("_deepfl_config_check", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(arg) if arg else module.get_config()
  except ValueError as e:  # e.g. an unknown argument (configs/mlsp_eval.py:<database>)
    _fail(f"--config={spec}: {e}")
  except Exception:  # pylint: disable=broad-except
    return  # config_flags reports a config file that does not load
  for a in args:
    if a.startswith("--config."):
      dotted = a[len("--config."):].split("=", 1)[0]
      message = config_validation.unknown_override(config, dotted)
      if message:
        _fail(message)


def _parse_flags(argv: list[str]) -> list[str]:
  _check_config_arguments(argv[1:])
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # e.g. --config.train.num_steps=abc
    _fail(e)


def _save_config(config, workdir: str) -> None:
  """The config of this invocation as `<workdir>/config.json` (process 0, atomically:
  a reader never sees half a file), so a work directory says what produced it."""
  if atomic.is_writer():
    atomic.write_text(os.path.join(workdir, "config.json"),
                      config.to_json_best_effort(indent=1, sort_keys=True) + "\n")


def _sigterm_raises(stage: list[str]):
  """SIGTERM outside a training loop (which installs its own handler that finishes the
  step and saves) stops like Ctrl-C, with one line and status 143. Returns the
  previous handler."""
  # Lazy: the loop module pulls in JAX and orbax; a bad config stops before that.
  from deepfl_jax.train.loop import Preempted  # pylint: disable=import-outside-toplevel

  def handler(signum, frame):
    del frame
    raise Preempted(f"stopped by SIGTERM during {stage[0]}; rerun the same command to "
                    "resume", signum=signum)

  return signal.signal(signal.SIGTERM, handler)


def run(config, workdir: str | None = None) -> int:
  """Checks `config`, then runs its stages in `workdir`; returns the exit status: 0, 2
  (a config problem, one line, nothing written), 130 / 143 (Ctrl-C / SIGTERM, one line;
  a training loop saved its step first)."""
  try:
    config_validation.validate(config)
  except config_validation.ConfigError as e:
    print(f"{_PROG}: error: {e}", file=sys.stderr)
    return 2
  workdir = workdir or os.path.join("workdir", config.get("name", "run"))
  os.makedirs(workdir, exist_ok=True)
  _save_config(config, workdir)
  current = ["start"]
  previous = _sigterm_raises(current)
  try:
    for stage in config_validation.stage_names(config):
      current[0] = stage
      doc = ((stages.STAGES[stage].__doc__ or "").strip().splitlines() or [""])[0]
      print(f"== {stage}: {doc} (work directory {workdir})".replace(":  (", " ("),
            file=sys.stderr, flush=True)
      stages.STAGES[stage](config, workdir)
  except KeyboardInterrupt as e:  # Ctrl-C, or train.loop.Preempted after its save
    line = str(e) or f"interrupted during {current[0]}; rerun the same command to resume"
    print(f"{_PROG}: {line}", file=sys.stderr)
    return getattr(e, "exit_code", 130)
  finally:
    signal.signal(signal.SIGTERM, previous)
  return 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  verbosity.quiet_python_logs(flags.FLAGS["verbosity"].present)
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config=configs/<experiment>.py is required")
  sys.exit(run(config, _WORKDIR.value))


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  app.run(main, flags_parser=_parse_flags)
