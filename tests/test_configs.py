"""Every experiment config loads, names known stages, and bad values stop with a
message that names the key."""
import importlib
import pathlib

import pytest

from deepfl_jax import stages
from deepfl_jax.train import stage1, stage2

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[1] /
                                  "configs").glob("*.py")
                 if p.stem not in ("__init__", "common"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_with_known_stages(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  assert config.name == name
  assert config.stages and all(s in stages.STAGES for s in config.stages)


def _small_eval_config():
  config = importlib.import_module("configs.mlsp_kadid10k").get_config()
  config.model.width, config.model.blocks = 0.125, (1, 1, 1)
  config.stage2.weights = "random"
  return config


def test_missing_stage1_weights_name_the_key(tmp_path):
  config = importlib.import_module("configs.mlsp_kadid10k").get_config()
  with pytest.raises(FileNotFoundError, match="config.stage2.weights"):
    stage2.run_stage2(config, str(tmp_path))


def test_unknown_dataset_names_the_key(tmp_path):
  config = _small_eval_config()
  config.stage2.dataset = "kadid11k"
  with pytest.raises(ValueError, match="config.stage2.dataset"):
    stage2.run_stage2(config, str(tmp_path))


def test_unbuilt_database_without_manual_dir_names_the_key(tmp_path):
  config = _small_eval_config()
  with pytest.raises(Exception, match="manual_dir"):
    stage2.run_stage2(config, str(tmp_path))


def test_unknown_stage1_source_names_the_key(tmp_path):
  config = importlib.import_module("configs.deepfl_online").get_config()
  config.stage1.source = "imagenet"
  config.stage1.calibration_steps = 0
  config.model.init_from = "scratch"
  with pytest.raises(ValueError, match="config.stage1.source"):
    stage1.run_stage1(config, str(tmp_path))


STAGE1_CONFIGS = [n for n in CONFIGS if "stage1" in
                  importlib.import_module(f"configs.{n}").get_config().stages]


@pytest.mark.parametrize("name", STAGE1_CONFIGS)
def test_stage1_never_starts_from_random_weights_silently(name, tmp_path):
  config = importlib.import_module(f"configs.{name}").get_config()
  if name == "demo":  # the demo asks for random weights, explicitly
    assert config.model.init_from == "scratch"
    return
  with pytest.raises(ValueError, match="config.model.init_from") as err:
    stage1.run_stage1(config, str(tmp_path))
  msg = str(err.value)
  assert stage1.KERAS_IMAGENET_WEIGHTS in msg and "init_from=scratch" in msg
  assert not (tmp_path / "stage1").exists()  # refused before any work
  config.model.init_from = str(tmp_path / "missing.h5")
  with pytest.raises(FileNotFoundError, match="missing.h5"):
    stage1.run_stage1(config, str(tmp_path))
