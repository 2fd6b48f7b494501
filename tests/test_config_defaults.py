"""The defaults of every config section: one light module, shared values linked, and
the values it writes out agree with the data modules they name."""
from __future__ import annotations

import subprocess
import sys

import ml_collections

from deepfl_jax import config_defaults as cd
from deepfl_jax.data import mini_kadid, pristine


def test_written_out_data_defaults_match_the_data_modules():
  assert cd.MINI_KADID_PHOTOS == mini_kadid.PHOTOS
  assert cd.STAGE1_SOURCES == pristine.STAGE1_SOURCES
  assert cd.SHARED_DIR == str(pristine.SHARED_DIR)


def test_module_imports_no_jax():
  code = ("import sys; import deepfl_jax.config_defaults as c; c.base_config('x'); "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
          "('jax', 'numpy', 'flax', 'orbax')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True).stdout
  assert out.strip() == "[]"


def test_stage2_backbone_is_config_model():
  config = cd.base_config("t")
  config.model.width, config.model.blocks = 0.5, (2, 2, 2)
  assert config.stage2.width == 0.5 and tuple(config.stage2.blocks) == (2, 2, 2)
  config.stage2.input_scale = "keras"  # one value: either key sets both
  assert config.model.input_scale == "keras"
  s = cd.section(config, "stage2")
  assert s.width == 0.5 and s.input_scale == "keras" and s.kind == "narrow"
  config.stage3.num_repeats = 3
  assert cd.section(config, "finetune").num_repeats == 3


def test_section_fills_missing_keys_and_sections():
  c = ml_collections.ConfigDict({"stage2": {"blocks": (1, 1, 1), "data_dir": None}})
  s = cd.section(c, "stage2")
  assert tuple(s.blocks) == (1, 1, 1) and s.width == 1.0 and s.data_dir is None
  assert s.checkpoint_dir == "stage1/checkpoints"
  assert cd.section(None, "stage3") == cd.stage3_config()
  assert cd.section(c, "transfer").compare is True
  for name in cd.SECTIONS:
    assert set(cd.section(None, name)) == set(cd.SECTIONS[name]())


def test_stage2_section_without_references_takes_the_model():
  """A stage2 section written by hand (no FieldReferences) that leaves out the backbone
  keys reads them from config.model, the network Stage 1 trained."""
  config = ml_collections.ConfigDict({"model": {"width": 0.25, "blocks": (1, 2, 1),
                                                "input_scale": "keras"},
                                      "stage2": {"dataset": "mini_kadid"}})
  s = cd.section(config, "stage2")
  assert (s.width, tuple(s.blocks), s.input_scale) == (0.25, (1, 2, 1), "keras")
  config.stage2.width = 0.5  # a given value still wins
  assert cd.section(config, "stage2").width == 0.5
