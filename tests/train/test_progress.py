"""The progress bar: rate and ETA from the first completed step on, units, and the bar
drawn before a first step that compiles."""
from __future__ import annotations

import io

from deepfl_jax.train.progress import Progress


def test_progress_bar_rate_and_eta():
  out = io.StringIO()
  bar = Progress(100, 0, desc="stage1", examples_per_step=8, stream=out)
  bar.update(1)
  bar._t0 -= 2.0  # pretend 2 s passed since the first step
  bar.update(11, {"loss": 0.5}, force=True)
  line = out.getvalue().strip().splitlines()[-1]
  assert line.startswith("stage1 11/100 steps")
  rate = float(line.split(" steps/s")[0].split("| ")[-1])
  assert 4.0 < rate <= 5.0  # 10 steps in ~2 s
  assert "images/s" in line and "ETA 0:00:1" in line and "loss 0.5" in line


def test_progress_bar_begins_before_the_first_step():
  out = io.StringIO()
  bar = Progress(20, 0, desc="stage1 calibration", unit="batches", stream=out)
  bar.begin()  # drawn before a first step that may compile for a while
  assert out.getvalue().startswith("stage1 calibration 0/20 batches |   0.0% | ETA ?")
  assert bar.rate(5) != bar.rate(5)  # nan: the rate clock has not started
  bar.update(1)
  bar._t0 -= 2.0
  bar.update(5, force=True)
  assert " 2 batches/s" in out.getvalue().splitlines()[-1]  # 4 batches in ~2 s
