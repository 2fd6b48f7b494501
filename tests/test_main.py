"""`deepfl_jax.main.run`: stage headers, and Ctrl-C / SIGTERM anywhere in a stage end
the run with one line and the shell's status (130 / 143)."""
from __future__ import annotations

import importlib
import os
import signal

import pytest

from deepfl_jax import main, stages
from deepfl_jax.train import loop


def _config():
  config = importlib.import_module("configs.demo").get_config()
  config.stages = ("stage1",)
  return config


def _run_with_stage(monkeypatch, tmp_path, capsys, fn):
  monkeypatch.setitem(stages.STAGES, "stage1", fn)
  previous = signal.getsignal(signal.SIGTERM)
  rc = main.run(_config(), str(tmp_path))
  assert signal.getsignal(signal.SIGTERM) is previous  # restored
  return rc, capsys.readouterr().err.strip().splitlines()


def test_stage_header_and_success(monkeypatch, tmp_path, capsys):
  def stage(config, workdir):
    """Weak supervision (a stand-in)."""
  rc, lines = _run_with_stage(monkeypatch, tmp_path, capsys, stage)
  assert rc == 0 and lines == [f"== stage1: Weak supervision (a stand-in). (work "
                               f"directory {tmp_path})"]


def test_loop_stop_exits_143_with_its_line(monkeypatch, tmp_path, capsys):
  def stage(config, workdir):
    raise loop.Preempted("stopped by SIGTERM at step 7; checkpoint saved in x: rerun "
                         "the same command to resume", signum=signal.SIGTERM, step=7)
  rc, lines = _run_with_stage(monkeypatch, tmp_path, capsys, stage)
  assert rc == 143 and lines[-1].startswith("deepfl_jax.main: stopped by SIGTERM at "
                                            "step 7;")


@pytest.mark.parametrize("signum,code,text", [(signal.SIGTERM, 143, "stopped by SIGTERM "
                                               "during stage1"),
                                              (signal.SIGINT, 130, "interrupted during "
                                               "stage1")])
def test_signal_outside_a_loop(monkeypatch, tmp_path, capsys, signum, code, text):
  def stage(config, workdir):
    os.kill(os.getpid(), signum)  # e.g. while Stage 2 extracts features
    raise AssertionError("the signal should have stopped the stage")
  rc, lines = _run_with_stage(monkeypatch, tmp_path, capsys, stage)
  assert rc == code and len(lines) == 2 and text in lines[-1], lines
