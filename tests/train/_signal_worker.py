"""Subprocess worker for tests/train/test_signals.py: the tiny loop, sent a signal by
itself at a chosen point of a chosen step, so the timing is deterministic.

python _signal_worker.py WORKDIR POINT STEP SIGNAL NUM_STEPS
    POINT: "load" (while the batch of step STEP is produced), "step" (inside the train
    step call of step STEP, after the donated state was consumed) or "save" (inside the
    checkpoint save of step STEP). Exits as `deepfl_jax.main` does: one line on stderr
    and 128 + the signal number.
python _signal_worker.py multi WORKDIR PORT PROCESS_ID
    one of two processes of a jax.distributed run on 127.0.0.1:PORT (2 CPU devices
    each) of 12 steps, logging and checkpointing every 4; only process 0 signals itself
    (SIGTERM inside step 6): both must stop at the same step (the next boundary, 8), or
    the other would wait in the next step's collectives. Prints how many steps ran and
    how often the loop gathered the stop flag.
"""
from __future__ import annotations

import os
import signal
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tiny  # noqa: E402
import jax  # noqa: E402
from deepfl_jax import train as tr  # noqa: E402
from deepfl_jax.train import checkpoint, loop  # noqa: E402


def main(workdir: str, point: str, at: int, signame: str, num_steps: int,
         **loop_kwargs) -> int:
  signum = getattr(signal, signame)
  kill = lambda: os.kill(os.getpid(), signum)  # the handler runs before kill returns
  base = tr.array_batches(_tiny.dataset(), batch_size=8, seed=0)

  def batches(start):
    for i, b in enumerate(base(start)):
      if point == "load" and start + i == at:
        kill()
      yield b

  def step_wrapper(step):
    count = [None]

    def wrapped(state, batch):
      count[0] = int(tr.to_host(state.step)) if count[0] is None else count[0] + 1
      out = step(state, batch)  # the state passed in is donated (deleted) now
      if point == "step" and count[0] == at:
        kill()
      return out
    return wrapped

  save = checkpoint.Checkpointer.save

  def save_with_signal(self, step, state, **kwargs):
    saved = save(self, step, state, **kwargs)
    if point == "save" and step == at and saved:
      kill()  # while the asynchronous write of step `at` is under way
    return saved

  checkpoint.Checkpointer.save = save_with_signal
  try:
    _tiny.run_loop(workdir, num_steps, batches=batches, step_wrapper=step_wrapper,
                   **loop_kwargs)
  except tr.Preempted as e:
    print(f"worker: {e}", file=sys.stderr)
    return e.exit_code
  return 0


def multi(workdir: str, port: str, process_id: str) -> int:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                             process_id=int(process_id), initialization_timeout=60,
                             heartbeat_timeout_seconds=30, shutdown_timeout_seconds=30)
  gathers, gather = [], loop.multihost_utils.process_allgather

  def counting(*args, **kwargs):
    gathers.append(1)
    return gather(*args, **kwargs)

  # Only the loop's stop flag (orbax synchronises through other functions).
  loop.multihost_utils = types.SimpleNamespace(process_allgather=counting)
  rc = main(workdir, "step" if process_id == "0" else "none", 5, "SIGTERM", 12,
            log_every=4, checkpoint_every=4)
  print(f"worker: {len(gathers)} stop-flag gathers", file=sys.stderr)
  jax.distributed.shutdown()
  return rc


if __name__ == "__main__":
  if sys.argv[1] == "multi":
    sys.exit(multi(*sys.argv[2:]))
  sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4],
                int(sys.argv[5])))
