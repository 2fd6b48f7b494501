"""The XLA:CPU YNN-fusion miscompilation that deepfl_jax/__init__.py works around.

Runs in a subprocess so it gets a fresh backend: with the package imported first, the
jitted selection equals NumPy (on jaxlib 0.10.2 without the flag it was off by 3%).
"""
import os
import subprocess
import sys


_PROGRAM = r"""
import sys
if sys.argv[1] == "package":
  import deepfl_jax  # sets XLA_FLAGS before the backend starts
import numpy as np, jax, jax.numpy as jnp
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (3, 1, 64, 80, 3)).astype(np.float32)
y = np.clip(x + rng.normal(0, 12, x.shape), 0, 255).astype(np.float32)
def means(a):
  return jnp.mean(a[:, :, :56, :72].reshape(3, 1, 7, 8, 9, 8, 3), axis=(3, 5, 6)).reshape(3, 1, 63)
def f(x, y):
  mr, md = means(x), means(y)
  dm = jnp.abs(mr - md)
  sel = dm >= jnp.sort(dm, axis=-1)[..., 31:32]
  return jnp.sum(jnp.where(sel, mr, 0.0), axis=-1).ravel()
def means64(a):
  a = a[:, :, :56, :72].reshape(3, 1, 7, 8, 9, 8, 3).astype(np.float64)
  return a.mean(axis=(3, 5, 6)).reshape(3, 63)
mr, md = means64(x), means64(y)
dm = np.abs(mr - md)
want = np.where(dm >= np.sort(dm, axis=-1)[:, 31:32], mr, 0).sum(-1)
print(float(np.max(np.abs(np.asarray(jax.jit(f)(x, y)) - want) / want)))
"""


def _run(mode):
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run([sys.executable, "-c", _PROGRAM, mode], env=env, check=True,
                       capture_output=True, text=True, timeout=300)
  return float(out.stdout.strip().splitlines()[-1])


def test_jitted_selection_is_correct_with_the_package_loaded():
  assert _run("package") < 1e-5

