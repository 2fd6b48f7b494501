"""The metrics under test: public name -> (module, higher_is_better)."""
import importlib

METRICS = {
    "ssim": ("ssim", True), "ms_ssim": ("ssim", True), "iw_ssim": ("iw_ssim", True),
    "mdsi": ("mdsi", False), "vsi": ("vsi", True), "fsimc": ("fsim", True),
    "fsim": ("fsim", True), "gmsd": ("gmsd", False), "sff": ("sff", True),
    "scqi_proxy": ("scqi", True), "add_gsim_proxy": ("add_gsim", True), "sr_sim": ("sr_sim", True),
    "psnr": ("psnr", True),
}


def get(name):
  module, higher = METRICS[name]
  return getattr(importlib.import_module(f"deepfl_jax.metrics.{module}"), name), higher
