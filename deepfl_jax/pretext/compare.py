"""Compare the Stage 1 pretext tasks on equal terms (issue 15): each task trains the
same backbone with the same budget (config.train, config.optim, config.model) on the
same pristine images, then the same Stage 2 features and Stage 3 evaluations (frozen
regressor, ridge probe, end-to-end fine-tuning) over the same content splits; random
backbone weights give the floor row. One table of SROCC and PLCC (mean ± sample std
over splits).

Work directories: `<workdir>/<task>/` per task (each a full Stage 1-3 run, resumable),
`<workdir>/data/` the evaluation database shared by all tasks (unless
config.stage2.data_dir names one), `<workdir>/compare.{json,md}` the table.
"""
from __future__ import annotations

import copy
import json
import os

from deepfl_jax import config_defaults
from deepfl_jax.pretext import TASKS
from deepfl_jax.train import finetune, stage1, stage2, stage3


def _cell(s) -> str:
  if not s.get("n"):
    return "n/a"
  if s["n"] == 1:  # no spread to show (fine-tuning on one split)
    return f"{s['mean']:.3f} (1 split)"
  return f"{s['mean']:.3f} ± {s['std']:.3f}"


def table(rows) -> str:
  """Markdown of [(task, model, summary)] rows."""
  lines = ["| pretext task | evaluation | SROCC | PLCC |", "|---|---|---|---|"]
  for task, model, s in rows:
    lines.append(f"| {task} | {model} | {_cell(s['srocc'])} | {_cell(s['plcc'])} |")
  return "\n".join(lines) + "\n"


def run_compare(config, workdir):
  """Runs Stage 1 of every task in `config.compare.tasks` (default all four), then
  Stages 2 and 3 and the fine-tuning evaluation; writes and returns the table rows."""
  cmp = config.get("compare", None) or {}
  tasks = tuple(cmp.get("tasks", ())) or TASKS
  bad = [t for t in tasks if t not in TASKS]
  if bad:
    raise ValueError(f"config.compare.tasks: unknown {bad}; use some of {TASKS}")
  rows = []
  for i, task in enumerate(tasks):
    sub = copy.deepcopy(config)
    sub.stage1.task = task
    sub.stage2.compare_random = i == 0        # the random-weights row once
    # One mini-KADID for all tasks (by default each work directory would make its own).
    sub.stage2.data_dir = config.stage2.data_dir or os.path.join(workdir, "data")
    ft = config_defaults.section(config, "finetune")
    ft.compare_random = i == 0 and bool(ft.compare_random)
    sub.finetune = ft
    wd = os.path.join(workdir, task)
    stage1.run_stage1(sub, wd)
    stage2.run_stage2(sub, wd)
    r3 = stage3.run_stage3(sub, wd)
    evals = list(r3["runs"])
    if bool(cmp.get("finetune", True)):
      evals += finetune.run_finetune(sub, wd)["runs"]
    for run in evals:
      name = task if run["features"] != "random" else "random weights"
      rows.append((name, run["model"], run["summary"]))
  rows.sort(key=lambda r: r[0] == "random weights")
  md = table(rows)
  with open(os.path.join(workdir, "compare.md"), "w") as f:
    f.write(md)
  with open(os.path.join(workdir, "compare.json"), "w") as f:
    json.dump([{"task": t, "model": m, "summary": s} for t, m, s in rows], f, indent=1,
              default=float)
  print(md)
  return rows
