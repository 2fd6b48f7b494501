"""The demo config end to end (Stages 1 -> 2 -> 3 -> transfer), reduced in steps and
distortion types so it fits the CI budget, run as the README runs it.

The paper's protocol: Stage 1 trains on grey photographs and dead-leaves images only,
so mini-KADID's eight colour photographs, on which Stage 3 is evaluated, are contents
Stage 1 never saw. Asserts that every stage runs from the README's command and leaves
its outputs, that the Stage 1 MSE falls well below that of predicting the mean (1/12 for
the equalised, roughly uniform targets), that on those unseen contents the Stage 1
features rank mini-KADID's human DMOS better than the same backbone's random weights,
that the scoring model is the final fit on all evaluation contents, and that the
transfer stage scores contents no stage saw (the TID2013 references of ../shared, when
present), where the Stage 1 features' ridge probe again beats random weights'. Measured
numbers: experiments/RESULTS.md.
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the README's main job end to end (minutes)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TYPES = "(1,3,10,11,19,21)"  # blur, motion blur, JPEG, noise, jitter, pixelate
STEPS = 150


def test_demo_runs_all_stages_and_transfers(tmp_path):
  workdir = tmp_path / "demo"
  cmd = [sys.executable, "-m", "deepfl_jax.main", "--config=configs/demo.py",
         f"--workdir={workdir}", f"--config.train.num_steps={STEPS}",
         f"--config.train.checkpoint_every={STEPS // 2}",
         "--config.stage1.calibration_steps=3", f"--config.stage1.types={TYPES}",
         "--config.stage3.num_repeats=5", "--config.stage3.epochs=40",
         "--config.stage2.batch_size=20", "--config.transfer.sklearn=False"]
  # mini-KADID (and the transfer set) restricted to the same types.
  cmd.append(f"--config.stage2.mini_kadid={{'size': (192, 256), 'types': {TYPES}}}")
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
  assert out.returncode == 0, out.stderr[-4000:]
  assert "| stage1 | regressor |" in out.stdout and "| random | regressor |" in out.stdout

  logged = [json.loads(l) for l in (workdir / "stage1" / "metrics.jsonl").read_text()
            .splitlines()]
  losses = [r["loss"] for r in logged if "loss" in r]
  assert len(losses) >= 10 and np.all(np.isfinite(losses))
  assert 0.03 < losses[0] < 0.15, losses
  first, last = np.mean(losses[:3]), np.mean(losses[-3:])
  # 1/12 is the MSE of predicting the mean of uniform targets; 0.0572 measured on
  # 2026-12-07 with colour jitter and BN momentum 0.9 (bound leaves room for other CPUs).
  assert last < 0.8 * first and last < 0.75 / 12, losses
  assert sorted(int(p.name) for p in (workdir / "stage1" / "checkpoints").iterdir()
                if p.name.isdigit()) == [STEPS // 2, STEPS]

  results = json.loads((workdir / "stage3" / "results.json").read_text())
  srocc = {(r["features"], r["model"]): r["summary"]["srocc"]["mean"]
           for r in results["runs"]}
  assert set(srocc) == {(f, m) for f in ("stage1", "random")
                        for m in ("regressor", "ridge")}
  assert all(np.isfinite(v) for v in srocc.values()), srocc
  # Contents Stage 1 never saw, mean over five splits of about 60 test images each:
  # under the null a split's SROCC has a std of about 0.13.
  assert srocc["stage1", "ridge"] > srocc["random", "ridge"] + 0.1, srocc
  assert srocc["stage1", "ridge"] > 0.15, srocc

  model = json.loads((workdir / "stage3" / "model.json").read_text())
  assert model["repeat"] is None and model["fit"].startswith("final: all 240 images "
                                                             "(8 contents)")
  transfer = json.loads((workdir / "stage3" / "transfer.json").read_text())
  if transfer["contents"]:  # ../shared's TID2013 references (developers and CI)
    assert "| features | model | Stage 3 held-out contents SROCC" in out.stdout
    by = {(r["features"], r["model"]): r for r in transfer["runs"]}
    assert set(by) == set(srocc)
    assert all(np.isfinite(r["srocc"]) for r in by.values()), by
    assert by["stage1", "regressor"]["held_out_srocc"] == srocc["stage1", "regressor"]
    # Contents no stage saw (180 images of six contents), the ridge probe fit on all
    # evaluation contents: Stage 1's features rank them better than random weights'
    # (measured 0.27 vs 0.17; experiments/RESULTS.md, issue 13). The regressor is not
    # asserted: 40 epochs on 240 images leave it still fitting the DMOS offset.
    assert by["stage1", "ridge"]["srocc"] > by["random", "ridge"]["srocc"] + 0.05, by
  else:
    assert "Transfer check skipped" in out.stdout
