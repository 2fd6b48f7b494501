"""Test statistics of a regressor and how Stage 3 reports them: SROCC, PLCC (raw and
after a logistic fit), KROCC, RMSE per split; mean, sample std and median over splits;
the Markdown table and the scatter plots (Pillow ImageDraw).

Logistic fits: "logistic5" (Sheikh, Sabir, Bovik 2006) and "logistic4" (VQEG FR-TV
Phase I), `metrics.correlation`.
"""
from __future__ import annotations

import math
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from deepfl_jax import atomic
from deepfl_jax.metrics import correlation

METRICS = ("srocc", "plcc", "plcc_fitted", "krocc", "rmse")
METRIC_TITLES = {"srocc": "SROCC", "plcc": "PLCC", "plcc_fitted": "PLCC ({fit})",
                 "krocc": "KROCC", "rmse": "RMSE"}
FIT_FORMULAS = {
    "logistic4": "VQEG 4-parameter logistic (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2",
    "logistic5": ("Sheikh et al. 2006 5-parameter logistic "
                  "b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5"),
}


def evaluate(pred, target, plcc_fit: str = "logistic5") -> dict[str, float]:
  """Test statistics: SROCC, PLCC raw, PLCC after `plcc_fit`, KROCC, RMSE (raw)."""
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  try:
    fitted = correlation.plcc(pred, target, fit=plcc_fit)
  except RuntimeError:  # the logistic fit did not converge
    fitted = float("nan")
  return {"srocc": correlation.srocc(pred, target),
          "plcc": correlation.plcc(pred, target),
          "plcc_fitted": fitted,
          "krocc": correlation.krocc(pred, target),
          "rmse": float(np.sqrt(np.mean((pred - target) ** 2)))}


def summarize(values: Sequence[float]) -> dict[str, float]:
  """mean, sample std (ddof=1; 0 for one value), median, n of finite values."""
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  if v.size == 0:
    return {"mean": float("nan"), "std": float("nan"), "median": float("nan"), "n": 0}
  return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
          "median": float(np.median(v)), "n": int(v.size)}


# --------------------------------------------------------------------- scatter plot


def _nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
  span = max(hi - lo, 1e-12)
  raw = span / n
  mag = 10 ** math.floor(math.log10(raw))
  step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
  return np.arange(math.ceil(lo / step) * step, hi + 1e-9 * span, step)


def scatter_png(path, pred, target, *, title: str = "", xlabel: str = "human score",
                ylabel: str = "predicted score", curve=None, size=(640, 640),
                points_label: str = "images", curve_label: str = "fitted logistic"
                ) -> list[str]:
  """Scatter plot of `pred` (y axis) against `target` (x axis) as a PNG, drawn with
  Pillow's ImageDraw, with a legend (top left): the identity line, `curve` (optional
  (xs, ys) line, e.g. the fitted logistic mapping predictions to the human scale, drawn
  with axes swapped) and the points. Returns the legend's labels, in order."""
  pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
  w, h = size
  left, right, top, bottom = 70, 20, 40, 60
  img = Image.new("RGB", size, "white")
  d = ImageDraw.Draw(img, "RGBA")

  def limits(a):
    lo, hi = float(np.min(a)), float(np.max(a))
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad

  (x0, x1), (y0, y1) = limits(target), limits(pred)
  px = lambda x: left + (np.asarray(x) - x0) / (x1 - x0) * (w - left - right)
  py = lambda y: h - bottom - (np.asarray(y) - y0) / (y1 - y0) * (h - top - bottom)
  d.rectangle([left, top, w - right, h - bottom], outline="black")
  for t in _nice_ticks(x0, x1):
    x = float(px(t))
    d.line([x, h - bottom, x, h - bottom + 5], fill="black")
    d.line([x, top, x, h - bottom], fill=(0, 0, 0, 25))
    d.text((x, h - bottom + 8), f"{t:g}", fill="black", anchor="ma")
  for t in _nice_ticks(y0, y1):
    y = float(py(t))
    d.line([left - 5, y, left, y], fill="black")
    d.line([left, y, w - right, y], fill=(0, 0, 0, 25))
    d.text((left - 8, y), f"{t:g}", fill="black", anchor="rm")
  grey, red, blue = (120, 120, 120, 255), (214, 39, 40, 255), (31, 119, 180, 140)
  legend = []  # (label, "line" | "dot", colour)
  # Identity line where the axes overlap (a perfect predictor lies on it).
  lo, hi = max(x0, y0), min(x1, y1)
  if hi > lo:
    d.line([float(px(lo)), float(py(lo)), float(px(hi)), float(py(hi))],
           fill=grey, width=1)
    legend.append(("identity (predicted = human)", "line", grey))
  r = 3 if len(pred) < 2000 else 2
  for x, y in zip(px(target), py(pred)):
    d.ellipse([x - r, y - r, x + r, y + r], fill=blue)
  if curve is not None:
    cx, cy = (np.asarray(c, np.float64) for c in curve)
    ok = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
    pts = list(zip(px(cx[ok]).tolist(), py(cy[ok]).tolist()))
    if len(pts) > 1:
      d.line(pts, fill=red, width=2)
      legend.append((curve_label, "line", red))
  legend.append((points_label, "dot", blue))
  # The legend goes in the corner of the axes that hides the fewest points.
  lw, lh = _legend_size(d, legend)
  xs, ys = px(target), py(pred)
  corners = [(left + 8, top + 8), (w - right - 8 - lw, top + 8),
             (left + 8, h - bottom - 8 - lh), (w - right - 8 - lw, h - bottom - 8 - lh)]
  hidden = [int(np.sum((xs >= cx) & (xs <= cx + lw) & (ys >= cy) & (ys <= cy + lh)))
            for cx, cy in corners]
  _draw_legend(d, legend, *corners[int(np.argmin(hidden))])
  d.text((w / 2, 12), title, fill="black", anchor="ma")
  d.text(((left + w - right) / 2, h - 22), xlabel, fill="black", anchor="ma")
  # Pillow draws no rotated text; the y label goes in the corner above the axis.
  d.text((6, top - 18), ylabel, fill="black", anchor="la")
  with atomic.replacing(path, pathlib.Path(path).suffix) as tmp:
    img.save(tmp)
  return [label for label, _, _ in legend]


_LEGEND_ROW = 16


def _legend_size(d, entries) -> tuple[float, float]:
  return (34 + max(d.textlength(label) for label, _, _ in entries),
          6 + _LEGEND_ROW * len(entries))


def _draw_legend(d, entries, x: float, y: float) -> None:
  """A white box of (label, "line" | "dot", colour) rows with its top left at (x, y)."""
  width, height = _legend_size(d, entries)
  row = _LEGEND_ROW
  d.rectangle([x, y, x + width, y + height], fill=(255, 255, 255, 230),
              outline=(0, 0, 0, 90))
  for i, (label, mark, colour) in enumerate(entries):
    cy = y + 3 + row * i + row / 2
    if mark == "line":
      d.line([x + 6, cy, x + 24, cy], fill=colour, width=2)
    else:
      d.ellipse([x + 12, cy - 3, x + 18, cy + 3], fill=colour)
    d.text((x + 30, cy), label, fill="black", anchor="lm")


def _fmt_cell(s: Mapping[str, float]) -> str:
  if not s["n"]:
    return "n/a"
  return f"{s['mean']:.4f} ± {s['std']:.4f} (median {s['median']:.4f})"


def markdown_table(results: Mapping[str, Any]) -> str:
  """The Markdown table of `results.json`'s summaries."""
  fit = results["plcc_fit"]
  cols = ["srocc", "plcc", "plcc_fitted", "krocc"]
  head = ["features", "model"] + [METRIC_TITLES[m].format(fit=fit) for m in cols]
  lines = [f"Stage 3 on {results['dataset']} ({results['num_records']} images), "
           f"{results['num_repeats']} {results['split_kind']} split(s) "
           f"{'/'.join(str(round(100 * f)) for f in results['fractions'])}; test-part "
           "statistics as mean ± sample std (median) over splits. PLCC "
           f"({fit}): after fitting the {FIT_FORMULAS[fit]}.", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for run in results["runs"]:
    cells = [run["features"], run["model"]] + [_fmt_cell(run["summary"][m]) for m in cols]
    lines.append("| " + " | ".join(cells) + " |")
  if results.get("final"):
    lines += ["", f"Scoring model of `deepfl-iqa score`: {results['final']['fit']}."]
  if results.get("label_note"):
    lines += ["", f"Note: {results['label_note']}."]
  return "\n".join(lines) + "\n"


def pooled_scatter(path, parts: Sequence[tuple[np.ndarray, np.ndarray]],
                   summary: Mapping[str, Mapping[str, float]], *, features: str,
                   model: str, plcc_fit: str, score_name: str = "score") -> None:
  """The scatter PNG of one (feature set, model): the test parts of all repeats
  ((pred, human) pairs; an image is in several), one logistic fitted to them all."""
  pred, target = (np.concatenate(a) for a in zip(*parts))
  curve = None
  try:
    xs = np.linspace(pred.min(), pred.max(), 200)
    _, params = correlation.logistic_fit(pred, target, plcc_fit)
    fn = correlation.logistic4 if plcc_fit == "logistic4" else correlation.logistic5
    curve = (fn(xs, *params), xs)  # human = f(pred): x axis is human
  except (RuntimeError, ValueError):
    pass
  n = len(parts)
  scatter_png(path, pred, target, curve=curve,
              title=(f"{features} features, {model}: SROCC {summary['srocc']['mean']:.3f}, "
                     f"PLCC {summary['plcc']['mean']:.3f} (mean of {n} repeats)"),
              xlabel=f"human {score_name}", ylabel="predicted",
              points_label=(f"test images of all {n} repeats (n={len(pred)})" if n > 1
                            else f"test images (n={len(pred)})"),
              curve_label=f"fitted {plcc_fit} (pooled)")
