"""Evaluation statistics of IQA papers: SROCC, KROCC, PLCC (raw or after a logistic fit).

These are host-side statistics on NumPy arrays (float64), computed once per evaluation,
not JAX code: they are neither jit-able nor differentiable (ranking and
`scipy.optimize.curve_fit` are not). JAX arrays are accepted and copied to the host.

- `srocc`: Spearman rank-order correlation = Pearson correlation of the ranks, ties
  given their average rank (as `scipy.stats.spearmanr` / `rankdata(method="average")`).
- `krocc`: Kendall's tau-b, which corrects for ties in either variable (as
  `scipy.stats.kendalltau`'s default), computed in O(n log^2 n) (vectorised merge
  counting of discordant pairs), so KADIS-size samples are fine.
- `plcc`: Pearson linear correlation, either of the raw predictions or of the
  predictions mapped by a fitted logistic (`fit="logistic4"` / `"logistic5"`), as the
  VQEG reports and most IQA papers do before computing PLCC.
- `logistic_fit`: the fits themselves (`scipy.optimize.curve_fit`), returning the mapped
  predictions and the parameters:
  * "logistic4" (VQEG FR-TV Phase II 4-parameter logistic):
      f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2;
    initial values b1 = max(target), b2 = min(target) (swapped when the Pearson
    correlation is negative, i.e. lower-is-better predictions), b3 = mean(pred),
    b4 = std(pred).
  * "logistic5" (Sheikh, Sabir, Bovik, TIP 2006):
      f(x) = b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5;
    initial values b1 = max(target) - min(target), b2 = sign(r) / std(pred),
    b3 = mean(pred), b4 = 0, b5 = mean(target).
  Both are fitted on standardised pred and target within generous box bounds
  (trust-region-reflective least squares); see `logistic_fit`.

Inputs: 1-D array-likes of equal length n >= 3 (any shape is flattened), finite (NaN
or inf raise ValueError). A constant input makes a correlation undefined: like SciPy,
the functions then return NaN and emit a RuntimeWarning rather than raise (a collapsed
model early in training should not crash an evaluation loop).
"""
from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import scipy.optimize
import scipy.special

FitKind = Literal["logistic4", "logistic5"]
FIT_KINDS = ("logistic4", "logistic5")


def _check(pred, target, name: str) -> tuple[np.ndarray, np.ndarray]:
  p = np.asarray(pred, dtype=np.float64).reshape(-1)
  t = np.asarray(target, dtype=np.float64).reshape(-1)
  if p.size != t.size:
    raise ValueError(f"{name}: pred and target lengths differ ({p.size} vs {t.size})")
  if p.size < 3:
    raise ValueError(f"{name}: needs at least 3 samples, got {p.size}")
  for role, a in (("pred", p), ("target", t)):
    if not np.all(np.isfinite(a)):
      raise ValueError(f"{name}: {role} contains NaN or inf values")
  return p, t


def _pearson(a: np.ndarray, b: np.ndarray, name: str) -> float:
  da, db = a - a.mean(), b - b.mean()
  den = np.sqrt(np.sum(da * da) * np.sum(db * db))
  if den == 0.0:
    warnings.warn(f"{name}: an input is constant; the correlation is undefined (NaN)",
                  RuntimeWarning, stacklevel=3)
    return float("nan")
  return float(np.clip(np.sum(da * db) / den, -1.0, 1.0))


def average_ranks(a: np.ndarray) -> np.ndarray:
  """Ranks 1..n with ties given their average rank (scipy rankdata 'average')."""
  a = np.asarray(a, dtype=np.float64).reshape(-1)
  _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
  # Sorted groups occupy positions [start, start + count); their average 1-based rank:
  starts = np.cumsum(counts) - counts
  return (starts + (counts + 1) / 2.0)[inverse]


def srocc(pred, target) -> float:
  """Spearman rank-order correlation coefficient (average ranks for ties)."""
  p, t = _check(pred, target, "srocc")
  return _pearson(average_ranks(p), average_ranks(t), "srocc")


def _tie_pairs(*columns: np.ndarray) -> int:
  """Number of pairs tied in all the given columns: sum over groups of t (t - 1) / 2."""
  _, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
  return int(np.sum(counts * (counts - 1) // 2))


def _count_inversions(seq: np.ndarray) -> int:
  """Pairs i < j with seq[i] > seq[j] (strict), for non-negative integer seq.

  Bottom-up merge counting, vectorised per level: at width w each run of w elements is
  sorted; for every element of a right run, the elements of its left partner run that
  are larger are found by searchsorted on keys pair * m + value (one global sorted
  array per level), then each pair of runs is merged by sorting the same keys.
  """
  a = np.asarray(seq, dtype=np.int64)
  n = a.size
  m = int(a.max()) + 1 if n else 1
  pos = np.arange(n)
  total = 0
  w = 1
  while w < n:
    run = pos // w
    pair = run // 2
    right = (run % 2) == 1
    keys = pair * m + a
    left_keys = keys[~right]            # sorted: pairs ascending, each left run sorted
    r_pair = pair[right]
    end = np.searchsorted(left_keys, (r_pair + 1) * m, side="left")
    at_most = np.searchsorted(left_keys, keys[right], side="right")
    total += int(np.sum(end - at_most))
    a = np.sort(keys) - pair * m        # merge: blocks stay in place, sorted inside
    w *= 2
  return total


def krocc(pred, target) -> float:
  """Kendall rank-order correlation, tau-b (ties in either variable corrected).

  tau_b = (n_c - n_d) / sqrt((n0 - n1)(n0 - n2)) with n0 = n(n-1)/2 and n1, n2 the tied
  pairs in pred and target; n_c - n_d = n0 - n1 - n2 + n3 - 2 n_d (n3: pairs tied in
  both), and n_d is the number of strict inversions of target after sorting by
  (pred, target).
  """
  p, t = _check(pred, target, "krocc")
  n = p.size
  n0 = n * (n - 1) // 2
  n1, n2, n3 = _tie_pairs(p), _tie_pairs(t), _tie_pairs(p, t)
  if n1 == n0 or n2 == n0:
    warnings.warn("krocc: an input is constant; the correlation is undefined (NaN)",
                  RuntimeWarning, stacklevel=2)
    return float("nan")
  order = np.lexsort((t, p))
  _, dense_t = np.unique(t, return_inverse=True)
  n_d = _count_inversions(dense_t[order])
  s = n0 - n1 - n2 + n3 - 2 * n_d
  return float(np.clip(s / np.sqrt(float(n0 - n1) * float(n0 - n2)), -1.0, 1.0))


def logistic4(x, b1, b2, b3, b4):
  """VQEG 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
  return b2 + (b1 - b2) * scipy.special.expit((x - b3) / np.abs(b4))


def logistic5(x, b1, b2, b3, b4, b5):
  """Sheikh et al. 2006: b1 (1/2 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5."""
  return b1 * (0.5 - scipy.special.expit(-b2 * (x - b3))) + b4 * x + b5


def logistic_fit(pred, target, kind: FitKind = "logistic5"
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Least-squares logistic mapping of predictions onto the target scale.

  The fit runs on standardised variables z = (pred - mean) / std, u = (target - mean) /
  std (better conditioned, scale-free initial values), with box bounds so that an
  unbounded optimum (e.g. a convex, exponential-like relation that only the tail of a
  logistic matches) stops at a bound instead of failing; the parameters are converted
  back to the original units of the formulas in the module docstring.

  Returns:
    (fitted_pred, params): f(pred) as float64 (n,), and the fitted parameters
    (b1..b4 or b1..b5).

  Raises:
    ValueError: bad input (see module docstring), constant pred or target, or an
      unknown kind.
    RuntimeError: curve_fit did not converge.
  """
  p, t = _check(pred, target, "logistic_fit")
  if kind not in FIT_KINDS:
    raise ValueError(f"logistic_fit: kind must be one of {FIT_KINDS}, got {kind!r}")
  mx, sx, mt, st = float(p.mean()), float(p.std()), float(t.mean()), float(t.std())
  if sx == 0.0 or st == 0.0:
    raise ValueError("logistic_fit: pred or target is constant; nothing to fit")
  z, u = (p - mx) / sx, (t - mt) / st
  sign = 1.0 if np.sum(z * u) >= 0 else -1.0
  if kind == "logistic4":
    hi, lo = float(u.max()), float(u.min())
    c0 = [hi, lo, 0.0, 1.0] if sign > 0 else [lo, hi, 0.0, 1.0]
    bounds = ([-50.0, -50.0, -50.0, 1e-3], [50.0, 50.0, 50.0, 1e3])
    fn = logistic4
  else:
    c0 = [float(u.max() - u.min()), sign, 0.0, 0.0, 0.0]
    bounds = ([-100.0, -1e3, -50.0, -50.0, -100.0], [100.0, 1e3, 50.0, 50.0, 100.0])
    fn = logistic5
  try:
    c, _ = scipy.optimize.curve_fit(fn, z, u, p0=c0, bounds=bounds, max_nfev=20000)
  except (RuntimeError, ValueError) as err:
    raise RuntimeError(f"logistic_fit: {kind} fit did not converge ({err})") from err
  if kind == "logistic4":
    params = np.array([mt + st * c[0], mt + st * c[1], mx + sx * c[2], sx * c[3]])
  else:
    params = np.array([st * c[0], c[1] / sx, mx + sx * c[2], st * c[3] / sx,
                       mt + st * c[4] - st * c[3] * mx / sx])
  return fn(p, *params), params


def plcc(pred, target, fit: FitKind | None = None) -> float:
  """Pearson linear correlation of pred (raw, fit=None) or of the logistic-mapped
  pred (fit="logistic4" or "logistic5") with target."""
  p, t = _check(pred, target, "plcc")
  if fit is not None:
    if fit not in FIT_KINDS:
      raise ValueError(f"plcc: fit must be None or one of {FIT_KINDS}, got {fit!r}")
    if np.std(p) == 0.0 or np.std(t) == 0.0:
      return _pearson(p, t, "plcc")
    p, _ = logistic_fit(p, t, fit)
  return _pearson(p, t, "plcc")
