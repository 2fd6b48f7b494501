"""LIVE In the Wild Image Quality Challenge (Ghadiyaram, Bovik, IEEE TIP 2016)."""
from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from deepfl_jax.data.builders import _base
from deepfl_jax.data.builders.live_iqa import mat_vector


class LiveInTheWild(_base.IqaBuilder):
  """LIVE in the Wild (LIVE Challenge): 1,162 authentically distorted photographs with
  MOS (0..100, higher = better).

  Expected layout (manual directory, or its `ChallengeDB_release/` folder):

      ChallengeDB_release/
        Images/<name>                   e.g. 10.bmp (the names in AllImages_release)
        Images/trainingImages/<name>    the 7 practice images (entries 1..7)
        Data/AllImages_release.mat      AllImages_release (1169 x 1 cell)
        Data/AllMOS_release.mat         AllMOS_release (1 x 1169)
        Data/AllStdDev_release.mat      optional: AllStdDev_release (1 x 1169)

  The first 7 entries are the practice images shown to the raters before the study;
  they are left out, as is customary (1,162 images remain).
  Split `full`: image, name, content (= name), score (MOS), std (NaN without the file).
  """

  TITLE = "LIVE in the Wild"
  HOMEPAGE = "https://live.ece.utexas.edu/research/ChallengeDB/index.html"
  CITATION = ("D. Ghadiyaram, A.C. Bovik, Massive Online Crowdsourced Study of "
              "Subjective and Objective Picture Quality, IEEE TIP 25(1), 2016.")
  LAYOUT = """\
  ChallengeDB_release/
    Images/*.bmp, Images/trainingImages/*.bmp
    Data/AllImages_release.mat, Data/AllMOS_release.mat, (Data/AllStdDev_release.mat)"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("ChallengeDB_release",)
  MARKER = "Data"
  SCORE_NAME = "mos"
  SPLIT_KIND = "random"
  NUM_PRACTICE = 7
  INDEX_FIELDS = ("name", "content", "score", "std")

  def _features_dict(self):
    return {"score": tfds.features.Scalar(np.float32),
            "std": tfds.features.Scalar(np.float32)}

  def _plan(self, root: pathlib.Path):
    err = lambda m: self.layout_error(m, root / "Data")
    names = mat_vector(root / "Data" / "AllImages_release.mat", "AllImages_release", err)
    mos = mat_vector(root / "Data" / "AllMOS_release.mat", "AllMOS_release", err)
    std_path = root / "Data" / "AllStdDev_release.mat"
    std = (mat_vector(std_path, "AllStdDev_release", err) if std_path.is_file()
           else np.full(mos.shape, np.nan))
    if not len(names) == len(mos) == len(std):
      raise err(f"AllImages_release ({len(names)}), AllMOS_release ({len(mos)}) and "
                f"AllStdDev_release ({len(std)}) differ in length")
    images = self.require_dir(root / "Images")
    full = []
    for name, m, s in list(zip(names, mos, std))[self.NUM_PRACTICE:]:
      name = str(name)
      path = images / name
      if not path.exists() and (images / "trainingImages" / name).exists():
        path = images / "trainingImages" / name
      full.append(dict(image=path, name=name, content=name, score=float(m),
                       std=float(s)))
    return {_base.FULL: full}
