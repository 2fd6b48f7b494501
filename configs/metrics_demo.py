"""The 11 FR-IQA proxies on the embedded photographs (no downloads).

Pristine colour photographs shipped with scikit-image are cropped to KADID's 384x512,
degraded at five levels of white noise and Gaussian blur, and scored by the fused
11-metric call; the table shows each metric's mean per level and its Spearman
correlation with severity.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = "metrics_demo"
  config.stages = ("fr_metrics",)
  config.images = ("astronaut", "coffee", "chelsea", "rocket")
  config.size = (384, 512)               # KADID-10k's H x W
  config.noise_std = (0.01, 0.03, 0.06, 0.1, 0.15)
  config.blur_sigma = (0.5, 1.0, 2.0, 3.0, 5.0)
  config.color_mode = "rgb2gray_uint8"   # grey of SSIM, MS-SSIM, IW-SSIM, GMSD (MATLAB's)
  config.batch_size = 4
  config.seed = 0
  return config
