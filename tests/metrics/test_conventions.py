"""The input class and colour conversion each metric's MATLAB code sees (issue 11 item 1).

The MATLAB codes read files with `imread` (uint8) and work on double() of them, 0..255.
- Grey codes (ssim.m, msssim.m, iwssim.m, GMSD.m; Gu's GSIM for ADD-GSIM): run on RGB
  files they see double(rgb2gray(uint8)), and MATLAB's rgb2gray of uint8 is uint8
  (rounded). Default "rgb2gray_uint8": the RGB score equals the score of that rounded
  grey image, exactly.
- FeatureSIM.m (FSIM) and SR_SIM.m: Y = 0.299 R + 0.587 G + 0.114 B of the doubles,
  unrounded: the RGB score equals the score of the unrounded luma image.
- MDSI.m, VSI.m, SFF.m, FSIMc, SC-QI (proxy): colour metrics on the RGB doubles, no
  rounding: a chroma-only change moves the score, and a grey image equals its
  replication to RGB.
For all 11: uint8 input equals float input / 255 (0..255 doubles either way).
"""
import numpy as np
import pytest

from deepfl_jax.ops import color
from tests.metrics import _registry
from tests.metrics._images import noisy
from tests.metrics.test_properties import photos

GREY_UINT8 = ("ssim", "ms_ssim", "iw_ssim", "gmsd", "add_gsim_proxy")
LUMA = ("fsim", "sr_sim")
COLOUR = ("mdsi", "vsi", "sff", "fsimc", "scqi_proxy")
ALL = GREY_UINT8 + LUMA + COLOUR


@pytest.fixture(scope="module")
def pair():
  x = photos()[:1].astype(np.float64)
  y = noisy(photos()[:1], 0.03).astype(np.float64)
  to_u8 = lambda a: np.round(a * 255).astype(np.uint8)
  return to_u8(x), to_u8(y)


def test_every_metric_is_classified():
  assert set(ALL) == set(_registry.METRICS) - {"psnr"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_uint8_is_float_over_255(name, pair, x64):
  fn, _ = _registry.get(name)
  a, b = pair
  np.testing.assert_allclose(fn(a, b), fn(a / 255.0, b / 255.0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", GREY_UINT8)
def test_grey_metrics_see_rounded_rgb2gray(name, pair, x64):
  fn, _ = _registry.get(name)
  a, b = pair
  grey = lambda u: np.floor(u.astype(np.float64) @ color.RGB2GRAY + 0.5).astype(
      np.uint8)[..., None]
  rgb = np.asarray(fn(a, b))
  np.testing.assert_array_equal(rgb, np.asarray(fn(grey(a), grey(b))))
  # The unrounded conversions are options, and they give other numbers.
  luma = np.asarray(fn(a, b, color_mode="luma"))
  assert np.all(np.abs(luma - rgb) > 1e-7), (rgb, luma)


@pytest.mark.parametrize("name", LUMA)
def test_fsim_and_sr_sim_see_unrounded_luma(name, pair, x64):
  fn, _ = _registry.get(name)
  a, b = pair
  luma = lambda u: (u.astype(np.float64) @ color.YIQ[0])[..., None] / 255.0
  np.testing.assert_allclose(fn(a, b), fn(luma(a), luma(b)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", COLOUR)
def test_colour_metrics_see_rgb(name, pair, x64):
  fn, _ = _registry.get(name)
  a, b = pair
  # A chroma-only change: +0.0114 on R and -0.0299 on B keeps Y = 0.299 R + 0.587 G +
  # 0.114 B unchanged (FSIM, which sees only Y, does not move), yet moves every colour
  # metric.
  x, y = a / 255.0, b / 255.0
  inside = (y[..., 0] < 0.98) & (y[..., 2] > 0.04)
  tinted = y + np.where(inside[..., None], np.array([0.0114, 0.0, -0.0299]), 0.0)
  fsim, _ = _registry.get("fsim")
  np.testing.assert_allclose(fsim(x, tinted), fsim(x, y), rtol=1e-9)
  assert np.all(np.abs(np.asarray(fn(x, tinted)) - np.asarray(fn(x, y))) > 1e-5)
  g = a[..., :1]
  gy = b[..., :1]
  np.testing.assert_allclose(fn(g, gy), fn(np.repeat(g, 3, -1), np.repeat(gy, 3, -1)),
                             rtol=1e-9, atol=1e-12)
