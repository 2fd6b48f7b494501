"""Synthetic MLSP-like features with a linear target, by content, shared by the Stage 3
tests (regressor, probes, run_stage3): fast, and the right answer is known."""
from __future__ import annotations

import numpy as np

HIDDEN = (64, 32, 16)  # the DeepFL-IQA stack, narrower
DIM = 8
# The paper's rate is 1e-3 for thousands of images; these few hundred need more per step.
LR = 1e-2


def _linear_data(n_contents=40, per_content=15, seed=0, noise=0.05):
  """Features (n, DIM) and a linear score w.x + 3 (plus small noise), by content."""
  rng = np.random.default_rng(seed)
  n = n_contents * per_content
  x = rng.normal(size=(n, DIM)).astype(np.float32)
  w = rng.normal(size=DIM) / np.sqrt(DIM)
  y = x @ w + 3.0 + noise * rng.normal(size=n)
  content = np.repeat([f"c{i:02d}" for i in range(n_contents)], per_content)
  return x, y, content
