"""The SFF detector generator (deepfl_jax/tools/learn_sff_w.py) reproduces the shipped
W from its recorded settings."""
from __future__ import annotations

import importlib
import json

import numpy as np

from deepfl_jax.tools import learn_sff_w as learn_lib

# The module, not the function `deepfl_jax.metrics.sff` that the package exports.
sff_lib = importlib.import_module("deepfl_jax.metrics.sff")


def test_learning_reproduces_shipped_w():
  """The script with the recorded settings gives the shipped W (same platform; the
  sign fix of the PCA basis makes the FastICA run deterministic)."""
  record = json.loads(sff_lib.W_PATH.with_suffix(".json").read_text())
  w, rec = learn_lib.learn(seed=record["seed"], patches=record["patches"],
                           width=record["resize_width"])
  assert rec["iterations"] == record["iterations"]
  np.testing.assert_allclose(w, sff_lib.load_w(), rtol=0, atol=1e-6 * np.abs(w).max())
