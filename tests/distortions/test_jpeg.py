"""JPEG (type 10) of deepfl_jax.distortions.jpeg against the real codec (Pillow's
libjpeg-turbo) and the Octave references."""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from deepfl_jax.distortions import jpeg
from tests.distortions._codec import as_u8, mapmm, psnr

KADID_QUALITIES = (43, 36, 24, 7, 4)

# One compile per image shape: the parameter is traced.
_jpeg = jax.jit(jpeg.jpeg)


def _pillow_jpeg(u8, quality):
  buf = io.BytesIO()
  Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
  buf.seek(0)
  img = Image.open(buf)
  return np.asarray(img.convert("RGB")), img.quantization



def test_ijg_tables_match_libjpeg():
  for q in KADID_QUALITIES + (50, 90):
    _, tables = _pillow_jpeg(np.zeros((8, 8, 3), np.uint8), q)
    luma, chroma = jpeg.ijg_quant_tables(q)
    np.testing.assert_array_equal(np.asarray(luma).ravel(), tables[0])
    np.testing.assert_array_equal(np.asarray(chroma).ravel(), tables[1])
  # Forced baseline clamps to 255: q = 4 scales 99 to 1238.
  assert int(np.max(jpeg.ijg_quant_tables(4)[1])) == 255


@pytest.mark.slow
def test_jpeg_matches_pillow_libjpeg(images):
  # The integer ISLOW DCT, libjpeg-turbo's quantiser, chroma box-downsampling and fancy
  # upsampling are emulated exactly: the decoded pixels are Pillow's, bit for bit (so
  # the PSNRs to pristine are equal: astronaut 31.442 (q43), 30.946, 29.762, 25.289,
  # 22.903 (q4); coffee 157x233 30.935, 30.536, 29.397, 25.046, 22.644 dB).
  for name, u8 in images.items():
    x = jnp.asarray(u8 / 255.0, jnp.float32)
    for q in KADID_QUALITIES:
      ref, _ = _pillow_jpeg(u8, q)
      ours = as_u8(_jpeg(x, jnp.float32(q), None))
      np.testing.assert_array_equal(ours, ref, err_msg=f"{name} q={q}")


def test_jpeg_traced_quality_and_severity(images):
  u8 = images["coffee_157x233"]
  x = jnp.asarray(u8 / 255.0, jnp.float32)
  static = np.asarray(jax.jit(lambda a: jpeg.jpeg(a, 24, None))(x))
  np.testing.assert_array_equal(np.asarray(_jpeg(x, jnp.float32(24.0), None)), static)
  # Quality is rounded to IJG's integer: 23.6 -> 24.
  np.testing.assert_array_equal(np.asarray(_jpeg(x, jnp.float32(23.6), None)), static)
  psnrs = [psnr(u8, as_u8(_jpeg(x, jnp.float32(q), None))) for q in KADID_QUALITIES]
  assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs


@pytest.mark.slow
def test_jpeg_matches_octave_reference(kadid_ref):
  # kadid_ref: tests/distortions/conftest.py (skips when ../shared is absent).
  # The references (libjpeg-turbo via GraphicsMagick) include the driver's two mapmm
  # steps. Ours matches them to the 16-bit PNG quantisation (max error 7.6e-6, half an
  # LSB of 1/65535; PSNR > 106 dB), far above the 35 dB the issue asks for.
  for which in ("full", "crop"):
    x = jnp.asarray(mapmm(kadid_ref.input(which)), jnp.float32)
    for level, q in enumerate(KADID_QUALITIES, start=1):
      ref = kadid_ref.output(which, 10, level)
      ours = mapmm(_jpeg(x, jnp.float32(q), None))
      np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5, err_msg=f"{which} {level}")
      assert psnr(ours, ref, peak=1.0) >= 35.0
