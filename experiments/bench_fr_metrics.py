"""Images per second of each FR metric and of the fused 11-metric call, side by side
with piq (PyTorch, CPU) in the same run.

  python experiments/bench_fr_metrics.py [--batch 4] [--reps 3] [--size 384 512]

Needs `pip install -e ".[peers]"` (piq, torch==2.13.0 CPU); piq imports torchvision only
for LPIPS/DISTS, so a stub is installed when torchvision is absent. Both sides get the
same float32 batch of real photographs (scikit-image) and white-noise distortions;
JAX times exclude compilation (one warm-up call), piq times exclude a warm-up call too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax import metrics
from deepfl_jax.tools.fr_metrics_demo import embedded_photos
from deepfl_jax.metrics import _inputs, fused
from deepfl_jax.metrics.sff import load_w


class _Stub(types.ModuleType):
  """Stands in for torchvision: attribute look-ups give sub-stubs, capitalised names
  give empty nn.Module subclasses (piq subclasses torchvision's Inception blocks at
  import time but uses them only for FID/LPIPS/DISTS, which are not benchmarked)."""

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    if name[:1].isupper():
      import torch
      return type(name, (torch.nn.Module,), {})
    sub = _Stub(f"{self.__name__}.{name}")
    sys.modules[sub.__name__] = sub
    setattr(self, name, sub)
    return sub


def _import_piq():
  try:
    import torchvision  # noqa: F401
  except ImportError:
    stub = _Stub("torchvision")
    sys.modules["torchvision"] = stub
    for sub in ("models", "models.utils", "models.inception"):
      mod = _Stub(f"torchvision.{sub}")
      sys.modules[mod.__name__] = mod
    stub.models = sys.modules["torchvision.models"]
    stub.models.utils = sys.modules["torchvision.models.utils"]
    stub.models.inception = sys.modules["torchvision.models.inception"]
  import piq
  import torch
  return piq, torch


# ours -> piq call (data_range 1, float32 NCHW); None: piq has no such metric.
def _piq_calls(piq):
  return {
      "ssim": lambda x, y: piq.ssim(x, y, data_range=1.0, reduction="none"),
      "ms_ssim": lambda x, y: piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none"),
      "iw_ssim": lambda x, y: piq.information_weighted_ssim(x, y, data_range=1.0,
                                                            reduction="none"),
      "mdsi": lambda x, y: piq.mdsi(x, y, data_range=1.0, reduction="none"),
      "vsi": lambda x, y: piq.vsi(x, y, data_range=1.0, reduction="none"),
      "fsimc": lambda x, y: piq.fsim(x, y, data_range=1.0, chromatic=True,
                                     reduction="none"),
      "gmsd": lambda x, y: piq.gmsd(x, y, data_range=1.0, reduction="none"),
      "sff": None, "scqi_proxy": None, "add_gsim_proxy": None,
      "sr_sim": lambda x, y: piq.srsim(x, y, data_range=1.0, reduction="none"),
  }


def _time(fn, reps: int) -> float:
  fn()                                  # warm-up: compilation / allocator
  t0 = time.perf_counter()
  for _ in range(reps):
    fn()
  return (time.perf_counter() - t0) / reps


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--size", type=int, nargs=2, default=(384, 512))
  parser.add_argument("--json", default=None, help="also write the figures here")
  args = parser.parse_args()

  names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
  ref = embedded_photos((names * args.batch)[:args.batch], tuple(args.size))
  dist = np.clip(ref + np.random.default_rng(0).normal(0, 0.05, ref.shape), 0,
                 1).astype(np.float32)
  jref, jdist = jnp.asarray(ref), jnp.asarray(dist)

  piq, torch = _import_piq()
  torch.set_num_threads(os.cpu_count())
  tref = torch.from_numpy(ref).permute(0, 3, 1, 2).contiguous()
  tdist = torch.from_numpy(dist).permute(0, 3, 1, 2).contiguous()
  piq_calls = _piq_calls(piq)

  rows = []
  for name in fused.METRIC_NAMES:
    fn = jax.jit(getattr(metrics, name))
    t_jax = _time(lambda: fn(jref, jdist).block_until_ready(), args.reps)
    t_piq = None
    if piq_calls[name] is not None:
      with torch.no_grad():
        t_piq = _time(lambda: piq_calls[name](tref, tdist), args.reps)
    rows.append((name, t_jax, t_piq))

  x, y = _inputs.prepare_pair(jref, jdist, "bench")
  w = jnp.asarray(load_w(None), x.dtype)
  t_fused = _time(lambda: jax.block_until_ready(fused.fr_scores_core(x, y, w)), args.reps)
  t_piq_sum = sum(t for _, _, t in rows if t is not None)
  t_jax_sum8 = sum(tj for _, tj, tp in rows if tp is not None)

  b = args.batch
  print(f"# FR metrics, {b} x {args.size[0]}x{args.size[1]} RGB float32, "
        f"{platform.processor() or platform.machine()}, jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, piq {piq.__version__} / torch {torch.__version__}")
  print("| metric | deepfl_jax img/s | piq img/s | ratio (ours / piq) |")
  print("|---|---|---|---|")
  out = {}
  for name, tj, tp in rows:
    ratio = f"{tp / tj:.2f}" if tp else "n/a"
    print(f"| {name} | {b / tj:.2f} | {b / tp:.2f} | {ratio} |" if tp else
          f"| {name} | {b / tj:.2f} | (not in piq) | n/a |")
    out[name] = {"jax_img_s": b / tj, "piq_img_s": b / tp if tp else None}
  print(f"| fused 11 metrics (one jit) | {b / t_fused:.2f} | piq's 8 added: "
        f"{b / t_piq_sum:.2f} | {t_piq_sum / t_fused:.2f} |")
  print(f"| our 8 separately, added | {b / t_jax_sum8:.2f} | {b / t_piq_sum:.2f} | "
        f"{t_piq_sum / t_jax_sum8:.2f} |")
  out["fused"] = {"jax_img_s": b / t_fused, "piq8_img_s": b / t_piq_sum}
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
