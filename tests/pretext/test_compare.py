"""compare_pretext's wiring: every task gets the same budget and the same Stage 2/3
and fine-tuning (one evaluation database), the random-weights row appears once, unknown
tasks are named. (Stages are replaced by recorders here; test_compare_short.py runs
the real stages briefly; the full run is in experiments/RESULTS.md.)"""
from __future__ import annotations

import pytest

from configs import compare_pretext
from deepfl_jax.pretext import TASKS, compare
from deepfl_jax.train import finetune, stage1, stage2, stage3


def _summary(v, n=3):
  s = {"mean": v, "std": 0.01 if n > 1 else 0.0, "median": v, "n": n}
  return {"srocc": s, "plcc": s}


def test_run_compare_same_budget_and_one_random_row(tmp_path, monkeypatch, capsys):
  seen = []

  def s1(config, wd):
    seen.append((config.stage1.task, config.train.num_steps, config.train.batch_size,
                 config.optim.learning_rate, config.model.width, config.stage2.data_dir))

  def s3(config, wd):
    runs = [{"features": "stage1", "model": "regressor", "summary": _summary(0.6)}]
    if config.stage2.compare_random:
      runs.append({"features": "random", "model": "regressor", "summary": _summary(0.2)})
    return {"runs": runs}

  def ft(config, wd):
    runs = [{"features": "stage1", "model": "finetuned", "summary": _summary(0.7)}]
    if config.finetune.compare_random:
      runs.append({"features": "random", "model": "finetuned",
                   "summary": _summary(0.3, n=1)})
    return {"runs": runs}

  monkeypatch.setattr(stage1, "run_stage1", s1)
  monkeypatch.setattr(stage2, "run_stage2", lambda c, wd: None)
  monkeypatch.setattr(stage3, "run_stage3", s3)
  monkeypatch.setattr(finetune, "run_finetune", ft)
  rows = compare.run_compare(compare_pretext.get_config(), str(tmp_path))
  assert [s[0] for s in seen] == list(TASKS)
  assert len({s[1:] for s in seen}) == 1          # one budget for all tasks
  assert seen[0][-1] == str(tmp_path / "data")    # mini-KADID made once, not per task
  names = [r[0] for r in rows]
  assert names.count("random weights") == 2       # regressor + fine-tuned, once each
  assert names[-2:] == ["random weights"] * 2
  assert len(rows) == 2 * len(TASKS) + 2
  md = (tmp_path / "compare.md").read_text()
  assert "| ranking | finetuned | 0.700 ± 0.010 | 0.700 ± 0.010 |" in md
  assert "| random weights | finetuned | 0.300 (1 split) | 0.300 (1 split) |" in md
  assert md in capsys.readouterr().out


def test_unknown_task_named(tmp_path):
  config = compare_pretext.get_config()
  config.compare.tasks = ("jigsaw",)
  with pytest.raises(ValueError, match="config.compare.tasks"):
    compare.run_compare(config, str(tmp_path))
