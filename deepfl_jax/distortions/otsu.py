"""MATLAB `multithresh` (Otsu multi-level thresholds) for type 22.

For N >= 3 thresholds MATLAB maximises Otsu's between-class variance with
`fminsearch` (Nelder-Mead, Lagarias et al.) over a piecewise-constant objective, so the
result depends on the exact floating-point path: sums in MATLAB's order, true
divisions, float64, stable sorts. Two implementations give the same thresholds:

- `host=True` (default): the search runs in NumPy float64 through `jax.pure_callback`
  (jit/vmap-able; one host round trip per image; exact whatever JAX's precision).
- `host=False`: pure JAX (`lax.while_loop`) in the device program. By default the
  search (256-bin histogram, at most 200 N steps: negligible work) runs in float64,
  enabled locally with `jax.enable_x64` whatever the global setting, and gives
  MATLAB's thresholds. `search_dtype=jnp.float32` (for backends without float64,
  e.g. TPU) is a faithful Otsu search but often ends at other thresholds than MATLAB
  (the objective's ties and near-ties round differently; experiments/bench_otsu.py
  measures it).

Both take the 256-bin histogram of round(255 (A - min) / (max - min)) (`im2uint8` of
the min-max-scaled data) over ALL elements, start from linspace(0, 255, N + 2)(2:end-1)
with TolX = 1, TolFun = 1e-4, MaxIter = MaxFunEvals = 200 N, and round the result.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.ops.matlab import round_half_away

NUM_BINS = 256


def _div(a, b):
  """a / b elementwise, kept a true division (XLA rewrites a / broadcast(b) as
  a * (1 / b), which rounds differently from MATLAB)."""
  b = jax.lax.optimization_barrier(jnp.broadcast_to(jnp.asarray(b, a.dtype), a.shape))
  return a / b


def histogram_counts(values: jnp.ndarray) -> jnp.ndarray:
  """(256,) int32 counts of im2uint8((A - min) / (max - min)) over all elements."""
  a = values.ravel()
  lo, hi = jnp.min(a), jnp.max(a)
  scaled = _div(a - lo, jnp.where(hi > lo, hi - lo, 1.0))
  q = jnp.floor(scaled * 255 + 0.5).astype(jnp.int32)
  return jnp.zeros((NUM_BINS,), jnp.int32).at[q].add(1)


# ----------------------------------------------------------------- NumPy reference
def _round_np(x):
  return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _objective_np(t, omega, mu, mu_t):
  b = _round_np(t) + 1
  if not np.all(np.diff(np.concatenate([[1.0], b, [NUM_BINS]])) > 0):
    return np.inf
  e = np.concatenate([b, [NUM_BINS]]).astype(np.int64) - 1
  with np.errstate(divide="ignore", invalid="ignore"):
    s = omega[e[0]] * ((mu[e[0]] / omega[e[0]] - mu_t) ** 2)
    for k in range(1, len(e)):
      w = omega[e[k]] - omega[e[k - 1]]
      s = s + w * (((mu[e[k]] - mu[e[k - 1]]) / w - mu_t) ** 2)
  return -s if np.isfinite(s) else np.inf


def fminsearch_np(fun, x0, tol_x=1.0, tol_f=1e-4, max_iter=None, max_evals=None):
  """MATLAB fminsearch (default coefficients) in NumPy float64."""
  x0 = np.asarray(x0, np.float64)
  n = x0.size
  max_iter = 200 * n if max_iter is None else max_iter
  max_evals = 200 * n if max_evals is None else max_evals
  v = np.zeros((n + 1, n))
  fv = np.zeros(n + 1)
  v[0] = x0
  fv[0] = fun(x0)
  for j in range(n):
    y = x0.copy()
    y[j] = 1.05 * y[j] if y[j] != 0 else 0.00025
    v[j + 1] = y
    fv[j + 1] = fun(y)
  order = np.argsort(fv, kind="stable")
  v, fv = v[order], fv[order]
  it, evals = 1, n + 1
  while evals < max_evals and it < max_iter:
    with np.errstate(invalid="ignore"):
      df = np.abs(fv[0] - fv[1:])
    df = df[~np.isnan(df)]
    if (df.size and df.max() <= max(tol_f, 10 * np.spacing(abs(fv[0])))
        and np.abs(v[1:] - v[0]).max() <= max(tol_x, 10 * np.spacing(abs(v[0].max())))):
      break
    xbar = v[0].copy()
    for j in range(1, n):
      xbar = xbar + v[j]
    xbar = xbar / n
    worst = v[n]
    xr = 2.0 * xbar - 1.0 * worst
    fxr = fun(xr)
    evals += 1
    shrink = False
    if fxr < fv[0]:
      xe = 3.0 * xbar - 2.0 * worst
      fxe = fun(xe)
      evals += 1
      v[n], fv[n] = (xe, fxe) if fxe < fxr else (xr, fxr)
    elif fxr < fv[n - 1]:
      v[n], fv[n] = xr, fxr
    elif fxr < fv[n]:
      xc = 1.5 * xbar - 0.5 * worst
      fxc = fun(xc)
      evals += 1
      if fxc <= fxr:
        v[n], fv[n] = xc, fxc
      else:
        shrink = True
    else:
      xcc = 0.5 * xbar + 0.5 * worst
      fxcc = fun(xcc)
      evals += 1
      if fxcc < fv[n]:
        v[n], fv[n] = xcc, fxcc
      else:
        shrink = True
    if shrink:
      for j in range(1, n + 1):
        v[j] = v[0] + 0.5 * (v[j] - v[0])
        fv[j] = fun(v[j])
      evals += n
    order = np.argsort(fv, kind="stable")
    v, fv = v[order], fv[order]
    it += 1
  return v[0]


def otsu_thresholds_np(counts, n: int) -> np.ndarray:
  """(n,) MATLAB multithresh thresholds in bin units 0..255 from (256,) counts."""
  counts = np.asarray(counts, np.float64)
  p = counts / counts.sum()
  omega = np.cumsum(p)                      # NumPy's cumsum is sequential, as MATLAB's
  mu = np.cumsum(p * np.arange(1, NUM_BINS + 1))
  x0 = (np.arange(1, n + 1) * 255.0) / (n + 1)
  t = fminsearch_np(lambda t: _objective_np(t, omega, mu, mu[-1]), x0)
  return _round_np(t)


def _host_thresholds(counts, n, max_thresholds):
  def cb(c, k):
    c, k = np.asarray(c), np.asarray(k)
    out = np.full(c.shape[:-1] + (max_thresholds,), np.inf)
    for idx in np.ndindex(*c.shape[:-1]):
      kk = int(k[idx])
      out[idx + (slice(0, kk),)] = otsu_thresholds_np(c[idx], kk)
    return out.astype(np.float32)
  # float32 carries integers 0..255 exactly; inf marks unused slots.
  shape = jax.ShapeDtypeStruct((max_thresholds,), jnp.float32)
  return jax.pure_callback(cb, shape, counts, n, vmap_method="broadcast_all")


# ----------------------------------------------------------------------- pure JAX
def _seq_cumsum(x):
  """Left-to-right cumulative sum (XLA's parallel scan rounds differently)."""
  def step(acc, v):
    acc = acc + v
    return acc, acc
  return jax.lax.scan(step, jnp.zeros((), x.dtype), x)[1]


def _objective(t, n, omega, mu, mu_t):
  """-sigma_B^2 of boundaries round(t) + 1 (first n of t (M,)), Inf when invalid."""
  m = t.shape[0]
  b = round_half_away(t) + 1
  k = jnp.arange(m)
  active = k < n
  lower = jnp.concatenate([jnp.ones((1,), t.dtype), b[:-1]])
  valid = (jnp.all(jnp.where(active, b > lower, True))
           & jnp.all(jnp.where(k == n - 1, b < NUM_BINS, True)))
  e = jnp.where(active, b, NUM_BINS).astype(jnp.int32) - 1
  e = jnp.concatenate([e, jnp.full((1,), NUM_BINS - 1, jnp.int32)])
  w0 = omega[e[0]]
  acc0 = w0 * ((mu[e[0]] / w0 - mu_t) ** 2)

  def add(kk, acc):
    wk = omega[e[kk]] - omega[e[kk - 1]]
    muk = (mu[e[kk]] - mu[e[kk - 1]]) / wk
    return acc + wk * ((muk - mu_t) ** 2)

  acc = jax.lax.fori_loop(1, n + 1, add, acc0)
  return jnp.where(valid & jnp.isfinite(acc), -acc, jnp.inf)


def _fminsearch(fun, x0, n, max_iter, tol_x=1.0, tol_f=1e-4):
  """`fminsearch_np` in JAX on the first n coordinates of x0 (M,) (n may be traced);
  vertices n+1.. are inactive padding kept at +inf behind the active ones."""
  m = x0.shape[0]
  dt = x0.dtype
  idx = jnp.arange(m + 1)
  vactive = idx <= n
  perturbed = jnp.where(x0 != 0, 1.05 * x0, 0.00025)
  v = jnp.concatenate([x0[None], jnp.where(jnp.eye(m) > 0, perturbed[None, :],
                                           x0[None, :])])
  fv = jnp.where(vactive, jax.vmap(fun)(v), jnp.inf)

  def order(v, fv):
    perm = jnp.argsort(jnp.where(vactive, fv, jnp.inf), stable=True)
    return v[perm], fv[perm]

  v, fv = order(v, fv)
  coord = jnp.arange(m) < n

  def converged(v, fv):
    others = vactive & (idx > 0)
    df = jnp.where(others, jnp.abs(fv[0] - fv), -jnp.inf)
    df = jnp.where(jnp.isnan(df), -jnp.inf, df)       # MATLAB's max ignores NaN
    dx = jnp.where(others[:, None] & coord[None, :], jnp.abs(v - v[0][None, :]), -jnp.inf)
    return (jnp.max(df) <= tol_f) & (jnp.max(df) > -jnp.inf) & (jnp.max(dx) <= tol_x)

  def cond(state):
    _, _, evals, it, done = state
    return (~done) & (evals < max_iter) & (it < max_iter)

  def body(state):
    v, fv, evals, it, _ = state
    stop = converged(v, fv)
    worst, fworst = v[n], fv[n]
    xbar = jax.lax.fori_loop(1, n, lambda j, s: s + v[j], v[0])
    xbar = _div(xbar, n.astype(dt))
    xr = 2.0 * xbar - 1.0 * worst
    xe = 3.0 * xbar - 2.0 * worst
    xc = 1.5 * xbar - 0.5 * worst
    xcc = 0.5 * xbar + 0.5 * worst
    fxr, fxe, fxc, fxcc = jax.vmap(fun)(jnp.stack([xr, xe, xc, xcc]))
    expand = fxr < fv[0]
    reflect = (~expand) & (fxr < fv[n - 1])
    outside = (~expand) & (~reflect) & (fxr < fworst)
    inside = (~expand) & (~reflect) & (~outside)
    take_e = expand & (fxe < fxr)
    take_r = (expand & ~take_e) | reflect
    take_c = outside & (fxc <= fxr)
    shrink = (outside & ~take_c) | (inside & ~(fxcc < fworst))
    new_x = jnp.where(take_e, xe, jnp.where(take_r, xr, jnp.where(take_c, xc, xcc)))
    new_f = jnp.where(take_e, fxe, jnp.where(take_r, fxr, jnp.where(take_c, fxc, fxcc)))

    def do_shrink(_):
      vs = v[0][None] + 0.5 * (v - v[0][None])
      keep = (~vactive) | (idx == 0)
      return (jnp.where(keep[:, None], v, vs),
              jnp.where(keep, fv, jax.vmap(fun)(vs)))

    def no_shrink(_):
      return v.at[n].set(new_x), fv.at[n].set(new_f)

    v2, fv2 = jax.lax.cond(shrink, do_shrink, no_shrink, None)
    v2, fv2 = order(v2, jnp.where(vactive, fv2, jnp.inf))
    n_evals = jnp.where(expand | outside | inside, 2, 1) + jnp.where(shrink, n, 0)
    return (jnp.where(stop, v, v2), jnp.where(stop, fv, fv2),
            jnp.where(stop, evals, evals + n_evals), jnp.where(stop, it, it + 1), stop)

  init = (v, fv, n + 1, jnp.asarray(1, n.dtype), jnp.asarray(False))
  return jax.lax.while_loop(cond, body, init)[0][0]


def _jax_thresholds(counts, n, max_thresholds, dtype):
  c = counts.astype(dtype)
  p = _div(c, jnp.sum(c))
  omega = _seq_cumsum(p)
  mu = _seq_cumsum(p * jnp.arange(1, NUM_BINS + 1, dtype=dtype))
  k = jnp.arange(max_thresholds, dtype=dtype)
  x0 = jnp.where(k < n, _div((k + 1) * 255, (n + 1).astype(dtype)), 0.0)
  t = _fminsearch(lambda t: _objective(t, n, omega, mu, mu[-1]), x0, n, 200 * n)
  return jnp.where(jnp.arange(max_thresholds) < n, round_half_away(t), jnp.inf)


def multithresh(values: jnp.ndarray, n, *, max_thresholds: int = 20,
                host: bool = True, search_dtype=jnp.float64) -> jnp.ndarray:
  """MATLAB `multithresh(A, n)` over all elements of `values`, 3 <= n <= max_thresholds
  (n may be traced). Returns (max_thresholds,) thresholds on A's scale (entries >= n
  are +inf). `search_dtype`: precision of the device search (`host=False`)."""
  n = jnp.asarray(n, jnp.int32)
  counts = histogram_counts(values)
  if host:
    t = _host_thresholds(counts, n, max_thresholds).astype(values.dtype)
  elif jnp.dtype(search_dtype) == jnp.float64:
    with jax.enable_x64(True):   # thresholds are integers 0..255: exact in float32
      t = _jax_thresholds(counts, n, max_thresholds, jnp.float64)
    t = t.astype(values.dtype)
  else:
    t = _jax_thresholds(counts, n, max_thresholds, search_dtype).astype(values.dtype)
  lo, hi = jnp.min(values), jnp.max(values)
  return lo + t / 255 * (hi - lo)
