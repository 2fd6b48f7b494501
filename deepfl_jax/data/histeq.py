"""Histogram equalisation of the 11 FR proxy scores (Stage-1 targets).

DeepFL-IQA trains on the FR scores after equalising each metric's histogram over the
training set (Lin, Hosu, Saupe 2020, Stage 1): the target of a score s of metric m is its
empirical CDF, ties averaged, F_m(s) in [0, 1], oriented so that higher = better
(1 - F_m(s) for MDSI and GMSD, where lower raw scores are better). Every task is then
roughly uniform on [0, 1] and the MSE weighs the 11 tasks alike.

Representation: an `Equalizer` pytree holding, per metric, K sorted raw-score knots and
the mid-rank ECDF at those knots. On a calibration sample of n values with ranks
r (1..n, tied values share their average rank), the knot of a value has
cdf = (r - 1) / (n - 1), so the sample maps onto [0, 1] with both ends reached (0.5
for a constant sample). When a metric has more than `num_knots` distinct values, an
evenly spaced subset of them (first and last included) is kept and `jnp.interp`
interpolates linearly in between (error below one knot spacing in cdf). Scores outside
the calibration range clamp to 0 or 1.

Fit it once on a calibration sample (`fit`, e.g. raw scores from
`synthesis.calibrate`) or from a KADIS-700k FR-score file (`from_score_file`), store it
with the run (`save` / `load`: .json or .npz), and apply it anywhere, inside jit, with
`equalize`.

Which CDFs Stage 1 uses (`choose`): by default every metric's CDF is fitted on OUR
scores of the data the training stream draws from, so each target is uniform on
[0, 1] whatever the metric's scale. The published KADIS-700k CDFs map our scores to
uniform targets only where our metric reproduces the original's scale; for SC-QI and
ADD-GSIM (reconstructions) and SFF (our own W) they give skewed targets that clamp at
0 or 1. They are therefore used only on explicit request ("published") and only for
metrics with MATLAB parity (`metrics.MATLAB_PARITY`).
"""
from __future__ import annotations

import csv
import json
import pathlib
from typing import Callable, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax import atomic
from deepfl_jax.metrics.fused import HIGHER_IS_BETTER, MATLAB_PARITY, METRIC_NAMES

FORMAT = "deepfl_jax.histeq/1"
DEFAULT_KNOTS = 2049


@flax.struct.dataclass
class Equalizer:
  """Per-metric empirical CDFs (a pytree: pass it through jit as an argument).

  values: (M, K) raw-score knots, non-decreasing along K (padded by repeating the last).
  cdf: (M, K) mid-rank ECDF at the knots, non-decreasing, in [0, 1].
  higher_is_better: (M,) bool; False flips the output to 1 - cdf.
  names: metric names (static), in the column order of the scores it equalises.
  num_samples: calibration values per metric (static, for the record).
  """
  values: jax.Array
  cdf: jax.Array
  higher_is_better: jax.Array
  names: tuple[str, ...] = flax.struct.field(pytree_node=False, default=METRIC_NAMES)
  num_samples: tuple[int, ...] = flax.struct.field(pytree_node=False, default=())


def _as_columns(scores, names: Sequence[str]) -> np.ndarray:
  """dict name -> (n,) or array (n, M) -> (n, M) float64."""
  if isinstance(scores, Mapping):
    missing = [n for n in names if n not in scores]
    if missing:
      raise ValueError(f"scores lack the metrics {missing}")
    cols = [np.asarray(scores[n], np.float64).reshape(-1) for n in names]
    return np.stack(cols, axis=-1)
  a = np.asarray(scores, np.float64)
  if a.ndim == 1 and len(names) == 1:
    a = a[:, None]
  if a.ndim != 2 or a.shape[1] != len(names):
    raise ValueError(f"scores must have shape (n, {len(names)}) (columns "
                     f"{tuple(names)}), got {a.shape}")
  return a


def ecdf_knots(sample: np.ndarray, num_knots: int = DEFAULT_KNOTS
               ) -> tuple[np.ndarray, np.ndarray]:
  """Sorted distinct values of a 1-D sample (NaN/inf ignored) and their mid-rank ECDF
  (r - 1) / (n - 1), thinned to at most `num_knots` evenly spaced knots."""
  # Ties are judged in the dtype the knots are stored in (float32 unless x64 is on),
  # so values that round together share one averaged rank.
  v = np.asarray(sample, jax.dtypes.canonicalize_dtype(np.float64)).reshape(-1)
  v = v[np.isfinite(v)].astype(np.float64)
  if v.size == 0:
    raise ValueError("cannot fit an equaliser on a sample without finite values")
  if num_knots < 2:
    raise ValueError(f"num_knots must be at least 2, got {num_knots}")
  uniq, counts = np.unique(v, return_counts=True)
  before = np.cumsum(counts) - counts
  midrank = before + (counts + 1) / 2.0          # average of ranks before+1..before+c
  n = v.size
  cdf = (midrank - 1) / (n - 1) if n > 1 else np.full(uniq.shape, 0.5)
  if uniq.size > num_knots:
    keep = np.unique(np.round(np.linspace(0, uniq.size - 1, num_knots)).astype(np.int64))
    uniq, cdf = uniq[keep], cdf[keep]
  return uniq, cdf


def _pad(rows: list[np.ndarray]) -> np.ndarray:
  k = max(r.size for r in rows)
  return np.stack([np.concatenate([r, np.full(k - r.size, r[-1])]) for r in rows])


def fit(scores, *, names: Sequence[str] = METRIC_NAMES,
        higher_is_better: Mapping[str, bool] | Sequence[bool] | None = None,
        num_knots: int = DEFAULT_KNOTS) -> Equalizer:
  """Equaliser fitted on a calibration sample.

  Args:
    scores: (n, M) raw scores with columns `names`, or dict name -> (n,) (e.g. the
      output of `metrics.fr_scores` over a calibration set). NaN/inf are ignored.
    names: metric names (default the 11 proxies in KADIS order).
    higher_is_better: per metric (dict or sequence); default `HIGHER_IS_BETTER`
      (MDSI and GMSD flipped), True for names it does not know.
    num_knots: most knots kept per metric.
  """
  names = tuple(names)
  cols = _as_columns(scores, names)
  if higher_is_better is None:
    hib = [HIGHER_IS_BETTER.get(n, True) for n in names]
  elif isinstance(higher_is_better, Mapping):
    hib = [bool(higher_is_better.get(n, HIGHER_IS_BETTER.get(n, True))) for n in names]
  else:
    hib = [bool(h) for h in higher_is_better]
    if len(hib) != len(names):
      raise ValueError("higher_is_better must have one entry per metric")
  knots = []
  for j, n in enumerate(names):
    try:
      knots.append(ecdf_knots(cols[:, j], num_knots))
    except ValueError as e:
      raise ValueError(f"metric {n!r}: {e}") from None
  counts = tuple(int(np.isfinite(cols[:, j]).sum()) for j in range(len(names)))
  return Equalizer(values=jnp.asarray(_pad([k[0] for k in knots])),
                   cdf=jnp.asarray(_pad([k[1] for k in knots])),
                   higher_is_better=jnp.asarray(hib, bool), names=names,
                   num_samples=counts)


def read_score_table(path) -> tuple[list[str], list[str], np.ndarray]:
  """KADIS-700k's `kadis700k_friqa.csv`: (dist_im names, ref_im names, (n, 11) float64
  scores). Columns dist_im, ref_im, then SSIM, MS-SSIM, IW-SSIM, MDSI, VSI, FSIM, GMSD,
  SFF, SCQI, ADD-GSIM, SR-SIM, read by position (the file's SCQI and ADD-GSIM are the
  authors' values; ours are `scqi_proxy`, `add_gsim_proxy`); empty or unparsable
  cells -> NaN."""
  rows, dist, ref = [], [], []
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or len(header) < 2 + len(METRIC_NAMES):
      raise ValueError(f"{path}: expected a header dist_im,ref_im followed by "
                       f"{len(METRIC_NAMES)} score columns, got {header}")
    for line_no, r in enumerate(reader, start=2):
      if not r:
        continue
      if len(r) < 2 + len(METRIC_NAMES):
        raise ValueError(f"{path}:{line_no}: expected {2 + len(METRIC_NAMES)} columns, "
                         f"got {len(r)}")
      vals = []
      for c in r[2:2 + len(METRIC_NAMES)]:
        try:
          vals.append(float(c))
        except ValueError:
          vals.append(np.nan)
      rows.append(vals)
      dist.append(r[0].strip())
      ref.append(r[1].strip())
  return dist, ref, np.asarray(rows, np.float64).reshape(-1, len(METRIC_NAMES))


def read_score_file(path) -> np.ndarray:
  """The 11 score columns of `kadis700k_friqa.csv` as (n, 11) float64 (see
  `read_score_table`)."""
  return read_score_table(path)[2]


def from_score_file(path, *, num_knots: int = DEFAULT_KNOTS) -> Equalizer:
  """Equaliser taken from the KADIS-700k FR-score file (the paper's targets: the ECDF
  over all of KADIS's distorted images)."""
  return fit(read_score_file(path), num_knots=num_knots)


def replace_metrics(eq: Equalizer, other: Equalizer, names: Sequence[str]) -> Equalizer:
  """`eq` with the CDFs of the metrics `names` taken from `other` (same metric set)."""
  if tuple(eq.names) != tuple(other.names):
    raise ValueError(f"equalisers cover different metrics: {eq.names} vs {other.names}")
  unknown = [n for n in names if n not in eq.names]
  if unknown:
    raise ValueError(f"unknown metrics {unknown}; choose from {eq.names}")
  values, cdf = np.asarray(eq.values, np.float64), np.asarray(eq.cdf, np.float64)
  o_values, o_cdf = np.asarray(other.values, np.float64), np.asarray(other.cdf, np.float64)
  rows_v, rows_c, counts = [], [], list(eq.num_samples or (0,) * len(eq.names))
  for j, n in enumerate(eq.names):
    src_v, src_c = (o_values, o_cdf) if n in names else (values, cdf)
    rows_v.append(src_v[j])
    rows_c.append(src_c[j])
    if n in names and other.num_samples:
      counts[j] = other.num_samples[j]
  return Equalizer(values=jnp.asarray(_pad(rows_v)), cdf=jnp.asarray(_pad(rows_c)),
                   higher_is_better=eq.higher_is_better, names=eq.names,
                   num_samples=tuple(counts))


EQUALIZER_SOURCES = ("own", "published")


def choose(own: Callable[[], Equalizer], *, source: str = "own", score_file: str = "",
           published_metrics: Sequence[str] = ()) -> Equalizer:
  """The Stage 1 equaliser (config.stage1.equalizer, score_file, published_metrics).

  Args:
    own: fits the equaliser on our own scores of the training stream's data
      (`synthesis.calibrate`); always called.
    source: "own" (default): every metric's CDF from `own()`. "published": the CDFs
      of `published_metrics` are taken from the KADIS-700k score file instead.
    score_file: kadis700k_friqa.csv (needed for "published").
    published_metrics: metrics that take the published CDF; () = all of
      `MATLAB_PARITY`. Metrics outside MATLAB_PARITY are refused: their scale is not
      the original's, so the published CDF would not make their targets uniform.
  """
  if source not in EQUALIZER_SOURCES:
    raise ValueError(f"config.stage1.equalizer: unknown source {source!r}; choose from "
                     f"{EQUALIZER_SOURCES}")
  names = tuple(published_metrics) or MATLAB_PARITY
  if source == "published":
    if not score_file:
      raise ValueError("config.stage1.equalizer='published' needs "
                       "config.stage1.score_file (kadis700k_friqa.csv)")
    bad = [n for n in names if n not in MATLAB_PARITY]
    if bad:
      raise ValueError(f"config.stage1.published_metrics: {bad} do not reproduce the "
                       "original MATLAB scale (reconstructions or our own SFF W), so "
                       "the published CDF would not equalise them; allowed: "
                       f"{MATLAB_PARITY}")
  eq = own()
  if source == "own":
    return eq
  return replace_metrics(eq, from_score_file(score_file, num_knots=eq.values.shape[1]),
                         names)


def ks_uniform(u) -> np.ndarray:
  """Kolmogorov-Smirnov statistic of each column of (n, M) values against U(0, 1)
  (NaN ignored): sup |F_n(t) - t|. For n uniform samples it stays below about
  1.36 / sqrt(n) with probability 0.95."""
  u = np.asarray(u, np.float64)
  u = u[:, None] if u.ndim == 1 else u
  out = []
  for col in u.T:
    v = np.sort(col[np.isfinite(col)])
    n = v.size
    if n == 0:
      out.append(np.nan)
      continue
    i = np.arange(1, n + 1)
    out.append(max(np.max(i / n - v), np.max(v - (i - 1) / n)))
  return np.asarray(out)


def equalize(eq: Equalizer, scores) -> jnp.ndarray:
  """Equalised, oriented targets: (..., M) raw scores (or dict name -> (...)) ->
  (..., M) in [0, 1], higher = better for every metric. Jit-able (NaN stays NaN)."""
  if isinstance(scores, Mapping):
    scores = jnp.stack([jnp.asarray(scores[n]) for n in eq.names], axis=-1)
  scores = jnp.asarray(scores)
  if scores.shape[-1] != len(eq.names):
    raise ValueError(f"scores have {scores.shape[-1]} columns, the equaliser "
                     f"{len(eq.names)} ({eq.names})")
  dtype = scores.dtype if jnp.issubdtype(scores.dtype, jnp.floating) else jnp.float32
  flat = scores.reshape(-1, scores.shape[-1]).astype(dtype)
  u = jax.vmap(jnp.interp, in_axes=(1, 0, 0), out_axes=1)(
      flat, eq.values.astype(dtype), eq.cdf.astype(dtype))
  u = jnp.where(eq.higher_is_better, u, 1 - u)
  u = jnp.where(jnp.isnan(flat), jnp.nan, u)   # jnp.interp maps NaN to an end value
  return u.reshape(scores.shape)


# --- storage ------------------------------------------------------------------------
def to_dict(eq: Equalizer) -> dict:
  """JSON-ready dict (float64 knots written with Python's round-trip repr)."""
  return {"format": FORMAT, "names": list(eq.names),
          "higher_is_better": [bool(h) for h in np.asarray(eq.higher_is_better)],
          "num_samples": list(eq.num_samples),
          "values": np.asarray(eq.values, np.float64).tolist(),
          "cdf": np.asarray(eq.cdf, np.float64).tolist()}


def from_dict(d: Mapping) -> Equalizer:
  if d.get("format") != FORMAT:
    raise ValueError(f"not an equaliser file (format {d.get('format')!r}, expected "
                     f"{FORMAT!r})")
  values = np.asarray(d["values"], np.float64)
  cdf = np.asarray(d["cdf"], np.float64)
  names = tuple(str(n) for n in d["names"])
  if values.shape != cdf.shape or values.ndim != 2 or values.shape[0] != len(names):
    raise ValueError(f"equaliser arrays have inconsistent shapes {values.shape}, "
                     f"{cdf.shape} for {len(names)} metrics")
  return Equalizer(values=jnp.asarray(values), cdf=jnp.asarray(cdf),
                   higher_is_better=jnp.asarray(np.asarray(d["higher_is_better"], bool)),
                   names=names,
                   num_samples=tuple(int(n) for n in d.get("num_samples", ())))


def save(eq: Equalizer, path) -> pathlib.Path:
  """Writes the equaliser to `path` (.json, or .npz for a compact binary), atomically:
  a reader sees the previous file or the complete new one."""
  path = pathlib.Path(path)
  d = to_dict(eq)
  if path.suffix == ".npz":
    atomic.savez(path, format=np.asarray(FORMAT), names=np.asarray(d["names"]),
                 higher_is_better=np.asarray(d["higher_is_better"], bool),
                 num_samples=np.asarray(d["num_samples"], np.int64),
                 values=np.asarray(eq.values, np.float64),
                 cdf=np.asarray(eq.cdf, np.float64))
  elif path.suffix == ".json":
    atomic.write_json(path, d)
  else:
    raise ValueError(f"equaliser files end in .json or .npz, got {path.name!r}")
  return path


def load(path) -> Equalizer:
  """Reads an equaliser written by `save`."""
  path = pathlib.Path(path)
  if path.suffix == ".npz":
    with np.load(path, allow_pickle=False) as z:
      d = {k: z[k] for k in z.files}
    d = {"format": str(d["format"]), "names": [str(n) for n in d["names"]],
         "higher_is_better": d["higher_is_better"], "num_samples": d["num_samples"],
         "values": d["values"], "cdf": d["cdf"]}
    return from_dict(d)
  return from_dict(json.loads(path.read_text()))
