"""Worker processes of the multi-process tests: environment, a free loopback port, and
two processes run together with a bounded wait (killed if they hang)."""
from __future__ import annotations

import os
import pathlib
import socket
import subprocess
from typing import Sequence

ROOT = pathlib.Path(__file__).resolve().parents[2]


def env(devices: int) -> dict[str, str]:
  """This environment with `devices` CPU devices, no inherited XLA/JAX settings."""
  out = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  out.update(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")]))
  return out


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_together(cmds: Sequence[Sequence[str]], environ: dict[str, str],
                 timeout: float = 180) -> tuple[list[int], list[str]]:
  """(exit codes, combined stdout+stderr) of `cmds` started at once."""
  procs = [subprocess.Popen(list(c), env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for c in cmds]
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=timeout)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  return [p.returncode for p in procs], logs
