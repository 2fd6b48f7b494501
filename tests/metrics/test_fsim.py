"""FSIM / FSIMc against the MATLAB goldens (docs/matlab_parity.md section 3).

FeatureSIM(imageRef, imageDis) is symmetric; the goldens were recorded as
FeatureSIM(goldhill_jpeg, goldhill) and FeatureSIM(i01_01_5, I01) (distorted image in
the first slot), and these tests call it the same way (plus one swapped call).
"""
import importlib

import jax
import jax.numpy as jnp
import numpy as np

# The package namespace re-exports the function `fsim`, which hides the module.
fsim_lib = importlib.import_module("deepfl_jax.metrics.fsim")

# MATLAB goldens (5 digits) and an independent NumPy port's values (7 digits).
GOLDHILL, GOLDHILL_PORT = 0.89691, 0.8969130
I01_FSIM, I01_FSIM_PORT = 0.93674, 0.9367379
I01_FSIMC, I01_FSIMC_PORT = 0.92587, 0.9258712


def test_goldhill_grey_golden(golden, x64):
  v = float(fsim_lib.fsim(golden["goldhill_jpeg"], golden["goldhill"])[0])
  assert abs(v - GOLDHILL) <= 2e-5, v
  assert abs(v - GOLDHILL_PORT) <= 1e-6, v       # NumPy-port cross-check
  # FSIMc of grey input is defined as FSIM (FeatureSIM.m sets I = Q = 1).
  vc = float(fsim_lib.fsimc(golden["goldhill_jpeg"], golden["goldhill"])[0])
  assert vc == v


def test_i01_rgb_goldens_and_symmetry(golden, x64):
  x, y = fsim_lib._prepare(golden["i01_01_5"], golden["I01"], "fsim")
  f, fc = (float(v[0]) for v in fsim_lib.fsim_core(x, y))
  assert abs(f - I01_FSIM) <= 2e-5, f
  assert abs(fc - I01_FSIMC) <= 2e-5, fc
  assert abs(f - I01_FSIM_PORT) <= 1e-6, f        # NumPy-port cross-checks
  assert abs(fc - I01_FSIMC_PORT) <= 1e-6, fc
  # Public wrappers agree with the core; swapping the arguments changes nothing.
  assert float(fsim_lib.fsim(golden["i01_01_5"], golden["I01"])[0]) == f
  np.testing.assert_allclose(fsim_lib.fsimc(golden["I01"], golden["i01_01_5"]), fc,
                             rtol=0, atol=1e-12)


def test_float32_matches_float64(golden):
  ref, dist = golden["I01"], golden["i01_01_5"]
  f32 = np.asarray(fsim_lib.fsim_core(*fsim_lib._prepare(dist, ref, "fsim")))
  assert f32.dtype == np.float32
  with jax.enable_x64(True):
    f64 = np.asarray(fsim_lib.fsim_core(*fsim_lib._prepare(dist, ref, "fsim")))
  assert f64.dtype == np.float64
  # Measured about 6e-8 (FSIM) and 5e-8 (FSIMc).
  np.testing.assert_allclose(f32, f64, rtol=0, atol=1e-6)


def test_grey_equals_replicated_rgb(golden, x64):
  """RGB with R = G = B has Y = grey and I = Q = 0 (up to rounding of the YIQ rows)."""
  g, gj = golden["goldhill"][:200, :300], golden["goldhill_jpeg"][:200, :300]
  grey = fsim_lib.fsim_core(*fsim_lib._prepare(gj, g, "fsim"))
  rgb = fsim_lib.fsim_core(*fsim_lib._prepare(np.repeat(gj, 3, -1), np.repeat(g, 3, -1),
                                              "fsim"))
  np.testing.assert_allclose(rgb[0], grey[0], rtol=0, atol=1e-9)
  np.testing.assert_allclose(rgb[1], grey[1], rtol=0, atol=1e-9)
  assert float(grey[0][0]) < 1.0


def test_phase_congruency_range_and_flat_guard(x64):
  rng = np.random.default_rng(0)
  img = jnp.asarray(rng.random((2, 63, 80)) * 255)   # odd and even sides
  phase_congruency = jax.jit(fsim_lib.phase_congruency)
  pc = np.asarray(phase_congruency(img))
  assert pc.shape == (2, 63, 80)
  assert np.all(pc >= 0) and np.all(pc <= 1) and pc.max() > 0.1
  flat = np.asarray(phase_congruency(jnp.full((2, 63, 80), 128.0)))
  np.testing.assert_array_equal(flat, 0.0)       # MATLAB: 0/0 = NaN
