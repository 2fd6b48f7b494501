"""Config problems are found before any work, as one line naming the key, the value and
what is allowed; `python -m deepfl_jax.main` prints that line and exits 2 without
writing anything."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deepfl_jax import config_validation as cv
from deepfl_jax import stages
from tests._configs import SPECS, load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _demo():
  return load("demo")


@pytest.mark.parametrize("name,arg", SPECS)
def test_shipped_configs_have_no_problems(name, arg):
  assert cv.problems(load(name, arg)) == []


@pytest.mark.parametrize("section,key,value,expect", [
    ("train", "batch_size", -1, "config.train.batch_size=-1: must be an integer >= 1"),
    ("train", "batch_size", 0, "config.train.batch_size=0: must be an integer >= 1"),
    ("train", "log_every", 0, "config.train.log_every=0: must be an integer >= 1"),
    ("optim", "warmup_steps", 500, "config.optim.warmup_steps=500: must be < "
     "config.train.num_steps=500 for the cosine schedule"),
    ("optim", "schedule", "cosin", "did you mean 'cosine'?"),
    ("optim", "learning_rate", 0.0, "config.optim.learning_rate=0.0: must be a number > 0"),
    ("model", "head_dropout", (0.5, 0.5), "config.model.head_dropout=(0.5, 0.5): needs "
     "one rate per layer of config.model.head_hidden=(256,)"),
    ("stage1", "crop_size", (64, 64), "config.stage1.crop_size=(64, 64): must be a tuple "
     "of 2 integers >= 75"),
    ("stage1", "types", (1, 26), "config.stage1.types=(1, 26): must be a tuple of "
     "distortion type ids 1..25"),
    ("stage1", "equalizer", "published", "config.stage1.equalizer='published': needs "
     "config.stage1.score_file"),
    ("model", "bn_momentum", 1.0, "config.model.bn_momentum=1.0: must be a number in "
     "[0, 1)"),
    ("stage3", "fractions", (0.6, 0.3, 0.2), "config.stage3.fractions=(0.6, 0.3, 0.2)"),
    ("stage3", "export_repeat", 5, "config.stage3.export_repeat=5: must be a repeat "
     "index 0..4"),
])
def test_bad_value_names_key_value_and_allowed(section, key, value, expect):
  config = _demo()
  config[section][key] = value
  found = cv.problems(config)
  assert len(found) == 1 and expect in found[0], found
  assert "\n" not in found[0]
  with pytest.raises(cv.ConfigError, match="config." + section):
    cv.validate(config)


def test_colour_without_augment_is_refused():
  config = _demo()
  config.stage1.augment.enabled = False
  found = cv.problems(config)
  assert len(found) == 1 and "config.stage1.augment.colour=" in found[0], found
  assert "augment.enabled=True" in found[0]


def test_sections_of_stages_that_do_not_run_are_not_checked():
  config = _demo()
  config.train.batch_size = 0
  config.stages = ("stage3",)  # Stage 3 reads config.stage3 only
  assert cv.problems(config) == []
  config.stages = ("stage2,stage4",)  # as --config.stages=stage2,stage4 gives it
  assert cv.stage_names(config) == ("stage2", "stage4")
  assert cv.problems(config) == ["config.stages: unknown stage 'stage4' (did you mean "
                                 f"'stage3'?); known: {', '.join(stages.STAGES)}"]


def test_unknown_override_did_you_mean():
  config = _demo()
  assert cv.unknown_override(config, "train.num_steps") is None
  msg = cv.unknown_override(config, "train.num_stepz")
  assert msg.startswith("--config.train.num_stepz: config.train has no key 'num_stepz' "
                        "(did you mean 'num_steps'?)")
  assert "did you mean 'train'" in cv.unknown_override(config, "trian.seed")
  assert "is a value" in cv.unknown_override(config, "name.x")


def _main(*args, workdir, config="configs/demo.py"):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "deepfl_jax.main",
                         f"--config={config}", f"--workdir={workdir}", *args],
                        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


@pytest.mark.parametrize("override,expect", [
    ("--config.train.num_stepz=5", "(did you mean 'num_steps'?)"),
    ("--config.train.batch_size=-1", "config.train.batch_size=-1: must be an integer"),
    ("--config.optim.warmup_steps=600", "config.optim.warmup_steps=600: must be < "
     "config.train.num_steps=500"),
    ("--config.train.num_steps=abc", "--config.train.num_steps=abc"),
])
def test_main_prints_one_line_and_writes_nothing(tmp_path, override, expect):
  work = tmp_path / "work"
  p = _main(override, workdir=work)
  assert p.returncode == 2, p.stderr
  lines = p.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("deepfl_jax.main: error: "), p.stderr
  assert expect in lines[0]
  assert not work.exists()


@pytest.mark.parametrize("config,override,expect", [
    ("configs/mlsp_eval.py:kadid11k", "", "one of kadid10k, koniq10k, tid2013, live, "
     "csiq, livec"),
    ("configs/mlsp_eval.py", "", "needs a database after a colon"),
    ("configs/mlsp_eval.py:koniq10k", "--config.stage3.export_repeat=1",
     "config.stage3.export_repeat=1: must be a repeat index 0..0"),
])
def test_config_argument_checked_before_any_work(tmp_path, config, override, expect):
  work = tmp_path / "work"
  p = _main(*([override] if override else []), workdir=work, config=config)
  lines = p.stderr.strip().splitlines()
  assert p.returncode == 2 and len(lines) == 1 and expect in lines[0], p.stderr
  assert not work.exists()


def test_helpfull_says_how_to_override(tmp_path):
  p = _main("--helpfull", workdir=tmp_path)
  assert "--config.<section>.<key>=VALUE" in p.stdout + p.stderr


@pytest.mark.parametrize("name,key,value,expect", [
    ("rankiqa_kadis700k", "task", "rankng", "did you mean 'ranking'?"),
    ("rank_mlsp_kadis700k", "mlsp_blocks", (0, 43), "MLSP block indices 0..42"),
    ("qpt_kadis700k", "temperature", 0.0, "config.stage1.temperature=0.0: must be a "
     "number > 0"),
    ("qpt_kadis700k", "iou_range", (0.3, 0.1), "0 <= lo <= hi <= 1"),
    ("compare_pretext", "skip_prob", 1.0, "config.stage1.skip_prob=1.0"),
])
def test_pretext_keys_checked(name, key, value, expect):
  config = load(name)
  config.stage1[key] = value
  found = cv.problems(config)
  assert len(found) == 1 and expect in found[0], found
