"""The driver, registry and samplers: levels as the original, errors, determinism,
batched mixed types == per-image calls, continuous parameters."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax.distortions import (DISTORTIONS, LEVEL_TABLE, distort, distort_param,
                                    distort_runs, kadis_assignment, kadis_type,
                                    read_kadis_csv, sample_type_level)
from deepfl_jax.distortions._common import mapmm
from deepfl_jax.distortions.color import color_diffusion
from deepfl_jax.distortions.jpeg import jpeg
from deepfl_jax.distortions.registry import BY_NAME

# The `levels` arrays of the KADIS-700k generator's imdist_generator.m.
GENERATOR_LEVELS = {
    1: (0.1, 0.5, 1, 2, 5), 2: (1, 2, 4, 6, 8), 3: (1, 2, 4, 6, 10),
    4: (1, 3, 6, 8, 12), 5: (1, 3, 6, 8, 12), 6: (64, 48, 32, 16, 8),
    7: (0.4, 0.2, 0.1, 0, -0.4), 8: (1, 2, 3, 6, 9), 9: (16, 32, 45, 120, 400),
    10: (43, 36, 24, 7, 4), 11: (0.001, 0.002, 0.003, 0.005, 0.01),
    12: (0.0001, 0.0005, 0.001, 0.002, 0.003), 13: (0.001, 0.005, 0.01, 0.02, 0.03),
    14: (0.001, 0.005, 0.01, 0.02, 0.05), 15: (0.01, 0.03, 0.05, 0.1, 0.15),
    16: (0.1, 0.2, 0.4, 0.7, 1.1), 17: (0.05, 0.1, 0.2, 0.4, 0.8),
    18: (0.15, 0.08, 0, -0.08, -0.15), 19: (0.05, 0.1, 0.2, 0.5, 1),
    20: (20, 40, 60, 80, 100), 21: (0.01, 0.05, 0.1, 0.2, 0.5),
    22: (20, 16, 13, 10, 7), 23: (2, 4, 6, 8, 10), 24: (1, 2, 3, 6, 12),
    25: (0.3, 0.15, 0, -0.4, -0.6)}
STOCHASTIC = {3, 5, 11, 12, 13, 14, 15, 19, 20, 23}
# Cheap types spanning every group, stochastic and deterministic, for the mixed batch.
MIXED = (1, 3, 5, 11, 13, 17, 20, 21, 23, 25)


def _image(seed=0, h=56, w=64):
  """A smooth random colour image (H, W, 3) in [0, 1] with full range."""
  rng = np.random.default_rng(seed)
  base = rng.uniform(size=(h // 8 + 1, w // 8 + 1, 3))
  img = np.kron(base, np.ones((8, 8, 1)))[:h, :w]
  img = img + 0.05 * rng.normal(size=img.shape)
  img = (img - img.min()) / (img.max() - img.min())
  return jnp.asarray(img, jnp.float32)


def test_registry_matches_imdist_generator():
  assert sorted(DISTORTIONS) == list(range(1, 26))
  for i, d in DISTORTIONS.items():
    assert d.id == i
    assert d.levels == tuple(float(v) for v in GENERATOR_LEVELS[i]), i
    assert d.stochastic == (i in STOCHASTIC), i
    np.testing.assert_array_equal(LEVEL_TABLE[i - 1], GENERATOR_LEVELS[i])
  assert {d.group for d in DISTORTIONS.values()} == {
      "blur", "color", "compression", "noise", "brightness", "spatial",
      "sharpness_contrast"}
  assert BY_NAME["gaussian_blur"].id == 1 and BY_NAME["contrast_change"].id == 25
  assert [DISTORTIONS[i].kadis_name for i in (1, 8, 22, 24)] == [
      "gblur", "saturate", "noisequantize", "sharpenHi"]


def test_output_range_and_mapmm():
  x = _image() * 0.5 + 0.2          # the driver stretches the input first
  y = distort(x, 17, 2, jax.random.PRNGKey(0))
  assert y.shape == x.shape
  assert float(y.min()) == 0.0 and float(y.max()) == pytest.approx(1.0, abs=1e-6)
  # Mean shift level 3 (shift 0) is the identity up to the two stretches.
  y = distort(x, 18, 3, jax.random.PRNGKey(0))
  np.testing.assert_allclose(y, (x - x.min()) / (x.max() - x.min()), atol=1e-6)


def test_bad_input_errors():
  x = _image()
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match="unknown distortion type"):
    distort(x, 26, 1, key)
  with pytest.raises(ValueError, match="unknown distortion type"):
    distort(x, 0, 1, key)
  with pytest.raises(ValueError, match="unknown level"):
    distort(x, 1, 6, key)
  with pytest.raises(ValueError, match="unknown level"):
    distort(x, 1, 0, key)
  with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
    distort(x[..., :2], 1, 1, key)
  with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
    distort(x[..., 0], 1, 1, key)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    distort(x * 2.0, 1, 1, key)
  with pytest.raises(ValueError, match="NaN"):
    distort(x.at[0, 0, 0].set(jnp.nan), 1, 1, key)
  with pytest.raises(ValueError, match="too small for type 23"):
    distort(x[:32], 23, 1, key)
  with pytest.raises(ValueError, match="too small for type 20"):
    distort(x[:48], 20, 1, key)
  with pytest.raises(ValueError, match="shape"):
    distort(jnp.stack([x, x]), jnp.array([1, 2, 3]), 1, key)
  # A batch whose types include a too-small one fails as a whole.
  with pytest.raises(ValueError, match="too small"):
    distort(jnp.stack([x[:40], x[:40]]), jnp.array([1, 20]), 1, key)


def test_small_images_allowed_at_the_limit():
  x = _image(h=49, w=49)
  assert distort(x, 20, 5, jax.random.PRNGKey(0)).shape == x.shape
  assert distort(x[:33, :33], 23, 5, jax.random.PRNGKey(0)).shape == (33, 33, 3)


def test_uint8_input_equals_float():
  x = np.asarray(_image() * 255).round().astype(np.uint8)
  a = distort(x, 2, 3, jax.random.PRNGKey(0))
  b = distort(jnp.asarray(x, jnp.float32) / 255, 2, 3, jax.random.PRNGKey(0))
  np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("t", sorted(STOCHASTIC - {15}))
def test_determinism(t):
  x = _image()
  k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
  a = distort(x, t, 4, k1)
  np.testing.assert_array_equal(a, distort(x, t, 4, k1))
  assert float(jnp.max(jnp.abs(a - distort(x, t, 4, k2)))) > 1e-3


def test_deterministic_types_ignore_the_key():
  x = _image()
  for t in (1, 21, 25):
    np.testing.assert_array_equal(distort(x, t, 3, jax.random.PRNGKey(1)),
                                  distort(x, t, 3, jax.random.PRNGKey(2)))


def _mixed_batch():
  """(images, types, levels, the key, its per-image split) of the MIXED types."""
  n = len(MIXED)
  key = jax.random.PRNGKey(7)
  return (jnp.stack([_image(seed=i) for i in range(n)]), jnp.asarray(MIXED),
          jnp.asarray([(i % 5) + 1 for i in range(n)]), key, jax.random.split(key, n))


@pytest.mark.slow
def test_batched_mixed_types_equal_per_image_calls():
  n = len(MIXED)
  imgs, types, levels, key, keys = _mixed_batch()
  grouped = distort(imgs, types, levels, key)
  switched = distort(imgs, types, levels, key, strategy="switch", branches=MIXED)
  for i in range(n):
    single = distort(imgs[i], int(types[i]), int(levels[i]), keys[i])
    np.testing.assert_allclose(grouped[i], single, atol=2e-6, err_msg=str(MIXED[i]))
    np.testing.assert_allclose(switched[i], single, atol=2e-6, err_msg=str(MIXED[i]))
  # Explicit per-image keys give the same as the split key.
  np.testing.assert_array_equal(distort(imgs, types, levels, keys), grouped)


@pytest.mark.slow
def test_distort_runs_equals_distort_and_runs_only_its_types():
  imgs, types, levels, _, keys = _mixed_batch()
  f = jax.jit(lambda x, t, l, k: distort_runs(x, t, l, k, branches=MIXED))
  np.testing.assert_allclose(f(imgs, types, levels, keys),
                             distort(imgs, types, levels, keys), atol=2e-6)
  # Runs of two images share the type of their first image.
  pairs = jnp.repeat(types[::2], 2)
  g = jax.jit(lambda x, t, l, k: distort_runs(x, t, l, k, run=2, branches=MIXED))
  np.testing.assert_allclose(g(imgs, types, levels, keys),
                             distort(imgs, pairs, levels, keys), atol=2e-6)
  # A type outside the compiled branches gives NaN; the run length must divide N.
  bad = f(imgs, types.at[0].set(2), levels, keys)
  assert bool(jnp.all(jnp.isnan(bad[0]))) and bool(jnp.all(jnp.isfinite(bad[1:])))
  with pytest.raises(ValueError, match="run=3 must divide"):
    distort_runs(imgs, types, levels, keys, run=3)


@pytest.mark.slow
def test_distort_runs_colour_quantization_palette_sizes():
  """Type 6 in `distort_runs` searches 8 to 64 palette slots by the run's largest n:
  the same images as `distort` at every level, runs of one level or of mixed levels."""
  rng = np.random.default_rng(6)
  imgs = jnp.asarray(rng.uniform(size=(5, 40, 48, 3)), jnp.float32)
  types, levels = jnp.full((5,), 6), jnp.arange(1, 6)
  keys = jax.random.split(jax.random.PRNGKey(0), 5)
  want = distort(imgs, types, levels, keys)
  for run in (1, 5):
    f = jax.jit(lambda x, t, l, k, r=run: distort_runs(x, t, l, k, run=r, branches=(6,)))
    np.testing.assert_array_equal(f(imgs, types, levels, keys), want)


def test_no_type_calls_back_to_the_host_in_compiled_runs():
  """The lowered program of each of the 25 types (as the training stream compiles it)
  holds no host callback; type 22's exact host search is one, on request."""
  x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
  t = jax.ShapeDtypeStruct((2,), jnp.int32)
  k = jax.ShapeDtypeStruct((2, 2), jnp.uint32)

  def text(tid, **kw):
    f = jax.jit(lambda x, t, l, k: distort_runs(x, t, l, k, branches=(tid,), **kw))
    return f.lower(x, t, t, k).as_text()

  for tid in DISTORTIONS:
    assert "callback" not in text(tid), tid
  assert "callback" in text(22, host_otsu=True)


def test_switch_inside_user_jit_and_outside_branches():
  imgs = jnp.stack([_image(seed=i) for i in range(3)])
  types = jnp.asarray([1, 21, 25])
  f = jax.jit(lambda x, t, l: distort(x, t, l, jax.random.PRNGKey(0), branches=(1, 21, 25)))
  out = f(imgs, types, jnp.asarray([2, 3, 4]))
  ref = distort(imgs, types, jnp.asarray([2, 3, 4]), jax.random.PRNGKey(0))
  np.testing.assert_allclose(out, ref, atol=2e-6)
  # A traced type that is not compiled in yields NaN rather than a silent copy.
  bad = f(imgs, jnp.asarray([1, 2, 25]), jnp.asarray([2, 3, 4]))
  assert bool(jnp.all(jnp.isnan(bad[1]))) and bool(jnp.all(jnp.isfinite(bad[0])))
  with pytest.raises(ValueError, match="not among branches"):
    distort(imgs, jnp.asarray([1, 2, 25]), 1, jax.random.PRNGKey(0), branches=(1, 25))


def test_distort_param_equals_levels_and_interpolates():
  x = _image()
  key = jax.random.PRNGKey(3)
  for t, lv in ((1, 4), (11, 2), (20, 3), (22, 5)):
    np.testing.assert_allclose(
        distort_param(x, t, DISTORTIONS[t].levels[lv - 1], key), distort(x, t, lv, key),
        atol=1e-6)
  # A sigma between two levels blurs between them.
  ref = (x - x.min()) / (x.max() - x.min())
  err = [float(jnp.mean((distort_param(x, 1, s, key) - ref) ** 2)) for s in (1.0, 1.5, 2.0)]
  assert err[0] < err[1] < err[2]
  # Batched continuous parameters under a user's jit (contrastive composition).
  imgs = jnp.stack([x, x])
  f = jax.jit(lambda p: distort_param(imgs, jnp.asarray([1, 2]), p, key, branches=(1, 2)))
  out = f(jnp.asarray([0.7, 3.3]))
  assert out.shape == imgs.shape and bool(jnp.all(jnp.isfinite(out)))


def test_kadis_assignment_with_type_7_8_quirk(tmp_path):
  csv = tmp_path / "kadis700k_ref_imgs.csv"
  csv.write_text("ref_im,dist_type_1,dist_type_2\n"
                 "a.png,7,8\nb.png,7,3\nc.png,22,8\nd.png,1,\n")
  jobs = kadis_assignment(read_kadis_csv(csv))
  assert len(jobs) == 20
  assert [j.dist_type for j in jobs[::5]] == [8, 7, 22, 1]
  assert [j.level for j in jobs[:5]] == [1, 2, 3, 4, 5]
  assert jobs[0].dist_im == "a_08_01.bmp" and jobs[14].dist_im == "c_22_05.bmp"
  assert kadis_type(7, 8) == 8 and kadis_type(7, 7) == 7 and kadis_type(8, 1) == 8
  with pytest.raises(ValueError):
    kadis_type(26, 1)


def test_sample_type_level_uniform():
  n = 25000
  t, l = sample_type_level(jax.random.PRNGKey(0), n)
  t, l = np.asarray(t), np.asarray(l)
  assert t.min() == 1 and t.max() == 25 and l.min() == 1 and l.max() == 5
  counts = np.bincount((t - 1) * 5 + (l - 1), minlength=125)
  expected = n / 125
  chi2 = float(np.sum((counts - expected) ** 2 / expected))
  assert chi2 < 124 + 5 * np.sqrt(2 * 124)       # ~5 sigma above the dof
  t2, l2 = sample_type_level(jax.random.PRNGKey(1), 1000, types=[3, 9], levels=[5])
  assert set(np.unique(np.asarray(t2))) == {3, 9} and set(np.asarray(l2)) == {5}
  with pytest.raises(ValueError):
    sample_type_level(jax.random.PRNGKey(1), 10, types=[0])


@pytest.mark.slow
@pytest.mark.parametrize("t", [3, 5, 11, 12, 13, 14, 19, 20, 23])
def test_fn_is_draws_then_apply(t):
  """All randomness of a stochastic type comes from its `draws(key, shape)`."""
  d = DISTORTIONS[t]
  x = _image()
  key = jax.random.PRNGKey(11)
  p = jnp.float32(d.levels[2])
  np.testing.assert_array_equal(d.fn(x, p, key), d.apply(x, p, d.draws(key, x.shape)))


def test_flat_image_stays_flat_and_finite():
  """A flat image is left unstretched by mapmm, so float rounding noise (FFT filter,
  Lab round trip) is not blown up to the full range."""
  x = jnp.full((56, 64, 3), 0.4, jnp.float32)
  for t in (2, 8, 16, 21):
    y = distort(x, t, 5, jax.random.PRNGKey(0))
    assert bool(jnp.all(jnp.isfinite(y))), t
    assert float(y.max() - y.min()) < 1e-4, t


@pytest.mark.slow
def test_jpeg_constant_level_programs_equal_the_traced_one():
  """Type 10 at a KADID level runs a constant-quality program (chosen on the host when
  the levels are concrete and equal); it must equal the traced-quality codec, and other qualities
  (distort_param, a batch of mixed levels) take the traced program."""
  imgs = jnp.stack([_image(seed=i, h=40, w=56) for i in range(5)])
  traced = jax.jit(jax.vmap(lambda x, q: mapmm(jpeg(mapmm(x), q))))
  qs = jnp.asarray(GENERATOR_LEVELS[10], jnp.float32)
  ref = traced(imgs, qs)
  key = jax.random.PRNGKey(0)
  for lv in range(1, 6):
    np.testing.assert_array_equal(distort(imgs[lv - 1], 10, lv, key), ref[lv - 1])
  # Mixed levels in one group, and the stream's form.
  levels = jnp.arange(1, 6)
  np.testing.assert_array_equal(distort(imgs, 10, levels, key), ref)
  keys = jax.random.split(key, 5)
  runs = jax.jit(lambda x, t, l, k: distort_runs(x, t, l, k, branches=(10,)))
  np.testing.assert_array_equal(runs(imgs, jnp.full(5, 10), levels, keys), ref)
  # A quality between the levels: the traced program.
  np.testing.assert_array_equal(distort_param(imgs[0], 10, 30.0, key),
                                traced(imgs[:1], jnp.asarray([30.0]))[0])


@pytest.mark.slow
def test_colour_diffusion_level_programs_equal_the_traced_one():
  """Type 4 at a KADID level blurs with that level's own Gaussian support (the taps
  beyond it are zero): equal to the traced-amount program up to float32 summation."""
  x = _image(seed=3, h=48, w=64)
  traced = jax.jit(lambda a, p: mapmm(color_diffusion(mapmm(a), p)))
  key = jax.random.PRNGKey(0)
  for lv, amount in enumerate(GENERATOR_LEVELS[4], start=1):
    np.testing.assert_allclose(distort(x, 4, lv, key), traced(x, jnp.float32(amount)),
                               atol=5e-5)

