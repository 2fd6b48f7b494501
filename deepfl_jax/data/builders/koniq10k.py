"""KonIQ-10k (Hosu, Lin, Sziranyi, Saupe, IEEE TIP 2020): 10,073 authentic images."""
from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from deepfl_jax.data.builders import _base

RESOLUTIONS = ("512x384", "1024x768")
# The official `set` column -> split names used here.
OFFICIAL_SETS = {"training": "train", "validation": "validation", "test": "test"}


def _configs() -> list[_base.IqaConfig]:
  out = []
  for res in RESOLUTIONS:
    for mode in _base.ON_BAD_IMAGE:
      name = res if mode == "raise" else f"{res}_{mode}"
      out.append(_base.IqaConfig(name=name, version="1.0.0", on_bad_image=mode,
                                 resolution=res,
                                 description=f"images from {res}/, on_bad_image={mode}"))
  return out


class Koniq10k(_base.IqaBuilder):
  """KonIQ-10k: MOS (1..5, higher = better), SD, MOS_zscore, rating counts and the
  official training/validation/test set (7058/1000/2015).

  Expected layout (manual directory, or its `koniq10k/` folder):

      koniq10k/
        koniq10k_distributions_sets.csv  header image_name,c1,c2,c3,c4,c5,c_total,
                                         MOS,SD,MOS_zscore,set
        512x384/<image_name>.jpg         (config "512x384", default) or
        1024x768/<image_name>.jpg        (config "1024x768")

  Split `full`: image, name, content (= name), score (MOS), std (SD), mos_zscore,
  set (training | validation | test), ratings (c1..c5; zeros when absent).
  """

  TITLE = "KonIQ-10k"
  HOMEPAGE = "https://database.mmsp-kn.de/koniq-10k-database.html"
  CITATION = ("V. Hosu, H. Lin, T. Sziranyi, D. Saupe, KonIQ-10k: An Ecologically "
              "Valid Database for Deep Learning of Blind Image Quality Assessment, "
              "IEEE TIP 29, 2020.")
  LAYOUT = """\
  koniq10k/
    koniq10k_distributions_sets.csv
        (header: image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore,set)
    512x384/*.jpg  or  1024x768/*.jpg"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  BUILDER_CONFIGS = _configs()
  TOP_FOLDERS = ("koniq10k", "koniq")
  MARKER = "koniq10k_distributions_sets.csv"
  SCORE_NAME = "mos"
  SPLIT_KIND = "official"
  INDEX_FIELDS = ("name", "content", "score", "std", "mos_zscore", "set")

  def _features_dict(self):
    return {"score": tfds.features.Scalar(np.float32),
            "std": tfds.features.Scalar(np.float32),
            "mos_zscore": tfds.features.Scalar(np.float32),
            "set": tfds.features.Text(),
            "ratings": tfds.features.Tensor(shape=(5,), dtype=np.int32)}

  def _plan(self, root: pathlib.Path):
    rows = _base.read_csv(root / self.MARKER,
                          ("image_name", "MOS", "SD", "MOS_zscore", "set"),
                          error=lambda m: self.layout_error(m, root))
    res = self.builder_config.resolution or RESOLUTIONS[0]
    images = self.require_dir(root / res)
    full = []
    for r in rows:
      if r["set"] not in OFFICIAL_SETS:
        raise self.layout_error(f"{self.MARKER}: set {r['set']!r} of {r['image_name']} "
                                f"is not one of {sorted(OFFICIAL_SETS)}", root)
      ratings = np.asarray([int(float(r.get(f"c{k}") or 0)) for k in range(1, 6)],
                           np.int32)
      full.append(dict(image=images / r["image_name"], name=r["image_name"],
                       content=r["image_name"], score=_base.to_float(r["MOS"]),
                       std=_base.to_float(r["SD"]),
                       mos_zscore=_base.to_float(r["MOS_zscore"]), set=r["set"],
                       ratings=ratings))
    return {_base.FULL: full}
