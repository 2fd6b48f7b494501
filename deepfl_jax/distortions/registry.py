"""The 25 KADID-10k / KADIS-700k distortion types (the KADIS-700k MATLAB generator).

`DISTORTIONS[id]` (id 1..25, KADID's `yy` in `Ixx_yy_zz.png`) is a `Distortion` with
`name`, `group`, `levels` (the five parameters of the original `imdist_generator.m`,
level 1 first), the type function `fn(image (H, W, 3) in [0, 1], param, key) ->
(H, W, 3)` (WITHOUT the driver's two mapmm steps), `stochastic`, `min_size` (smallest
allowed height and width), `kadis_name` (the name in kadis700k_friqa.csv) and, for the
stochastic types of this package, `draws(key, shape)` / `apply(image, param, draws)`
(all randomness in one place, so recorded draws can be replayed).

Types 6, 9, 10 and 15 live in quantize.py, jpeg2000.py, jpeg.py and denoise.py.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from deepfl_jax.distortions import blur, brightness, color, noise, sharpness, spatial
from deepfl_jax.distortions.denoise import denoise as _denoise
from deepfl_jax.distortions.jpeg import jpeg as _jpeg
from deepfl_jax.distortions.jpeg2000 import jpeg2000 as _jpeg2000
from deepfl_jax.distortions.quantize import color_quantization as _color_quantization


@dataclasses.dataclass(frozen=True)
class Distortion:
  id: int
  name: str
  group: str
  levels: tuple[float, float, float, float, float]
  fn: Callable
  stochastic: bool = False
  min_size: int = 4
  kadis_name: str = ""
  # Stochastic types of this package: draws(key, shape) -> dict of arrays (ALL the
  # randomness) and apply(image, param, draws); fn(image, param, key) composes them.
  draws: Callable | None = None
  apply: Callable | None = None


_TABLE = [
    # id, name, group, levels, fn, stochastic, min_size, kadis_name
    (1, "gaussian_blur", "blur", (0.1, 0.5, 1, 2, 5), blur.gaussian_blur, False, 4, "gblur"),
    (2, "lens_blur", "blur", (1, 2, 4, 6, 8), blur.lens_blur, False, 4, "lblur"),
    (3, "motion_blur", "blur", (1, 2, 4, 6, 10), blur.motion_blur, True, 4, "mblur"),
    (4, "color_diffusion", "color", (1, 3, 6, 8, 12), color.color_diffusion, False, 4,
     "colordiffuse"),
    (5, "color_shift", "color", (1, 3, 6, 8, 12), color.color_shift, True, 4,
     "colorshift"),
    (6, "color_quantization", "color", (64, 48, 32, 16, 8), _color_quantization, False,
     4, "colorquantize"),
    (7, "color_saturation_hsv", "color", (0.4, 0.2, 0.1, 0, -0.4),
     color.color_saturation_hsv, False, 4, "colorsaturate"),
    (8, "color_saturation_lab", "color", (1, 2, 3, 6, 9), color.color_saturation_lab,
     False, 4, "saturate"),
    (9, "jpeg2000", "compression", (16, 32, 45, 120, 400), _jpeg2000, False, 8, "jp2k"),
    (10, "jpeg", "compression", (43, 36, 24, 7, 4), _jpeg, False, 8, "jpeg"),
    (11, "white_noise", "noise", (0.001, 0.002, 0.003, 0.005, 0.01), noise.white_noise,
     True, 4, "noisegauss"),
    (12, "white_noise_color_component", "noise", (0.0001, 0.0005, 0.001, 0.002, 0.003),
     noise.white_noise_color_component, True, 4, "noisecolorcomp"),
    (13, "impulse_noise", "noise", (0.001, 0.005, 0.01, 0.02, 0.03),
     noise.impulse_noise, True, 4, "noiseimpulse"),
    (14, "multiplicative_noise", "noise", (0.001, 0.005, 0.01, 0.02, 0.05),
     noise.multiplicative_noise, True, 4, "noisemultiplicative"),
    (15, "denoise", "noise", (0.01, 0.03, 0.05, 0.1, 0.15), _denoise, True, 8, "denoise"),
    (16, "brighten", "brightness", (0.1, 0.2, 0.4, 0.7, 1.1), brightness.brighten,
     False, 4, "brighten"),
    (17, "darken", "brightness", (0.05, 0.1, 0.2, 0.4, 0.8), brightness.darken, False,
     4, "darken"),
    (18, "mean_shift", "brightness", (0.15, 0.08, 0, -0.08, -0.15),
     brightness.mean_shift, False, 4, "meanshift"),
    (19, "jitter", "spatial", (0.05, 0.1, 0.2, 0.5, 1), spatial.jitter, True, 4,
     "jitter"),
    (20, "non_eccentricity_patch", "spatial", (20, 40, 60, 80, 100),
     spatial.non_eccentricity_patch, True, 49, "noneccentricity"),
    (21, "pixelate", "spatial", (0.01, 0.05, 0.1, 0.2, 0.5), spatial.pixelate, False,
     4, "pixelate"),
    (22, "quantization", "spatial", (20, 16, 13, 10, 7), spatial.quantization, False,
     4, "noisequantize"),
    (23, "color_block", "spatial", (2, 4, 6, 8, 10), spatial.color_block, True, 33,
     "colorblock"),
    (24, "high_sharpen", "sharpness_contrast", (1, 2, 3, 6, 12), sharpness.high_sharpen,
     False, 4, "sharpenHi"),
    (25, "contrast_change", "sharpness_contrast", (0.3, 0.15, 0, -0.4, -0.6),
     sharpness.contrast_change, False, 4, "contrastchange"),
]

_REPLAY = {
    3: (blur.motion_blur_draws, blur.motion_blur_apply),
    5: (color.color_shift_draws, color.color_shift_apply),
    11: (noise.normal_draws, noise.white_noise_apply),
    12: (noise.normal_draws, noise.white_noise_color_component_apply),
    13: (noise.uniform_draws, noise.impulse_noise_apply),
    14: (noise.uniform_draws, noise.multiplicative_noise_apply),
    19: (spatial.jitter_draws, spatial.jitter_apply),
    20: (spatial.non_eccentricity_draws, spatial.non_eccentricity_patch_apply),
    23: (spatial.color_block_draws, spatial.color_block_apply),
}

DISTORTIONS: dict[int, Distortion] = {
    i: Distortion(i, name, group, tuple(float(v) for v in levels),
                  fn, stochastic, min_size, kadis, *_REPLAY.get(i, (None, None)))
    for i, name, group, levels, fn, stochastic, min_size, kadis in _TABLE}

NUM_TYPES = len(DISTORTIONS)
NUM_LEVELS = 5
# (25, 5) float64: LEVEL_TABLE[id - 1, level - 1].
LEVEL_TABLE = np.array([DISTORTIONS[i].levels for i in range(1, NUM_TYPES + 1)])
BY_NAME = {d.name: d for d in DISTORTIONS.values()}
