"""Type 22 (`imnoisequantize`): the device Otsu searches against MATLAB's.

The training stream runs `multithresh`'s Nelder-Mead search on the device
(`otsu.multithresh(host=False)`), by default in locally enabled float64; the host
search (float64 NumPy, `host=True`) gives MATLAB's thresholds exactly
(tests/distortions/test_octave_reference.py). This counts how often and by how much
the device thresholds (float64 default, and the float32 search for backends without
float64) differ from the host's, on the Octave reference inputs (crop and full image,
5 levels each; the host thresholds are checked against MATLAB's there) and on random
crops of the embedded photographs (5 levels each), and how many output pixels change
as a result.

  python experiments/bench_otsu.py [--crops 100] [--size 192,256] [--seed 0]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from deepfl_jax.data import mini_kadid, synthesis  # noqa: E402
from deepfl_jax.distortions import DISTORTIONS, otsu, spatial  # noqa: E402
from deepfl_jax.distortions._common import mapmm  # noqa: E402
from tests.distortions.conftest import KadidRef  # noqa: E402

LEVELS = DISTORTIONS[22].levels


def _octave_inputs():
  root = pathlib.Path("/work/shared/data/kadid_octave_ref")
  if not root.exists():
    return []
  ref = KadidRef(root)
  out = []
  for kind in ("crop", "full"):
    try:
      out.append((f"octave {kind}", ref.input(kind), [m["multithresh_rgb"] for m in
                                                     ref.meta(kind, 22)]))
    except Exception as e:  # pylint: disable=broad-except
      print(f"skipping the Octave {kind} input: {e}")
  return out


def compare(images, matlab=None, search_dtype=jnp.float32):
  """Per (image, level): thresholds (in 8-bit bins) of the host (MATLAB-exact) and
  device searches, and the fraction of output pixels that differ."""
  host = jax.jit(lambda x, n: spatial.quantization(x, n, host=True))
  dev = jax.jit(lambda x, n: spatial.quantization(x, n, host=False,
                                                  search_dtype=search_dtype))
  th_h = jax.jit(lambda x, n: otsu.multithresh(x, n, host=True))
  th_d = jax.jit(lambda x, n: otsu.multithresh(x, n, host=False,
                                               search_dtype=search_dtype))
  rows = []
  for i, img in enumerate(images):
    x = mapmm(jnp.asarray(img, jnp.float32))
    lo, hi = float(jnp.min(x)), float(jnp.max(x))
    for j, n in enumerate(LEVELS):
      n = int(n)
      a = np.asarray(th_h(x, n))[:n]
      b = np.asarray(th_d(x, n))[:n]
      bins_a = np.round((a - lo) / (hi - lo) * 255)
      bins_b = np.round((b - lo) / (hi - lo) * 255)
      if matlab is not None:
        assert np.allclose(a, matlab[i][j], atol=1e-6), (a, matlab[i][j])
      px = float(np.mean(np.asarray(host(x, n)) != np.asarray(dev(x, n))))
      rows.append((int(np.sum(bins_a != bins_b)), float(np.max(np.abs(bins_a - bins_b))),
                   px))
  return rows


def report(name, rows):
  r = np.asarray(rows)
  diff = r[:, 0] > 0
  print(f"{name}: {len(r)} (image, level) searches; thresholds differ in "
        f"{int(diff.sum())} ({100 * diff.mean():.1f}%), {int(r[:, 0].sum())} thresholds "
        f"in all, by at most {r[:, 1].max():.0f} bins; output pixels changed: mean "
        f"{100 * r[:, 2].mean():.3f}%, max {100 * r[:, 2].max():.2f}%", flush=True)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--crops", type=int, default=100)
  p.add_argument("--size", default="192,256")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args()
  size = tuple(int(v) for v in args.size.split(","))
  rng = np.random.default_rng(args.seed)
  photos = [mini_kadid.pristine_image(n, (384, 512)) for n in mini_kadid.PHOTOS]
  crops = [synthesis.random_crop(photos[rng.integers(len(photos))], size, rng) / 255.0
           for _ in range(args.crops)]
  for dt in (jnp.float64, jnp.float32):
    tag = f"device search in {jnp.dtype(dt).name}"
    for name, img, matlab in _octave_inputs():
      report(f"{tag}, {name} (host == MATLAB checked)", compare([img], [matlab], dt))
    report(f"{tag}, {args.crops} random {size[0]}x{size[1]} crops of the embedded "
           "photographs", compare(crops, None, dt))


if __name__ == "__main__":
  main()
