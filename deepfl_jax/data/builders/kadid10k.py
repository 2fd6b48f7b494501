"""KADID-10k (Lin, Hosu, Saupe, QoMEX 2019): 81 references x 25 types x 5 levels."""
from __future__ import annotations

import pathlib
import re


from deepfl_jax.data.builders import _base

_NAME = re.compile(r"^(I\d+)_(\d+)_(\d+)\.png$", re.IGNORECASE)


class Kadid10k(_base.SyntheticIqaBuilder):
  """KADID-10k: 10,125 distorted images with DMOS (1..5, higher = better) and its std.

  Expected layout (manual directory, or its `kadid10k/` folder):

      kadid10k/
        dmos.csv              columns dist_img,ref_img,dmos,var ("var" is a std)
        images/I01.png ... I81.png            the 81 references
        images/Ixx_yy_zz.png                  xx reference, yy type 1..25, zz level 1..5

  Split `full`: image, name (`I01_01_01.png`), content (`I01`), reference (`I01.png`),
  dist_type, level, score (DMOS), std. Split `references`: image, name, content.
  """

  TITLE = "KADID-10k"
  HOMEPAGE = "https://database.mmsp-kn.de/kadid-10k-database.html"
  CITATION = ("H. Lin, V. Hosu, D. Saupe, KADID-10k: A Large-scale Artificially "
              "Distorted IQA Database, QoMEX 2019.")
  LAYOUT = """\
  kadid10k/
    dmos.csv                 (header: dist_img,ref_img,dmos,var)
    images/I01.png .. I81.png, images/I01_01_01.png .. I81_25_05.png"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("kadid10k",)
  MARKER = "dmos.csv"
  SCORE_NAME = "dmos"
  HIGHER_IS_BETTER = True

  def _plan(self, root: pathlib.Path):
    rows = _base.read_csv(root / "dmos.csv", ("dist_img", "ref_img", "dmos", "var"),
                          error=lambda m: self.layout_error(m, root))
    images = self.require_dir(root / "images")
    full, refs = [], {}
    for r in rows:
      m = _NAME.match(r["dist_img"])
      if not m or not r["ref_img"]:
        raise self.layout_error(f"dmos.csv row {r} does not name Ixx_yy_zz.png and a "
                                "reference", root)
      content = m.group(1).upper()
      refs[r["ref_img"]] = content
      full.append(dict(image=images / r["dist_img"], name=r["dist_img"], content=content,
                       reference=r["ref_img"], dist_type=int(m.group(2)),
                       level=int(m.group(3)), score=_base.to_float(r["dmos"]),
                       std=_base.to_float(r["var"])))
    references = [dict(image=images / name, name=name, content=refs[name], reference=name)
                  for name in sorted(refs)]
    return {_base.FULL: full, _base.REFERENCES: references}
