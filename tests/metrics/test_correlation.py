"""Evaluation statistics (host NumPy): agreement with scipy.stats on data with ties,
behaviour of the logistic fits, and input errors."""
import itertools
import warnings

import numpy as np
import pytest
import scipy.stats

from deepfl_jax.metrics import correlation


def _tied_samples(seed, n):
  rng = np.random.default_rng(seed)
  pred = rng.integers(0, 6, n).astype(float)          # many ties in pred
  target = np.round(0.5 * pred + rng.normal(0, 1, n))  # ties in target, some joint
  return pred, target


@pytest.mark.parametrize("n", [3, 4, 7, 50, 333])
def test_against_scipy_with_ties(n):
  for seed in range(10):
    p, t = _tied_samples(seed + 100 * n, n)
    if np.ptp(p) == 0 or np.ptp(t) == 0:
      continue
    assert correlation.srocc(p, t) == pytest.approx(
        scipy.stats.spearmanr(p, t).statistic, abs=1e-12)
    assert correlation.krocc(p, t) == pytest.approx(
        scipy.stats.kendalltau(p, t, variant="b").statistic, abs=1e-12)
    assert correlation.plcc(p, t) == pytest.approx(
        scipy.stats.pearsonr(p, t).statistic, abs=1e-12)


def test_continuous_data_and_large_n():
  rng = np.random.default_rng(0)
  p = rng.normal(size=5000)
  t = p + rng.normal(size=5000)
  assert correlation.krocc(p, t) == pytest.approx(
      scipy.stats.kendalltau(p, t).statistic, abs=1e-12)
  assert correlation.srocc(p, t) == pytest.approx(
      scipy.stats.spearmanr(p, t).statistic, abs=1e-12)


def test_krocc_matches_brute_force_pair_count():
  p, t = _tied_samples(7, 40)
  s = n1 = n2 = 0
  for i, j in itertools.combinations(range(40), 2):
    dp, dt = np.sign(p[i] - p[j]), np.sign(t[i] - t[j])
    s += dp * dt
    n1 += dp != 0
    n2 += dt != 0
  assert correlation.krocc(p, t) == pytest.approx(s / np.sqrt(n1 * n2), abs=1e-12)


def test_average_ranks_match_scipy_rankdata():
  p, _ = _tied_samples(3, 30)
  np.testing.assert_array_equal(correlation.average_ranks(p),
                                scipy.stats.rankdata(p, method="average"))


def test_monotone_nonlinear_relation():
  x = np.linspace(0.0, 1.0, 60)
  y = 1.0 + 4.0 / (1.0 + np.exp(-12.0 * (x - 0.6)))     # a logistic-shaped MOS curve
  assert correlation.srocc(x, y) == pytest.approx(1.0, abs=1e-12)
  assert correlation.krocc(x, y) == pytest.approx(1.0, abs=1e-12)
  raw = correlation.plcc(x, y)
  assert raw < 0.98
  for kind in ("logistic4", "logistic5"):
    assert correlation.plcc(x, y, fit=kind) > 0.9999
  # Lower-is-better predictions (negative relation): fitted PLCC ~ +1, SROCC = -1.
  assert correlation.srocc(-x, y) == pytest.approx(-1.0, abs=1e-12)
  assert correlation.plcc(-x, y, fit="logistic5") > 0.9999
  # An exponential (convex, no upper plateau) still fits, at a bound if need be.
  assert correlation.plcc(x, np.exp(3 * x), fit="logistic4") > 0.999


def test_logistic_fit_recovers_parameters_and_returns_mapped_values():
  rng = np.random.default_rng(1)
  x = rng.uniform(0, 1, 400)
  true = (5.0, 1.0, 0.4, 0.08)
  y = correlation.logistic4(x, *true) + rng.normal(0, 0.02, x.size)
  fitted, params = correlation.logistic_fit(x, y, "logistic4")
  np.testing.assert_allclose(params[:3], true[:3], atol=0.05)
  assert abs(params[3]) == pytest.approx(true[3], abs=0.01)
  np.testing.assert_allclose(fitted, correlation.logistic4(x, *params))
  fitted5, params5 = correlation.logistic_fit(x, y, "logistic5")
  assert params5.shape == (5,)
  np.testing.assert_allclose(fitted5, correlation.logistic5(x, *params5))
  # Least squares: the fit beats the raw predictions and the initial 4-parameter fit.
  assert np.mean((fitted5 - y) ** 2) < 1.05 * np.mean((fitted - y) ** 2)
  assert np.mean((fitted - y) ** 2) < 0.001


def test_accepts_jax_arrays_and_lists():
  jnp = pytest.importorskip("jax.numpy")
  p, t = _tied_samples(5, 20)
  assert correlation.srocc(jnp.asarray(p), list(t)) == pytest.approx(
      correlation.srocc(p, t))


def test_errors():
  with pytest.raises(ValueError, match="lengths differ"):
    correlation.srocc([1, 2, 3], [1, 2, 3, 4])
  with pytest.raises(ValueError, match="at least 3"):
    correlation.plcc([1, 2], [2, 1])
  with pytest.raises(ValueError, match="NaN"):
    correlation.krocc([1, np.nan, 3], [1, 2, 3])
  with pytest.raises(ValueError, match="NaN"):
    correlation.srocc([1, 2, 3], [1, np.inf, 3])
  with pytest.raises(ValueError, match="kind"):
    correlation.logistic_fit([1, 2, 3], [1, 2, 3], "cubic")
  with pytest.raises(ValueError, match="fit"):
    correlation.plcc([1, 2, 3], [1, 2, 3], fit="linear")
  with pytest.raises(ValueError, match="constant"):
    correlation.logistic_fit([1, 1, 1], [1, 2, 3], "logistic4")
  # A constant input: NaN with a warning, as SciPy (no crash in an evaluation loop).
  for fn in (correlation.srocc, correlation.krocc, correlation.plcc):
    with pytest.warns(RuntimeWarning, match="constant"):
      assert np.isnan(fn([2, 2, 2, 2], [1, 2, 3, 4]))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    correlation.srocc([1, 2, 3], [3, 1, 2])
