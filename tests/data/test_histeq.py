"""Histogram equalisation of the FR proxies (deepfl_jax/data/histeq.py).

Real-image orientation (a worse distortion gets a lower label for every metric) is
tested on metric scores in tests/data/test_synthesis.py, which computes them anyway.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from deepfl_jax.data import histeq
from deepfl_jax.metrics import HIGHER_IS_BETTER, METRIC_NAMES


def _sample(n=2000, seed=0):
  """Skewed raw scores per metric, different shapes (all continuous)."""
  rng = np.random.default_rng(seed)
  cols = [rng.beta(5, 1 + j % 3, n) if HIGHER_IS_BETTER[m] else rng.gamma(2, 0.05, n)
          for j, m in enumerate(METRIC_NAMES)]
  return np.stack(cols, axis=1).astype(np.float32).astype(np.float64)


def test_uniform_on_calibration_sample():
  s = _sample(3000)
  eq = histeq.fit(s, num_knots=4000)   # every value a knot: exact ranks
  u = np.asarray(histeq.equalize(eq, s))
  assert u.shape == s.shape
  assert u.min() >= 0 and u.max() <= 1
  for j, m in enumerate(METRIC_NAMES):
    # The labels are the (tie-averaged) ranks spread over [0, 1].
    r = (stats.rankdata(s[:, j]) - 1) / (len(s) - 1)
    np.testing.assert_allclose(u[:, j], r if HIGHER_IS_BETTER[m] else 1 - r, atol=2e-6,
                               err_msg=m)
    assert stats.kstest(u[:, j], "uniform").statistic < 0.01, m


def test_oriented_higher_is_better():
  s = _sample()
  u = np.asarray(histeq.equalize(histeq.fit(s), s))
  for j, m in enumerate(METRIC_NAMES):
    rho = stats.spearmanr(s[:, j], u[:, j]).statistic
    # Lower MDSI / GMSD = better image = higher label.
    assert rho == pytest.approx(1.0 if HIGHER_IS_BETTER[m] else -1.0, abs=1e-9), m


def test_ties_are_averaged():
  col = np.array([3.0, 1.0, 2.0, 2.0, 2.0, 5.0, 4.0, 4.0])
  values, cdf = histeq.ecdf_knots(col)
  np.testing.assert_array_equal(values, [1, 2, 3, 4, 5])
  # ranks: 1 | 2,3,4 -> 3 | 5 | 6,7 -> 6.5 | 8; cdf = (r - 1) / 7
  np.testing.assert_allclose(cdf, (np.array([1, 3, 5, 6.5, 8]) - 1) / 7)
  eq = histeq.fit(col[:, None], names=("x",))
  u = np.asarray(histeq.equalize(eq, col[:, None]))[:, 0]
  assert u[2] == u[3] == u[4]
  assert np.mean(u) == pytest.approx(0.5)  # mid-ranks keep the sample mean at 1/2
  assert histeq.fit(np.ones((5, 1)), names=("c",)).cdf[0, 0] == 0.5


def test_thinned_knots_and_clamping():
  rng = np.random.default_rng(1)
  s = rng.normal(size=(20000, 1))
  eq = histeq.fit(s, names=("x",), num_knots=101)
  assert eq.values.shape == (1, 101)
  u = np.asarray(histeq.equalize(eq, s))[:, 0]
  exact = (stats.rankdata(s[:, 0]) - 1) / (len(s) - 1)
  assert np.max(np.abs(u - exact)) < 0.02
  out = np.asarray(histeq.equalize(eq, np.array([[-100.0], [100.0]])))[:, 0]
  np.testing.assert_array_equal(out, [0.0, 1.0])


def test_jit_dict_input_and_nan():
  s = _sample(300)
  eq = histeq.fit({m: s[:, j] for j, m in enumerate(METRIC_NAMES)})
  eager = histeq.equalize(eq, s)
  jitted = jax.jit(histeq.equalize)(eq, jnp.asarray(s, jnp.float32))
  np.testing.assert_allclose(jitted, eager, atol=1e-6)
  d = histeq.equalize(eq, {m: s[:5, j] for j, m in enumerate(METRIC_NAMES)})
  np.testing.assert_allclose(d, eager[:5], atol=1e-6)
  s2 = s.copy()
  s2[0, 3] = np.nan
  eq2 = histeq.fit(s2)            # NaN is ignored when fitting ...
  assert eq2.num_samples[3] == len(s) - 1
  assert np.isnan(np.asarray(histeq.equalize(eq2, s2))[0, 3])  # ... and stays NaN


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_save_load_round_trip(tmp_path, suffix):
  s = _sample(500)
  eq = histeq.fit(s, num_knots=64)
  back = histeq.load(histeq.save(eq, tmp_path / f"eq{suffix}"))
  assert back.names == eq.names and back.num_samples == eq.num_samples
  np.testing.assert_array_equal(back.values, eq.values)
  np.testing.assert_array_equal(back.cdf, eq.cdf)
  np.testing.assert_array_equal(back.higher_is_better, eq.higher_is_better)
  np.testing.assert_array_equal(histeq.equalize(back, s), histeq.equalize(eq, s))


def test_from_kadis_score_file(tmp_path):
  s = _sample(40, seed=3)
  header = ("dist_im,ref_im,SSIM,MS-SSIM,IW-SSIM,MDSI,VSI,FSIM,GMSD,SFF,SCQI,ADD-GSIM,"
            "SR-SIM")
  lines = [header] + [f"im{i:03d}_gblur_01.bmp,im{i:03d}.png,"
                      + ",".join(repr(float(x)) for x in r) for i, r in enumerate(s)]
  lines[5] = lines[5].rsplit(",", 1)[0] + ",NaN"
  path = tmp_path / "kadis700k_friqa.csv"
  path.write_text("\n".join(lines) + "\n")
  read = histeq.read_score_file(path)
  assert read.shape == (40, 11) and np.isnan(read[4, 10])
  np.testing.assert_array_equal(read[:, :10], s[:, :10])
  eq = histeq.from_score_file(path)
  assert eq.num_samples == (40,) * 10 + (39,)
  u = np.asarray(histeq.equalize(eq, s))
  assert u[:, 6].argmax() == s[:, 6].argmin()   # GMSD flipped
  bad = tmp_path / "bad.csv"
  bad.write_text("dist_im,ref_im,SSIM\nx,y,0.5\n")
  with pytest.raises(ValueError, match="header"):
    histeq.read_score_file(bad)


def test_bad_input():
  with pytest.raises(ValueError, match=r"\(n, 11\)"):
    histeq.fit(np.zeros((10, 3)))
  with pytest.raises(ValueError, match="finite"):
    histeq.fit(np.full((4, 1), np.nan), names=("x",))
  eq = histeq.fit(_sample(50))
  with pytest.raises(ValueError, match="columns"):
    histeq.equalize(eq, np.zeros((2, 3)))


def _write_score_file(path, s):
  header = ("dist_im,ref_im,SSIM,MS-SSIM,IW-SSIM,MDSI,VSI,FSIM,GMSD,SFF,SCQI,ADD-GSIM,"
            "SR-SIM")
  lines = [header] + [f"im{i:05d}_gblur_01.bmp,im{i:05d}.png,"
                      + ",".join(repr(float(x)) for x in r) for i, r in enumerate(s)]
  path.write_text("\n".join(lines) + "\n")
  return path


# Stated bounds: on the calibration sample itself (mid-rank ECDF, no ties) the KS
# statistic is about 1 / n; on a fresh sample equalised with the calibration CDF it is
# a two-sample statistic, whose 1% critical value is 1.63 sqrt(2 / n).
def test_own_equaliser_makes_every_target_uniform(tmp_path):
  """Issue 11 item 2: the default equaliser (fitted on our own scores) gives uniform
  targets for every metric, on the calibration sample (KS <= 2 / n) and on a fresh
  sample of the same distribution (KS <= 1.63 sqrt(2 / n), the two-sample 1% critical
  value).
  The published CDFs of metrics on another scale (a proxy scored higher, say) do not:
  their targets pile up at the ends (KS > 0.25)."""
  n = 3000
  ours, fresh = _sample(n, seed=1), _sample(n, seed=2)
  eq = histeq.choose(lambda: histeq.fit(ours))
  ks_calib = histeq.ks_uniform(np.asarray(histeq.equalize(eq, ours)))
  assert np.all(ks_calib <= 2.0 / n), ks_calib
  ks_fresh = histeq.ks_uniform(np.asarray(histeq.equalize(eq, fresh)))
  assert np.all(ks_fresh <= 1.63 * np.sqrt(2 / n)), ks_fresh
  # A published file whose scqi_proxy/add_gsim_proxy/sff columns are on another
  # scale: those CDFs are wrong for our scores (and may not be requested) ...
  published = ours.copy()
  j = [METRIC_NAMES.index(m) for m in ("sff", "scqi_proxy", "add_gsim_proxy")]
  published[:, j] = 0.5 * published[:, j] + 0.5          # compressed towards 1
  path = _write_score_file(tmp_path / "kadis700k_friqa.csv", published)
  wrong = histeq.equalize(histeq.from_score_file(path), fresh)
  assert np.all(histeq.ks_uniform(np.asarray(wrong))[j] > 0.25)
  with pytest.raises(ValueError, match="MATLAB"):
    histeq.choose(lambda: eq, source="published", score_file=str(path),
                  published_metrics=("ssim", "scqi_proxy"))
  # ... while "published" with the default metric set keeps our CDFs for them and
  # takes the file's for the MATLAB-parity metrics (equal to ours here: same data).
  mixed = histeq.choose(lambda: histeq.fit(fresh), source="published",
                        score_file=str(path))
  u = np.asarray(histeq.equalize(mixed, fresh))
  assert np.all(histeq.ks_uniform(u) <= 1.63 * np.sqrt(2 / n))
  own_rows = np.asarray(histeq.fit(fresh).values)
  for k, m in enumerate(METRIC_NAMES):
    from_file = np.asarray(histeq.from_score_file(path).values)[k]
    want = from_file if m in histeq.MATLAB_PARITY else own_rows[k]
    np.testing.assert_array_equal(np.asarray(mixed.values)[k][:want.size], want)


def test_choose_errors():
  eq = histeq.fit(_sample(50))
  with pytest.raises(ValueError, match="score_file"):
    histeq.choose(lambda: eq, source="published")
  with pytest.raises(ValueError, match="unknown source"):
    histeq.choose(lambda: eq, source="kadis")
  assert histeq.ks_uniform(np.linspace(0, 1, 101))[0] < 0.011
  assert histeq.ks_uniform(np.full(50, 0.9))[0] == pytest.approx(0.9)
