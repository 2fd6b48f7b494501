"""The stages an experiment config can name (`config.stages`), in pipeline order.

Each is `fn(config, workdir) -> results` and reads and writes only the work directory,
so a stage can be rerun alone (e.g. `--config.stages=stage3`). Each stage imports its
modules when it runs (deliberately lazy): they pull in JAX, TFDS and the models, which
checking a config or running another stage does not need.
"""
from __future__ import annotations

import os


def fr_metrics(config, workdir):
  """The 11 FR proxies on embedded photographs (`deepfl_jax.tools.fr_metrics_demo`)."""
  from deepfl_jax.tools import fr_metrics_demo
  return fr_metrics_demo.run(config, workdir)


def generate(config, workdir):
  """KADIS-700k generation: distorted images + 11 raw FR scores as a TFDS dataset."""
  from deepfl_jax.data import generation
  return generation.run_generate(config, workdir)


def stage1(config, workdir):
  """Weak supervision: IRv2 + multi-task head on 11 equalised FR proxies."""
  from deepfl_jax.train import stage1 as s1
  return s1.run_stage1(config, workdir)


def stage2(config, workdir):
  """MLSP features of the evaluation database, cached in the work directory."""
  from deepfl_jax.train import stage2 as s2
  return s2.run_stage2(config, workdir)


def stage3(config, workdir):
  """The DeepFL-IQA regressor over repeated splits; prints the results table."""
  from deepfl_jax.train import reporting
  from deepfl_jax.train import stage3 as s3
  results = s3.run_stage3(config, workdir)
  print(reporting.markdown_table(results))
  print(f"\nResults: {os.path.join(workdir, 'stage3')} (results.json, results.md, "
        "scatter PNGs)")
  return results


def finetune(config, workdir):
  """Stage 3's end-to-end variant: backbone + regressor fine-tuned on MOS (L2) over
  Stage 3's splits (`deepfl_jax.train.finetune`)."""
  from deepfl_jax.train import finetune as ft
  from deepfl_jax.train import reporting
  results = ft.run_finetune(config, workdir)
  print(reporting.markdown_table(results))
  return results


def compare_pretext(config, workdir):
  """Every Stage 1 pretext task with the same budget, then the same Stages 2/3 and
  fine-tuning; one table (`deepfl_jax.pretext.compare`)."""
  from deepfl_jax.pretext import compare
  return compare.run_compare(config, workdir)


def compare_labels(config, workdir):
  """Our 11 FR scores against the published KADIS-700k score file (per metric and
  type: SROCC, PLCC, mean absolute difference), before spending GPU days on Stage 1."""
  from deepfl_jax import label_agreement
  return label_agreement.run(config, workdir)


def transfer(config, workdir):
  """The scoring model on contents no stage saw (`deepfl_jax.train.transfer`)."""
  from deepfl_jax.train import transfer as tr
  results = tr.run_transfer(config, workdir)
  print(tr.markdown(results))
  return results


STAGES = {"fr_metrics": fr_metrics, "compare_labels": compare_labels,
          "generate": generate, "stage1": stage1, "stage2": stage2, "stage3": stage3,
          "finetune": finetune, "compare_pretext": compare_pretext, "transfer": transfer}
