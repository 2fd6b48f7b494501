"""Every experiment config loads, names known stages, and bad values stop with a
message that names the key."""
import pytest

from deepfl_jax import stages
from deepfl_jax.train import stage1, stage2
from tests._configs import ROOT, SPECS, load


@pytest.mark.parametrize("name,arg", SPECS)
def test_config_loads_with_known_stages(name, arg):
  config = load(name, arg)
  assert config.name == (name if arg is None else f"mlsp_{arg}")
  assert config.stages and all(s in stages.STAGES for s in config.stages)


def test_mlsp_eval_picks_database_and_names_the_valid_ones():
  assert load("mlsp_eval", "koniq10k").stage2.dataset == "koniq10k"
  assert load("mlsp_eval", "koniq10k").stage3.num_repeats == 1
  assert load("mlsp_eval", "livec").stage2.dataset == "live_in_the_wild"
  for arg in (None, "kadid11k"):
    with pytest.raises(ValueError, match="kadid10k, koniq10k, tid2013, live, csiq, livec"):
      load("mlsp_eval", arg)


def test_readme_lists_every_config():
  readme = (ROOT / "configs" / "README.md").read_text()
  for name, arg in SPECS:
    assert (f"`{name}.py`" if arg is None else f"`{name}.py:{arg}`") in readme


def _small_eval_config():
  config = load("mlsp_eval", "kadid10k")
  config.model.width, config.model.blocks = 0.125, (1, 1, 1)
  config.stage2.weights = "random"
  return config


def test_missing_stage1_weights_name_the_key(tmp_path):
  config = load("mlsp_eval", "kadid10k")
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
  config = load("deepfl_online")
  config.stage1.source = "imagenet"
  config.stage1.calibration_steps = 0
  config.model.init_from = "scratch"
  with pytest.raises(ValueError, match="config.stage1.source"):
    stage1.run_stage1(config, str(tmp_path))


STAGE1_CONFIGS = [n for n, a in SPECS if "stage1" in load(n, a).stages]


@pytest.mark.parametrize("name", STAGE1_CONFIGS)
def test_stage1_never_starts_from_random_weights_silently(name, tmp_path):
  config = load(name)
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
