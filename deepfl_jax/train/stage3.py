"""Stage 3 of DeepFL-IQA: the MOS regressor on cached MLSP features, evaluated over
repeated splits (Lin, Hosu, Saupe 2020; spec pipeline.md, Stage 3).

Per split: `models.MOSRegressor` (Dense 2048 -> BN -> Dropout 0.25 -> 1024 -> BN ->
0.25 -> 256 -> BN -> 0.5 -> 1) trained with MSE on the raw MOS/DMOS, Adam (lr 1e-3,
Keras' epsilon 1e-7), batch 128 reshuffled every epoch (the last batch may be smaller,
as Keras' `fit`), for `epochs` epochs; the weights of the epoch with the lowest
validation MSE are kept (Keras' `ModelCheckpoint(save_best_only=True)`) and scored on
the test part. Optionally a ridge-regression probe on the same features (closed form,
its penalty chosen on the validation part) is reported beside it.

Every feature set of Stage 2 (e.g. Stage 1 weights and random weights) goes through the
same splits, so the table compares them side by side.

Outputs in `<workdir>/stage3/`:
  results.json        per feature set and model: each repeat's test SROCC, PLCC (raw),
                      PLCC after the logistic fit named by `plcc_fit`, KROCC, RMSE,
                      best epoch, validation-loss history; mean, std (sample, ddof=1),
                      median over repeats
  results.md          the Markdown table of those statistics
  scatter_<features>_<model>.png   predicted vs human score, the test parts of all
                      repeats, with the identity line, a logistic fitted to them and a
                      legend (Pillow ImageDraw)
  regressor.msgpack, model.json    the regressor `deepfl-iqa score` uses (primary
                      feature set; `export`: the final fit on all records, or one
                      repeat's); model.json says which ("fit")

Config section `config.stage3` (defaults in `default_config()`):
  epochs (30), batch_size (128), learning_rate (1e-3), adam_eps (1e-7)
  hidden ((2048, 1024, 256)), dropout ((0.25, 0.25, 0.5)): the head's layers
  num_repeats (5), seed0 (0): splits with seeds seed0 .. seed0 + N - 1 (also the seeds
    of initialisation, shuffling and dropout of each repeat)
  split_kind ("" = the database's own: content / official / random), fractions
    ((0.6, 0.2, 0.2))
  plcc_fit ("logistic5" (Sheikh et al. 2006) | "logistic4" (VQEG))
  feature_sets (() = every set Stage 2 wrote, primary first)
  ridge (False): add the ridge probe; ridge_alphas: penalties relative to the mean
    squared singular value of the standardised training features
  export ("final"): which regressor `deepfl-iqa score` uses: "final" = one fit on ALL
    records (every evaluation content) for the median best epoch of the splits;
    "repeat" = the regressor of repeat `export_repeat` (0), fit on its training part
  progress (True)
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Mapping, Sequence

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from deepfl_jax import atomic
from deepfl_jax.data import splits as splits_lib
from deepfl_jax.metrics import correlation
from deepfl_jax.models.heads import MOSRegressor
from deepfl_jax.train import feature_cache, stage2
from deepfl_jax.train.progress import Progress
from deepfl_jax.train.optim import make_optimizer
from deepfl_jax.train.state import TrainState

STAGE_DIR = "stage3"
METRICS = ("srocc", "plcc", "plcc_fitted", "krocc", "rmse")
METRIC_TITLES = {"srocc": "SROCC", "plcc": "PLCC", "plcc_fitted": "PLCC ({fit})",
                 "krocc": "KROCC", "rmse": "RMSE"}
FIT_FORMULAS = {
    "logistic4": "VQEG 4-parameter logistic (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2",
    "logistic5": ("Sheikh et al. 2006 5-parameter logistic "
                  "b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5"),
}
_PREDICT_CHUNK = 256


def default_config() -> ml_collections.ConfigDict:
  """`config.stage3` with its defaults (see the module docstring)."""
  c = ml_collections.ConfigDict()
  c.epochs = 30
  c.batch_size = 128
  c.learning_rate = 1e-3
  c.adam_eps = 1e-7
  c.hidden = (2048, 1024, 256)
  c.dropout = (0.25, 0.25, 0.5)
  c.num_repeats = 5
  c.seed0 = 0
  c.split_kind = ""
  c.fractions = (0.6, 0.2, 0.2)
  c.plcc_fit = "logistic5"
  c.feature_sets = ()
  c.ridge = False
  c.ridge_alphas = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
  c.export = "final"
  c.export_repeat = 0
  c.progress = True
  return c


def _section(config) -> ml_collections.ConfigDict:
  return stage2._section(config, "stage3", default_config())  # pylint: disable=protected-access


# ------------------------------------------------------------------------ regressor


@functools.lru_cache(maxsize=8)
def _functions(hidden: tuple, dropout: tuple, learning_rate: float, eps: float):
  """(model, optimizer, jitted train step, jitted predict), shared by every repeat."""
  model = MOSRegressor(hidden=hidden, dropout=dropout)
  tx = make_optimizer(name="adam", learning_rate=learning_rate, eps=eps)

  def loss_fn(params, batch_stats, x, y, rng):
    pred, upd = model.apply({"params": params, "batch_stats": batch_stats}, x,
                            train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    return jnp.mean(jnp.square(pred[:, 0] - y)), upd["batch_stats"]

  @functools.partial(jax.jit, donate_argnums=(0,))
  def train_step(state: TrainState, x, y):
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, x, y, state.step_rng())
    return state.apply_gradients(tx, grads, batch_stats=stats), loss

  @jax.jit
  def predict(variables, x):
    return model.apply(variables, x, train=False)[:, 0]

  return model, tx, train_step, predict


def predict(variables, features: np.ndarray, *, hidden: Sequence[int] = (2048, 1024, 256),
            dropout: Sequence[float] = (0.25, 0.25, 0.5)) -> np.ndarray:
  """Regressor outputs (N,) float64 for features (N, ...) (host or device arrays;
  inference mode), in chunks padded to one fixed size (one compilation for any N)."""
  *_, fn = _functions(tuple(int(h) for h in hidden), tuple(float(d) for d in dropout),
                      1e-3, 1e-7)
  variables = jax.device_put(variables)  # once, not with every chunk
  n = len(features)
  out = np.empty(n, np.float64)
  for s in range(0, n, _PREDICT_CHUNK):
    x = jnp.asarray(features[s:s + _PREDICT_CHUNK], jnp.float32)
    m = len(x)
    if m < _PREDICT_CHUNK:  # pad: every part size reuses the full-chunk program
      x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (_PREDICT_CHUNK - m,) + x.shape[1:])])
    out[s:s + m] = np.asarray(fn(variables, x))[:m]
  return out


def init_regressor(num_features_shape: Sequence[int], *, hidden=(2048, 1024, 256),
                   dropout=(0.25, 0.25, 0.5), seed: int = 0) -> dict:
  """Fresh regressor variables for per-example features of shape `num_features_shape`
  (host-side He-normal init, `models.host_init`)."""
  from deepfl_jax.models.host_init import host_init  # pylint: disable=import-outside-toplevel
  model = MOSRegressor(hidden=tuple(hidden), dropout=tuple(dropout))
  v = host_init(model, jnp.zeros((2, *num_features_shape), jnp.float32), seed=seed)
  return {"params": v["params"], "batch_stats": v["batch_stats"]}


@dataclasses.dataclass
class RegressorFit:
  """Result of `train_regressor`: the best-validation variables and the history."""
  variables: dict
  initial_variables: dict
  best_epoch: int                  # 1-based epoch whose weights were kept
  best_val_loss: float
  train_loss: list[float]          # mean training MSE of each epoch
  val_loss: list[float]            # validation MSE after each epoch


def _mse(variables, x, y, hidden, dropout) -> float:
  return float(np.mean(np.square(predict(variables, x, hidden=hidden, dropout=dropout)
                                 - np.asarray(y, np.float64))))


def train_regressor(x_train, y_train, x_val, y_val, *, epochs: int = 30,
                    batch_size: int = 128, learning_rate: float = 1e-3,
                    adam_eps: float = 1e-7, hidden=(2048, 1024, 256),
                    dropout=(0.25, 0.25, 0.5), seed: int = 0,
                    on_epoch: Callable[[int, float], None] | None = None,
                    keep_best: bool = True) -> RegressorFit:
  """Trains `MOSRegressor` with MSE on the raw scores; keeps the best-validation epoch
  (or, with keep_best=False, the last: the final fit on all data, whose epoch count
  the splits chose).

  Args:
    x_train, x_val: features (n, ...) float32; y_train, y_val: scores (n,).
    seed: initialisation, per-epoch shuffling and dropout.
    on_epoch: called with (epoch, validation MSE) after each epoch.
  """
  hidden, dropout = tuple(int(h) for h in hidden), tuple(float(d) for d in dropout)
  if epochs < 1:
    raise ValueError(f"config.stage3.epochs must be >= 1, got {epochs}")
  if batch_size < 1:
    raise ValueError(f"config.stage3.batch_size must be >= 1, got {batch_size}")
  if len(x_train) < 2 or len(x_val) < 1:
    raise ValueError(f"too few examples to train ({len(x_train)}) / validate "
                     f"({len(x_val)}) the regressor")
  _, tx, step, _ = _functions(hidden, dropout, float(learning_rate), float(adam_eps))
  # Features and scores go to the device once per split; batches are gathered there.
  x_train = jnp.asarray(x_train, jnp.float32)
  y_train = jnp.asarray(y_train, jnp.float32).reshape(-1)
  x_val = jnp.asarray(x_val, jnp.float32)
  init = init_regressor(x_train.shape[1:], hidden=hidden, dropout=dropout, seed=seed)
  state = TrainState.create(params=jax.tree.map(jnp.array, init["params"]),
                            batch_stats=jax.tree.map(jnp.array, init["batch_stats"]),
                            tx=tx, rng=jax.random.PRNGKey(seed))
  rng = np.random.default_rng([seed, 0x57A6E3])
  n = len(x_train)
  best, best_loss, best_epoch = None, math.inf, 0
  train_hist, val_hist = [], []
  for epoch in range(1, epochs + 1):
    perm = rng.permutation(n)
    losses = []
    for s in range(0, n, batch_size):
      idx = perm[s:s + batch_size]
      if len(idx) < 2:  # a batch of one has no batch statistics; Keras would
        continue        # normalise it to the BN offset, we skip it instead
      state, loss = step(state, x_train[idx], y_train[idx])
      losses.append((loss, len(idx)))
    sizes = np.asarray([k for _, k in losses], np.float64)
    epoch_losses = np.asarray(jnp.stack([l for l, _ in losses])) if losses else sizes
    train_hist.append(float(np.sum(epoch_losses * sizes) / max(sizes.sum(), 1)))
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    val = _mse(variables, x_val, y_val, hidden, dropout)
    val_hist.append(val)
    if keep_best and val < best_loss:  # strict: ties keep the earlier epoch, as Keras
      best_loss, best_epoch = val, epoch
      best = jax.tree.map(jnp.copy, variables)  # a copy: the state is donated
    if on_epoch is not None:
      on_epoch(epoch, val)
  if not keep_best:
    best, best_loss, best_epoch = variables, val_hist[-1], epochs
  if best is None:  # every validation loss was NaN
    best, best_epoch = variables, epochs
  return RegressorFit(jax.tree.map(np.asarray, best), init, best_epoch, float(best_loss),
                      train_hist, val_hist)


# ----------------------------------------------------------------------------- ridge


def ridge_probe(x_train, y_train, x_val, y_val, x_test,
                alphas: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
                ) -> tuple[np.ndarray, float]:
  """Ridge regression on standardised features (closed form via the SVD of the
  training features), the penalty picked by validation MSE among `alphas` times the
  mean squared singular value. Returns (test predictions (n_test,), chosen alpha)."""
  flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1)
  xt, xv, xs = flat(x_train), flat(x_val), flat(x_test)
  mu, sd = xt.mean(0), xt.std(0)
  sd = np.where(sd > 1e-12, sd, 1.0)  # constant features stay zero
  z = lambda a: (a - mu) / sd
  y = np.asarray(y_train, np.float64)
  ym = y.mean()
  u, s, vt = np.linalg.svd(z(xt), full_matrices=False)
  uty = u.T @ (y - ym)
  scale = float(np.mean(s * s)) if s.size else 1.0
  zv, yv = z(xv), np.asarray(y_val, np.float64)
  best = (math.inf, None, None)
  for a in alphas:
    w = vt.T @ (s / (s * s + a * scale) * uty)
    err = float(np.mean((zv @ w + ym - yv) ** 2))
    if err < best[0]:
      best = (err, a, w)
  _, alpha, w = best
  return z(xs) @ w + ym, float(alpha)


# ------------------------------------------------------------------------ evaluation


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
  from PIL import Image, ImageDraw  # pylint: disable=import-outside-toplevel
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


# ----------------------------------------------------------------------------- run


def _split_kind(c, fs: feature_cache.FeatureSet) -> str:
  kind = c.split_kind or fs.metadata.get("split_kind", "")
  if kind not in ("content", "official", "random"):
    raise ValueError(f"config.stage3.split_kind: {kind!r} is not content | official | "
                     "random (and the database does not name one)")
  return kind


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


def _save_regressor(out: pathlib.Path, fit: RegressorFit, fs: feature_cache.FeatureSet,
                    workdir, c, repeat: int | None, described: str) -> None:
  atomic.write_bytes(out / "regressor.msgpack", flax.serialization.msgpack_serialize(
      jax.tree.map(np.asarray, fit.variables)))
  rel = os.path.relpath(fs.path, workdir)
  atomic.write_json(out / "model.json", {
      "feature_set": rel, "features": fs.label, "hidden": [int(h) for h in c.hidden],
      "dropout": [float(d) for d in c.dropout], "fit": described,
      "repeat": None if repeat is None else int(repeat),
      "best_epoch": fit.best_epoch, "best_val_loss": fit.best_val_loss,
      "score_name": fs.metadata.get("score_name", "score"),
      "higher_is_better": fs.metadata.get("higher_is_better", True),
      "input_scale": fs.info["identity"]["input_scale"],
      "kind": fs.info["identity"]["kind"]}, indent=1)


def _fit_final(feature_sets, runs, y, index, c, out: pathlib.Path, workdir,
               is_main: bool) -> dict:
  """The scoring regressor: the primary feature set's regressor fit on ALL records
  (every evaluation content) for the median best epoch of the repeated splits (no
  data is left to choose an epoch), exported for `deepfl-iqa score`."""
  label, fs = next(iter(feature_sets.items()))
  run = next(r for r in runs if r["features"] == label and r["model"] == "regressor")
  epochs = max(1, int(round(float(np.median([r["best_epoch"] for r in run["repeats"]])))))
  feats = np.asarray(fs.features, np.float32)
  fit = train_regressor(feats, y, feats, y, epochs=epochs, batch_size=int(c.batch_size),
                        learning_rate=float(c.learning_rate), adam_eps=float(c.adam_eps),
                        hidden=c.hidden, dropout=c.dropout, seed=int(c.seed0),
                        keep_best=False)
  contents = sorted(set(map(str, index["content"]))) if "content" in index else []
  described = (f"final: all {len(y)} images" +
               (f" ({len(contents)} contents)" if contents else "") +
               f", {epochs} epochs (median best epoch over {len(run['repeats'])} splits)")
  if is_main:
    _save_regressor(out, fit, fs, workdir, c, None, described)
  return {"features": label, "epochs": epochs, "num_records": int(len(y)),
          "contents": contents, "fit": described, "train_mse": fit.train_loss[-1]}


def load_regressor(workdir) -> tuple[dict, dict]:
  """(variables, model.json) of the exported regressor of a work directory."""
  out = pathlib.Path(workdir) / STAGE_DIR
  meta_path = out / "model.json"
  if not meta_path.is_file():
    raise FileNotFoundError(f"{meta_path} is missing: the run in {workdir} has no "
                            "trained regressor; run Stage 3 (after Stages 1 and 2)")
  meta = json.loads(meta_path.read_text())
  variables = flax.serialization.msgpack_restore((out / "regressor.msgpack").read_bytes())
  return variables, meta


def run_stage3(config, workdir, *, feature_sets: Mapping[str, feature_cache.FeatureSet] | None
               = None) -> dict[str, Any]:
  """Trains and evaluates the regressor on every feature set over repeated splits;
  writes results.json, results.md, scatter PNGs and the exported regressor.

  `feature_sets` ({label: FeatureSet}, first = primary) defaults to what Stage 2
  recorded in the work directory. Returns the results dict (as in results.json).
  """
  c = _section(config)
  if c.plcc_fit not in FIT_FORMULAS:
    raise ValueError(f"config.stage3.plcc_fit: {c.plcc_fit!r} is not one of "
                     f"{sorted(FIT_FORMULAS)}")
  if feature_sets is None:
    primary, paths = feature_cache.feature_sets(workdir)
    labels = list(c.feature_sets) or [primary] + [k for k in paths if k != primary]
    unknown = [l for l in labels if l not in paths]
    if unknown:
      raise ValueError(f"config.stage3.feature_sets: {unknown} not extracted by Stage 2 "
                       f"(have {sorted(paths)})")
    feature_sets = {l: feature_cache.load_feature_set(paths[l]) for l in labels}
  feature_sets = dict(feature_sets)
  if not feature_sets:
    raise ValueError("no feature sets to evaluate")
  first = next(iter(feature_sets.values()))
  for fs in feature_sets.values():
    if list(fs.columns["name"]) != list(first.columns["name"]):
      raise ValueError(f"feature sets {first.label} and {fs.label} cover different "
                       "images; rerun Stage 2")
  kind = _split_kind(c, first)
  index = {k: np.asarray(v) for k, v in first.columns.items()}
  if kind == "content" and "content" not in index:
    raise ValueError("split_kind 'content' needs a 'content' column in the features' "
                     "index")
  reps = splits_lib.repeated_splits(index, kind, int(c.num_repeats), int(c.seed0),
                                    tuple(c.fractions))
  y = np.asarray(first.columns["score"], np.float64)
  if c.export not in ("final", "repeat"):
    raise ValueError(f"config.stage3.export: {c.export!r} is not 'final' or 'repeat'")
  if not 0 <= int(c.export_repeat) < len(reps):
    raise ValueError(f"config.stage3.export_repeat={c.export_repeat} is not a repeat "
                     f"index (0..{len(reps) - 1})")
  out = pathlib.Path(workdir) / STAGE_DIR
  is_main = jax.process_index() == 0
  if is_main:
    out.mkdir(parents=True, exist_ok=True)
  models = ["regressor"] + (["ridge"] if c.ridge else [])
  total = len(feature_sets) * len(reps) * int(c.epochs)
  final = None
  bar = Progress(total, desc="stage3 regressor", enabled=bool(c.progress) and is_main,
                 unit="epochs")
  epochs_done = [0]

  def on_epoch(epoch, val):
    epochs_done[0] += 1
    # One line per repeat when stderr is not a terminal (CI logs).
    bar.update(epochs_done[0], {"loss": val}, force=epoch == int(c.epochs))

  runs = []
  t0 = time.perf_counter()
  try:
    for label, fs in feature_sets.items():
      feats = np.asarray(fs.features, np.float32)  # read the memory map once
      per_model = {m: [] for m in models}
      scatter = {}
      for r, parts in enumerate(reps):
        tr, va, te = parts["train"], parts["validation"], parts["test"]
        if min(len(tr), len(va), len(te)) < 3:
          raise ValueError(f"split {r}: parts of {len(tr)}/{len(va)}/{len(te)} images "
                           "are too small (each needs >= 3)")
        seed = int(c.seed0) + r
        xtr, xva, xte = feats[tr], feats[va], feats[te]
        fit = train_regressor(xtr, y[tr], xva, y[va], epochs=int(c.epochs),
                              batch_size=int(c.batch_size),
                              learning_rate=float(c.learning_rate),
                              adam_eps=float(c.adam_eps), hidden=c.hidden,
                              dropout=c.dropout, seed=seed, on_epoch=on_epoch)
        pred = predict(fit.variables, xte, hidden=c.hidden, dropout=c.dropout)
        stats = evaluate(pred, y[te], c.plcc_fit)
        per_model["regressor"].append(dict(
            stats, repeat=r, seed=seed, n_train=len(tr), n_val=len(va), n_test=len(te),
            best_epoch=fit.best_epoch, best_val_loss=fit.best_val_loss,
            val_loss=fit.val_loss, train_loss=fit.train_loss))
        scatter.setdefault("regressor", []).append((pred, y[te]))
        if (is_main and c.export == "repeat" and r == int(c.export_repeat)
            and label == next(iter(feature_sets))):
          _save_regressor(out, fit, fs, workdir, c, r,
                          f"repeat {r}: trained on its {len(tr)} training images, "
                          f"best validation epoch {fit.best_epoch}")
        if c.ridge:
          rp, alpha = ridge_probe(xtr, y[tr], xva, y[va], xte,
                                  tuple(c.ridge_alphas))
          per_model["ridge"].append(dict(evaluate(rp, y[te], c.plcc_fit), repeat=r,
                                         seed=seed, alpha=alpha, n_train=len(tr),
                                         n_val=len(va), n_test=len(te)))
          scatter.setdefault("ridge", []).append((rp, y[te]))
      for m in models:
        summary = {k: summarize([x[k] for x in per_model[m]]) for k in METRICS}
        runs.append({"features": label, "model": m, "feature_dir": fs.path.name,
                     "weights": fs.info.get("weights", {}), "summary": summary,
                     "repeats": per_model[m]})
        if is_main:
          # Every repeat's test part (an image is in several), one fitted logistic.
          pred, target = (np.concatenate(a) for a in zip(*scatter[m]))
          curve = None
          try:
            xs = np.linspace(pred.min(), pred.max(), 200)
            _, params = correlation.logistic_fit(pred, target, c.plcc_fit)
            fn = (correlation.logistic4 if c.plcc_fit == "logistic4"
                  else correlation.logistic5)
            curve = (fn(xs, *params), xs)  # human = f(pred): x axis is human
          except (RuntimeError, ValueError):
            pass
          s, nr = summary, len(scatter[m])
          scatter_png(out / f"scatter_{label}_{m}.png", pred, target, curve=curve,
                      title=(f"{label} features, {m}: SROCC {s['srocc']['mean']:.3f}, "
                             f"PLCC {s['plcc']['mean']:.3f} (mean of {nr} repeats)"),
                      xlabel=f"human {fs.metadata.get('score_name', 'score')}",
                      ylabel="predicted",
                      points_label=(f"test images of all {nr} repeats (n={len(pred)})"
                                    if nr > 1 else f"test images (n={len(pred)})"),
                      curve_label=f"fitted {c.plcc_fit} (pooled)")
    if c.export == "final":
      final = _fit_final(feature_sets, runs, y, index, c, out, workdir, is_main)
  finally:
    bar.close()
  results = {
      "dataset": first.metadata.get("name", "") or "database",
      "num_records": int(len(y)), "split_kind": kind, "num_repeats": len(reps),
      "fractions": [float(f) for f in c.fractions], "plcc_fit": c.plcc_fit,
      "plcc_fit_formula": FIT_FORMULAS[c.plcc_fit], "std": "sample (ddof=1)",
      "score_name": first.metadata.get("score_name", "score"),
      "label_note": first.metadata.get("label_note", ""),
      "seconds": round(time.perf_counter() - t0, 3), "final": final,
      "config": {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in c.to_dict().items()},
      "runs": runs}
  if is_main:
    atomic.write_json(out / "results.json", results, indent=1, default=float)
    atomic.write_text(out / "results.md", markdown_table(results))
  return results
