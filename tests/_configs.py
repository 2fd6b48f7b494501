"""The shipped experiment configs as (file, argument) pairs, shared by the config tests."""
import importlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Config files; those whose get_config takes an argument list every value of it.
CONFIG_ARGS = {"mlsp_eval": tuple(importlib.import_module("configs.mlsp_eval").DATABASES)}
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py") if p.stem != "__init__")
SPECS = [(n, a) for n in CONFIGS for a in CONFIG_ARGS.get(n, (None,))]


def load(name, arg=None):
  """configs/<name>.py:<arg>, as `--config=configs/<name>.py:<arg>` loads it."""
  module = importlib.import_module(f"configs.{name}")
  return module.get_config() if arg is None else module.get_config(arg)
