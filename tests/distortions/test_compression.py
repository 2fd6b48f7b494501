"""JPEG (type 10) and JPEG 2000 (type 9) of deepfl_jax.distortions.compression against
the real codecs (Pillow's libjpeg-turbo and OpenJPEG) and the Octave references."""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from PIL import Image

from deepfl_jax.distortions import compression

KADID_QUALITIES = (43, 36, 24, 7, 4)
KADID_RATIOS = (16, 32, 45, 120, 400)

# One compile per image shape: the parameter is traced.
_jpeg = jax.jit(compression.jpeg)
_jp2 = jax.jit(compression.jpeg2000)


def _psnr(a, b, peak=255.0):
  return 10 * np.log10(peak ** 2 / np.mean((np.asarray(a, np.float64)
                                            - np.asarray(b, np.float64)) ** 2))


def _as_u8(x):
  return np.round(np.asarray(x, np.float64) * 255).astype(np.uint8)


def _mapmm(a):
  a = np.asarray(a, np.float64)
  return (a - a.min()) / (a.max() - a.min())


@pytest.fixture(scope="module")
def images():
  """A 384x512 crop (KADID's size) and an odd-sized crop (partial blocks, odd chroma)."""
  return {"astronaut_384x512": skimage.data.astronaut()[50:434, :512],
          "coffee_157x233": skimage.data.coffee()[3:160, 5:238]}


def _pillow_jpeg(u8, quality):
  buf = io.BytesIO()
  Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
  buf.seek(0)
  img = Image.open(buf)
  return np.asarray(img.convert("RGB")), img.quantization


def _pillow_jp2(u8, ratio, **options):
  buf = io.BytesIO()
  Image.fromarray(u8).save(buf, format="JPEG2000", quality_mode="rates",
                           quality_layers=[ratio], **options)
  buf.seek(0)
  return np.asarray(Image.open(buf).convert("RGB"))


# --- JPEG ------------------------------------------------------------------------------

def test_ijg_tables_match_libjpeg():
  for q in KADID_QUALITIES + (50, 90):
    _, tables = _pillow_jpeg(np.zeros((8, 8, 3), np.uint8), q)
    luma, chroma = compression.ijg_quant_tables(q)
    np.testing.assert_array_equal(np.asarray(luma).ravel(), tables[0])
    np.testing.assert_array_equal(np.asarray(chroma).ravel(), tables[1])
  # Forced baseline clamps to 255: q = 4 scales 99 to 1238.
  assert int(np.max(compression.ijg_quant_tables(4)[1])) == 255


def test_jpeg_matches_pillow_libjpeg(images):
  # The integer ISLOW DCT, libjpeg-turbo's quantiser, chroma box-downsampling and fancy
  # upsampling are emulated exactly: the decoded pixels are Pillow's, bit for bit (so
  # the PSNRs to pristine are equal: astronaut 31.442 (q43), 30.946, 29.762, 25.289,
  # 22.903 (q4); coffee 157x233 30.935, 30.536, 29.397, 25.046, 22.644 dB).
  for name, u8 in images.items():
    x = jnp.asarray(u8 / 255.0, jnp.float32)
    for q in KADID_QUALITIES:
      ref, _ = _pillow_jpeg(u8, q)
      ours = _as_u8(_jpeg(x, jnp.float32(q), None))
      np.testing.assert_array_equal(ours, ref, err_msg=f"{name} q={q}")


def test_jpeg_traced_quality_and_severity(images):
  u8 = images["coffee_157x233"]
  x = jnp.asarray(u8 / 255.0, jnp.float32)
  static = np.asarray(jax.jit(lambda a: compression.jpeg(a, 24, None))(x))
  np.testing.assert_array_equal(np.asarray(_jpeg(x, jnp.float32(24.0), None)), static)
  # Quality is rounded to IJG's integer: 23.6 -> 24.
  np.testing.assert_array_equal(np.asarray(_jpeg(x, jnp.float32(23.6), None)), static)
  psnrs = [_psnr(u8, _as_u8(_jpeg(x, jnp.float32(q), None))) for q in KADID_QUALITIES]
  assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs


def test_jpeg_matches_octave_reference(kadid_ref):
  # kadid_ref: tests/distortions/conftest.py (skips when ../shared is absent).
  # The references (libjpeg-turbo via GraphicsMagick) include the driver's two mapmm
  # steps. Ours matches them to the 16-bit PNG quantisation (max error 7.6e-6, half an
  # LSB of 1/65535; PSNR > 106 dB), far above the 35 dB the issue asks for.
  for which in ("full", "crop"):
    x = jnp.asarray(_mapmm(kadid_ref.input(which)), jnp.float32)
    for level, q in enumerate(KADID_QUALITIES, start=1):
      ref = kadid_ref.output(which, 10, level)
      ours = _mapmm(_jpeg(x, jnp.float32(q), None))
      np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5, err_msg=f"{which} {level}")
      assert _psnr(ours, ref, peak=1.0) >= 35.0


# --- JPEG 2000 -------------------------------------------------------------------------

def test_jpeg2000_matches_openjpeg(images):
  """Against OpenJPEG's irreversible path (9/7 + ICT, what MATLAB's lossy mode uses).

  Measured on the astronaut crop (PSNR to pristine, ours / OpenJPEG 9/7+ICT / Pillow's
  default 5/3 without colour transform): r16 38.92/38.82/34.63, r32 34.75/34.53/30.17,
  r45 32.78/32.57/28.36, r120 27.64/27.20/24.14, r400 22.81/22.21/20.11 dB.
  """
  u8 = images["astronaut_384x512"]
  x = jnp.asarray(u8 / 255.0, jnp.float32)
  ours = []
  for r in KADID_RATIOS:
    ref = _pillow_jp2(u8, r, irreversible=True, mct=1)
    out = _as_u8(_jp2(x, jnp.float32(r), None))
    ours.append(_psnr(u8, out))
    assert abs(ours[-1] - _psnr(u8, ref)) < 1.0, (r, ours[-1], _psnr(u8, ref))
  assert all(a > b for a, b in zip(ours, ours[1:])), ours


@pytest.mark.parametrize("name", ["I03.bmp", "I19.bmp"])
def test_jpeg2000_matches_openjpeg_on_unseen_images(tid_pairs, name):
  """The rate constants (rate_scale, header_bpp) were set on scikit-image photographs;
  here two TID2013 references (384x512, ../shared golden data) that played no part in
  that: PSNR within 1 dB of OpenJPEG 9/7+ICT at all five KADID ratios, and falling
  with the ratio."""
  u8 = {n: ref for n, ref, _ in tid_pairs}[name]
  assert u8.shape == (384, 512, 3)
  x = jnp.asarray(u8 / 255.0, jnp.float32)
  ours = []
  for r in KADID_RATIOS:
    want = _psnr(u8, _pillow_jp2(u8, r, irreversible=True, mct=1))
    ours.append(_psnr(u8, _as_u8(_jp2(x, jnp.float32(r), None))))
    assert abs(ours[-1] - want) < 1.0, (name, r, ours[-1], want)
  assert all(a > b for a, b in zip(ours, ours[1:])), ours


def test_jpeg2000_properties():
  # Small odd-sized image: shapes survive, output is 8-bit, a huge ratio empties the
  # budget (only headers fit: the flat mid-grey image of all-zero coefficients) and the
  # wavelet path alone (ratio ~1) is near lossless.
  u8 = skimage.data.coffee()[40:113, 100:191]
  x = jnp.asarray(u8 / 255.0, jnp.float32)
  f = jax.jit(compression.jpeg2000)
  fine = np.asarray(f(x, jnp.float32(1.5), None))
  assert fine.shape == u8.shape
  np.testing.assert_allclose(fine * 255, np.round(fine * 255), atol=1e-3)
  assert _psnr(u8, _as_u8(fine)) > 40.0
  empty = np.asarray(f(x, jnp.float32(1e5), None))
  np.testing.assert_allclose(empty, 128 / 255, atol=1e-6)
  # The header allowance scales with the area: a small crop at KADID's ratio 120 is
  # still an image (a fixed 250-byte header would leave no budget at all).
  mid = _psnr(u8, _as_u8(f(x, jnp.float32(120.0), None)))
  assert 18.0 < mid < _psnr(u8, _as_u8(f(x, jnp.float32(16.0), None))) - 3.0, mid
