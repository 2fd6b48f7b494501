"""deepfl_jax: DeepFL-IQA (Lin, Hosu, Saupe 2020) and related IQA pretraining in JAX.

Library code by layer: `ops` (MATLAB-exact numerics), `metrics` (the 11 FR proxies and
correlations), `distortions` (the 25 KADID / KADIS types), `models` (InceptionResNetV2,
MLSP, heads), `data` (TFDS builders, splits, input pipeline, Stage 1 synthesis),
`train` (loop, checkpoints and the stages), `pretext` (alternative Stage 1 tasks).
Entry points: `main` (experiments from `configs/`, stages in `stages`), `cli`
(`deepfl-iqa score`); `tools` holds the metrics demo and one-off generators.
"""
import os as _os
from importlib import metadata as _metadata

__version__ = "0.1.0"

_YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def _disable_ynn_fusions() -> None:
  """Turns off XLA:CPU's YNN fusions on jaxlib 0.10.x, before JAX starts its backend.

  On jaxlib 0.10.2 a jitted "threshold at a sorted element, then masked sum" graph (the
  block selection of SFF) returns wrong values for some batch elements with these
  fusions on, and correct ones with them off (reproduced in
  tests/test_xla_workaround.py). The flag is only added where that jaxlib knows it, and
  never overrides a user's own XLA_FLAGS setting of it.
  """
  flags = _os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" in flags:
    return
  try:
    major_minor = tuple(int(p) for p in _metadata.version("jaxlib").split(".")[:2])
  except Exception:  # pylint: disable=broad-except
    return
  if major_minor == (0, 10):
    _os.environ["XLA_FLAGS"] = (flags + " " + _YNN_FLAG).strip()


_disable_ynn_fusions()
