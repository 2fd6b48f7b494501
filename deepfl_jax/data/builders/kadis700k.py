"""KADIS-700k (Lin, Hosu, Saupe 2019): 140k pristine images, one distortion type each."""
from __future__ import annotations

import csv

import pathlib

import numpy as np
import tensorflow_datasets as tfds

from deepfl_jax.data.builders import _base

NUM_LEVELS = 5
NUM_METRICS = 11


def _kadis_type_ids() -> dict[str, int]:
  """FR-score file type name (gblur, ..., contrastchange) -> type id 1..25."""
  # Imported here: the registry pulls in JAX, which only this builder needs.
  from deepfl_jax.distortions.registry import DISTORTIONS  # pylint: disable=g-import-not-at-top
  return {d.kadis_name: i for i, d in DISTORTIONS.items()}


class Kadis700k(_base.IqaBuilder):
  """KADIS-700k pristine images with their assigned type and, when the score file is
  there, the 11 FR-IQA scores of their 5 distorted versions (no human scores).

  Expected layout (manual directory, or its `kadis700k/` folder):

      kadis700k/
        kadis700k_ref_imgs.csv   columns ref_im,dist_type_1,dist_type_2
        ref_imgs/*.png           the pristine images named in ref_im
        kadis700k_friqa.csv      optional: dist_im,ref_im, then 11 scores in the order
                                 SSIM, MS-SSIM, IW-SSIM, MDSI, VSI, FSIM, GMSD, SFF,
                                 SCQI, ADD-GSIM, SR-SIM (read by position);
                                 dist_im = <stem>_<type name>_<level>.<ext>

  Split `full` (one example per pristine image): image, name, content (= name),
  dist_type (the type generated: 8 for rows 7/8, see `distortions.kadis_type`), dist_type_1,
  dist_type_2 (0 when empty), fr_scores (5, 11) float32 (level x metric, NaN where the
  score file has no value), has_fr_scores. The distorted images are not stored: the
  distortion engine makes them on the fly (online synthesis).
  """

  TITLE = "KADIS-700k"
  HOMEPAGE = "https://database.mmsp-kn.de/kadid-10k-database.html"
  CITATION = ("H. Lin, V. Hosu, D. Saupe, DeepFL-IQA: Weak Supervision for Deep IQA "
              "Feature Learning, arXiv:2001.08113, 2020.")
  LAYOUT = """\
  kadis700k/
    kadis700k_ref_imgs.csv   (header: ref_im,dist_type_1,dist_type_2)
    ref_imgs/<ref_im>.png
    kadis700k_friqa.csv      (optional; header: dist_im,ref_im,<11 FR scores>)"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("kadis700k",)
  MARKER = "kadis700k_ref_imgs.csv"
  SCORE_NAME = "fr_scores"
  SPLIT_KIND = "content"
  INDEX_FIELDS = ("name", "content", "dist_type", "dist_type_1", "dist_type_2",
                  "has_fr_scores")

  def _features_dict(self):
    return {"dist_type": tfds.features.Scalar(np.int32),
            "dist_type_1": tfds.features.Scalar(np.int32),
            "dist_type_2": tfds.features.Scalar(np.int32),
            "fr_scores": tfds.features.Tensor(shape=(NUM_LEVELS, NUM_METRICS),
                                              dtype=np.float32),
            "has_fr_scores": tfds.features.Scalar(np.bool_)}

  def _read_friqa(self, path: pathlib.Path) -> dict[str, np.ndarray]:
    ids = _kadis_type_ids()
    scores: dict[str, np.ndarray] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f)
      header = [h.strip() for h in next(reader, [])]
      if len(header) < 2 + NUM_METRICS or header[:2] != ["dist_im", "ref_im"]:
        raise self.layout_error(f"{path.name} has columns {header}; expected dist_im,"
                                f"ref_im and {NUM_METRICS} score columns", path.parent)
      for row in reader:
        if not row:
          continue
        stem = row[0].strip().rsplit(".", 1)[0]
        parts = stem.rsplit("_", 2)
        if len(parts) != 3 or parts[1] not in ids or not parts[2].isdigit():
          raise self.layout_error(f"{path.name}: cannot read type and level from "
                                  f"dist_im {row[0]!r}", path.parent)
        level = int(parts[2])
        if not 1 <= level <= NUM_LEVELS:
          raise self.layout_error(f"{path.name}: level {level} in {row[0]!r}",
                                  path.parent)
        table = scores.setdefault(row[1].strip(),
                                  np.full((NUM_LEVELS, NUM_METRICS), np.nan, np.float32))
        table[level - 1] = [_base.to_float(v) for v in row[2:2 + NUM_METRICS]]
    return scores

  def _plan(self, root: pathlib.Path):
    rows = _base.read_csv(root / "kadis700k_ref_imgs.csv",
                          ("ref_im", "dist_type_1", "dist_type_2"),
                          error=lambda m: self.layout_error(m, root))
    images = self.require_dir(root / "ref_imgs")
    friqa_path = root / "kadis700k_friqa.csv"
    scores = self._read_friqa(friqa_path) if friqa_path.is_file() else {}
    self.info.metadata["has_friqa_file"] = bool(scores)
    full = []
    # Imported here: the distortion engine pulls in JAX, which only this builder needs.
    from deepfl_jax.distortions.sampling import kadis_type  # pylint: disable=g-import-not-at-top
    for r in rows:
      try:
        t1 = int(r["dist_type_1"])
        t2 = int(r["dist_type_2"]) if r["dist_type_2"] not in ("", None) else 0
        assigned = kadis_type(t1, t2)  # 7 with dist_type_2 = 8 is type 8 ("saturate")
      except ValueError:
        raise self.layout_error(f"kadis700k_ref_imgs.csv row {r} has a non-integer "
                                "or unknown type", root) from None
      fr = scores.get(r["ref_im"])
      has = fr is not None and bool(np.isfinite(fr).all())
      if fr is None:
        fr = np.full((NUM_LEVELS, NUM_METRICS), np.nan, np.float32)
      full.append(dict(image=images / r["ref_im"], name=r["ref_im"], content=r["ref_im"],
                       dist_type=assigned, dist_type_1=t1, dist_type_2=t2,
                       fr_scores=fr, has_fr_scores=has))
    return {_base.FULL: full}
