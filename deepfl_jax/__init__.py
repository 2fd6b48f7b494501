"""deepfl_jax: DeepFL-IQA (Lin, Hosu, Saupe 2020) and related IQA pretraining in JAX."""
import os as _os

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
    from importlib.metadata import version
    major_minor = tuple(int(p) for p in version("jaxlib").split(".")[:2])
  except Exception:  # pylint: disable=broad-except
    return
  if major_minor == (0, 10):
    _os.environ["XLA_FLAGS"] = (flags + " " + _YNN_FLAG).strip()


_disable_ynn_fusions()
