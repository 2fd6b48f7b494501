"""Stage "fr_metrics": the 11 FR proxies on embedded photographs, as a table.

Reads nothing from disk: the pristine images are scikit-image's bundled colour
photographs. Writes `fr_metrics.json` and `fr_metrics.md` to the work directory.
"""
from __future__ import annotations

import os
import time

import jax
import numpy as np
import scipy.ndimage
import scipy.stats

from deepfl_jax import atomic
from deepfl_jax.data import mini_kadid
from deepfl_jax.metrics import fused


def embedded_photos(names, size: tuple[int, int]) -> np.ndarray:
  """scikit-image's bundled photographs (`data.mini_kadid.PHOTOS`) fitted to `size`
  as the mini-KADID fits them: (N, H, W, 3) float32 in [0, 1]."""
  for name in names:
    if name not in mini_kadid.PHOTOS:
      raise ValueError(f"config.images: {name!r} is not one of {mini_kadid.PHOTOS}")
  return np.stack([mini_kadid.pristine_image(n, size) for n in names]
                  ).astype(np.float32) / 255.0


def _degrade(images, kind, level, rng):
  if kind == "white_noise":
    return np.clip(images + rng.normal(0, level, images.shape), 0, 1).astype(np.float32)
  return scipy.ndimage.gaussian_filter(images, (0, level, level, 0)).astype(np.float32)


def run(config, workdir: str) -> dict:
  """Scores every (image, degradation, level); prints and saves the summary table."""
  photos = embedded_photos(config.images, tuple(config.size))
  rng = np.random.default_rng(config.seed)
  rows = []
  seconds = 0.0
  for kind, levels in (("white_noise", config.noise_std),
                       ("gaussian_blur", config.blur_sigma)):
    for li, level in enumerate(levels):
      dist = _degrade(photos, kind, level, rng)
      for start in range(0, len(photos), config.batch_size):
        stop = start + config.batch_size
        ref_b, dist_b = photos[start:stop], dist[start:stop]
        t0 = time.perf_counter()
        scores = jax.device_get(fused.fr_scores(ref_b, dist_b, color_mode=config.color_mode))
        seconds += time.perf_counter() - t0
        for i in range(len(ref_b)):
          rows.append({"image": config.images[start + i], "distortion": kind,
                       "level": li + 1, **{k: float(v[i]) for k, v in scores.items()}})
  names = fused.METRIC_NAMES
  lines = ["| distortion | level | " + " | ".join(names) + " |",
           "|---|---|" + "---|" * len(names)]
  for kind in ("white_noise", "gaussian_blur"):
    for level in range(1, 6):
      sel = [r for r in rows if r["distortion"] == kind and r["level"] == level]
      lines.append(f"| {kind} | {level} | " + " | ".join(
          f"{np.mean([r[n] for r in sel]):.4f}" for n in names) + " |")
  # Rank agreement with severity (sign flipped for lower-is-better metrics).
  srocc = {}
  for n in names:
    sign = 1.0 if fused.HIGHER_IS_BETTER[n] else -1.0
    srocc[n] = float(np.mean([
        scipy.stats.spearmanr([-r["level"] for r in rows
                               if r["distortion"] == kind and r["image"] == im],
                              [sign * r[n] for r in rows
                               if r["distortion"] == kind and r["image"] == im])[0]
        for kind in ("white_noise", "gaussian_blur") for im in config.images]))
  lines.append("| SROCC with severity | (mean per image) | " + " | ".join(
      f"{srocc[n]:.3f}" for n in names) + " |")
  table = "\n".join(lines)
  summary = (f"{len(rows)} image pairs of {config.size[0]}x{config.size[1]} scored by the "
             f"fused 11-metric call in {seconds:.1f} s (compilation included) on "
             f"{jax.devices()[0].platform}.")
  print(table)
  print(summary)
  if atomic.is_writer():
    atomic.write_json(os.path.join(workdir, "fr_metrics.json"),
                      {"rows": rows, "srocc_with_severity": srocc, "summary": summary},
                      indent=1)
    atomic.write_text(os.path.join(workdir, "fr_metrics.md"),
                      table + "\n\n" + summary + "\n")
  return {"rows": rows, "srocc_with_severity": srocc}
