"""Colour quantisation (type 6, deepfl_jax.distortions.quantize): MATLAB rgb2ind's
minimum-variance palette + Floyd-Steinberg dithering, checked for its properties (no
reference output exists: Octave's rgb2ind cannot do it)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from deepfl_jax.distortions import quantize

_cq = jax.jit(quantize.color_quantization)                      # n traced: one compile
_cq_plain = jax.jit(lambda x, n: quantize.color_quantization(x, n, None, dither=False))


@pytest.fixture(scope="module")
def image():
  """96x128 colourful crop (astronaut: skin, suit, flag), float32 in [0, 1]."""
  u8 = skimage.data.astronaut()[40:232:2, 64:320:2]
  return jnp.asarray(u8 / 255.0, jnp.float32)


def _block_means(x, b=8):
  h, w, _ = x.shape
  x = np.asarray(x, np.float64)[:h - h % b, :w - w % b]
  return x.reshape(h // b, b, w // b, b, 3).mean(axis=(1, 3))


def _psnr(a, b):
  return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - np.asarray(b)) ** 2))


@pytest.fixture(scope="module")
def outputs(image):
  return {n: np.asarray(_cq(image, jnp.float32(n), None)) for n in (64, 48, 32, 16, 8)}


def test_at_most_n_colours(outputs, image):
  for n, out in outputs.items():
    assert out.shape == image.shape
    k = len(np.unique(out.reshape(-1, 3), axis=0))
    # A natural image has far more than 64 colours, so all n boxes get used.
    assert n // 2 <= k <= n, (n, k)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_more_colours_less_error(outputs, image):
  psnr = [_psnr(image, outputs[n]) for n in (8, 16, 32, 48, 64)]
  assert all(a < b for a, b in zip(psnr, psnr[1:])), psnr


def test_error_diffusion_preserves_local_means(image):
  # With a palette spanning the gamut (the 8 cube corners) every colour is inside its
  # hull, so Floyd-Steinberg must keep local means: measured 8x8-block mean error 0.013
  # (0.17 for nearest-colour mapping); the global mean moves by < 1e-3.
  rgb = jnp.round(image * 255)
  corners = jnp.asarray([[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)],
                        jnp.float32)
  valid = jnp.ones(8, bool)
  dith = np.asarray(corners)[np.asarray(jax.jit(quantize.floyd_steinberg)(rgb, corners,
                                                                          valid))]
  plain = np.asarray(corners)[np.asarray(quantize._nearest(rgb, corners, valid))]
  ref = _block_means(rgb)
  assert np.abs(_block_means(dith) - ref).mean() / 255 < 0.02
  assert np.abs(_block_means(plain) - ref).mean() / 255 > 0.1
  np.testing.assert_allclose(dith.mean((0, 1)), np.asarray(rgb).mean((0, 1)), atol=0.5)


def test_dithering_keeps_local_means_closer(outputs, image):
  # With Wu's palette (box means: the most saturated colours lie outside the palette's
  # hull, where no diffusion can restore the mean) the gain is smaller but systematic.
  # Measured 8x8 mean errors, dithered / nearest: n=64 0.0038/0.0047, n=16 0.0100/0.0130,
  # n=8 0.0248/0.0256.
  ref = _block_means(image)
  for n in (64, 16, 8):
    dith = np.abs(_block_means(outputs[n]) - ref).mean()
    plain = np.abs(_block_means(_cq_plain(image, jnp.float32(n))) - ref).mean()
    assert dith < plain, (n, dith, plain)
    assert dith < 0.03, (n, dith)


def test_exact_when_image_has_few_colours():
  # Four colours in distinct histogram cells, n = 8: every box is one colour, so the
  # palette holds them exactly and neither mapping nor dithering changes anything.
  colours = np.array([[10, 200, 30], [250, 250, 250], [0, 0, 0], [120, 60, 200]])
  idx = np.random.default_rng(0).integers(0, 4, size=(96, 128))   # the compiled shape
  x = jnp.asarray(colours[idx] / 255.0, jnp.float32)
  np.testing.assert_allclose(np.asarray(_cq(x, jnp.float32(8), None)), x, atol=2e-6)


def test_wavefront_floyd_steinberg_equals_sequential(image):
  rgb = np.round(np.asarray(image[:13, :19], np.float64) * 255)

  @jax.jit
  def run(x):
    palette, valid = quantize.wu_palette(x.astype(jnp.int32), 6, max_colors=8)
    return quantize.floyd_steinberg(x, palette, valid), palette, valid

  got, palette, valid = (np.asarray(a) for a in run(jnp.asarray(rgb, jnp.float32)))
  pal, ok = np.asarray(palette, np.float64), np.asarray(valid)
  assert ok.sum() == 6
  err = np.zeros((14, 21, 3))
  want = np.zeros((13, 19), int)
  for r in range(13):                         # plain raster-order Floyd-Steinberg
    for c in range(19):
      v = np.clip(rgb[r, c] + err[r, c + 1], 0, 255)
      d = np.where(ok, ((v - pal) ** 2).sum(1), np.inf)
      want[r, c] = k = int(np.argmin(d))
      e = v - pal[k]
      err[r, c + 2] += 7 / 16 * e
      err[r + 1, c:c + 3] += np.outer([3 / 16, 5 / 16, 1 / 16], e)
  np.testing.assert_array_equal(got, want)


def test_constant_palette_size_equals_the_traced_one():
  """A Python n sizes the palette itself (n slots, 2(n - 1) splits, not 64): the same
  palette and dither as a traced n, bit for bit."""
  rng = np.random.default_rng(4)
  x = jnp.asarray(np.kron(rng.uniform(size=(4, 6, 3)), np.ones((6, 7, 1))), jnp.float32)
  traced = jax.jit(quantize.color_quantization)
  for n in (64, 48, 32, 16, 8):
    const = jax.jit(lambda a, n=n: quantize.color_quantization(a, n))
    np.testing.assert_array_equal(const(x), traced(x, jnp.float32(n)))


def test_palette_slots_equal_the_full_palette():
  """The dither searching only the first palette_slots entries (`distort_runs` sizes
  them by n) gives the 64-slot result bit for bit when n <= slots; n above is clamped."""
  rng = np.random.default_rng(5)
  x = jnp.asarray(np.kron(rng.uniform(size=(5, 6, 3)), np.ones((6, 7, 1))), jnp.float32)
  x = jnp.clip(x + 0.05 * jnp.asarray(rng.normal(size=x.shape), jnp.float32), 0, 1)
  full = jax.jit(quantize.color_quantization)
  for slots in (8, 16, 32):
    sized = jax.jit(lambda a, n, s=slots: quantize.color_quantization(a, n, palette_slots=s))
    for n in (slots // 2 + 1, slots):
      np.testing.assert_array_equal(sized(x, jnp.float32(n)), full(x, jnp.float32(n)))
    np.testing.assert_array_equal(sized(x, jnp.float32(64)), full(x, jnp.float32(slots)))
