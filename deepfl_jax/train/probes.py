"""Linear probes of frozen features, reported beside the MOS regressor: ridge
regression in closed form (via the SVD of the standardised training features)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


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
