"""MATLAB primitives (docs/matlab_parity.md section 1): tested once, before the metrics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.ops import filters, matlab, resize, frequency


def test_matlab_round_half_away_from_zero():
  assert [matlab.matlab_round(v) for v in (1.5, 2.5, -2.5, 0.49)] == [2, 3, -3, 0]
  np.testing.assert_array_equal(
      matlab.round_half_away(jnp.array([1.5, 2.5, -2.5, 0.49])), [2, 3, -3, 0])
  assert matlab.downsample_factor(640, 700) == 3   # Python's round would give 2
  assert matlab.downsample_factor(384, 512) == 2


def test_conv2_same_even_kernel_is_matlab_not_scipy():
  x = jnp.array([[1.0, 2.0, 3.0]])
  np.testing.assert_allclose(filters.conv2(x, [[1.0, 1.0]], "same"), [[3, 5, 3]])
  np.testing.assert_allclose(filters.conv2(x, [[1.0, 1.0]], "full"), [[1, 3, 5, 3]])
  np.testing.assert_allclose(filters.conv2(x, [[1.0, 2.0]], "valid"), [[4, 7]])


@pytest.mark.parametrize("k", [2, 3, 4, 10])
def test_imfilter_anchor(k):
  """out[r] = sum_u K[u] x[r + u - (k-1)//2], zero boundary (MATLAB imfilter)."""
  rng = np.random.default_rng(k)
  x = rng.normal(size=(13, 17))
  kern = rng.normal(size=(k, k))
  a = (k - 1) // 2
  xp = np.pad(x, ((a, k - 1 - a), (a, k - 1 - a)))
  want = np.array([[np.sum(kern * xp[r:r + k, c:c + k]) for c in range(17)]
                   for r in range(13)])
  with jax.enable_x64(True):
    np.testing.assert_allclose(filters.imfilter(jnp.asarray(x), kern), want, atol=1e-10)
    # A rank-1 kernel takes the separable path and must agree as well.
    sep = np.outer(rng.normal(size=k), rng.normal(size=k))
    xs = np.pad(x, ((a, k - 1 - a), (a, k - 1 - a)), mode="symmetric")
    want_sep = np.array([[np.sum(sep * xs[r:r + k, c:c + k]) for c in range(17)]
                         for r in range(13)])
    got = filters.imfilter(jnp.asarray(x), sep, "symmetric")
    np.testing.assert_allclose(got, want_sep, atol=1e-10)


def _subsample_ref(x, f, mode):
  """Literal MATLAB: filter 'same' with ones(f)/f^2 then take x(1:f:end, 1:f:end)."""
  a = (f - 1) // 2
  xp = np.pad(x, ((a, f - 1 - a), (a, f - 1 - a)),
              mode="symmetric" if mode == "A" else "constant")
  full = np.array([[xp[r:r + f, c:c + f].mean() for c in range(x.shape[1])]
                   for r in range(x.shape[0])])
  return full[::f, ::f]


@pytest.mark.parametrize("f", [2, 3, 4])
@pytest.mark.parametrize("flavour", ["A", "B"])
def test_avg_subsample_odd_sizes(f, flavour):
  x = np.random.default_rng(0).normal(size=(11, 14))
  with jax.enable_x64(True):
    got = filters.avg_subsample(jnp.asarray(x), f, flavour)
  np.testing.assert_allclose(got, _subsample_ref(x, f, flavour), atol=1e-12)


def test_imresize_ramp_matches_matlab():
  x = np.arange(16, dtype=np.float64).reshape(4, 4)
  with jax.enable_x64(True):
    out = np.asarray(resize.imresize(jnp.asarray(x), size=(3, 3)))
  np.testing.assert_allclose(out[0], [0.7506, 2.1004, 3.4503], atol=1e-4)
  # The ramp is linear, so out[1, 0] = 4 * 1.5 + out[0, 0] / 5 (= 6.1501).
  np.testing.assert_allclose(out[1, :2], [6.0 + out[0, 0] / 5, 7.5], atol=1e-12)
  # Scale form: output ceil(0.25 * n) samples, rows sum to one.
  m = resize.resize_matrix(37, scale=0.25)
  assert m.shape == (10, 37)
  np.testing.assert_allclose(m.sum(axis=1), 1.0)


def test_reductions():
  x = jnp.asarray(np.arange(12.0).reshape(3, 4))
  assert float(matlab.std2(x)) == pytest.approx(np.std(np.arange(12.0), ddof=1))
  assert float(matlab.mad(x)) == pytest.approx(3.0)
  assert float(jnp.median(jnp.array([4.0, 1.0, 3.0, 2.0]))) == 2.5


def test_kovesi_grid_zero_frequency_at_origin():
  r, _ = frequency.kovesi_grid(5, 6)
  assert r[0, 0] == 0.0 and r.shape == (5, 6)
