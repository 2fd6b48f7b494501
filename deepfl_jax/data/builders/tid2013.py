"""TID2013 (Ponomarenko et al., Signal Processing: Image Communication 2015)."""
from __future__ import annotations

import pathlib
import re


from deepfl_jax.data.builders import _base

_NAME = re.compile(r"^(i\d+)_(\d+)_(\d+)\.bmp$", re.IGNORECASE)


class Tid2013(_base.SyntheticIqaBuilder):
  """TID2013: 3,000 distorted images (25 references x 24 types x 5 levels), MOS 0..9
  (higher = better).

  Expected layout (manual directory, or its `tid2013/` folder):

      tid2013/
        mos_with_names.txt       one line per image "<MOS> <name>" (5.51429 i01_01_1.bmp)
        mos_std.txt              optional: one std per line, same order
        distorted_images/i01_01_1.bmp ...   (name case is ignored)
        reference_images/I01.BMP ... I25.BMP

  Split `full`: image, name, content (`I01`), reference (file name in
  reference_images/), dist_type 1..24, level 1..5, score (MOS), std (NaN without
  mos_std.txt). Split `references`: image, name, content.
  """

  TITLE = "TID2013"
  HOMEPAGE = "https://www.ponomarenko.info/tid2013.htm"
  CITATION = ("N. Ponomarenko et al., Image database TID2013: Peculiarities, results and "
              "perspectives, Signal Processing: Image Communication 30, 2015.")
  LAYOUT = """\
  tid2013/
    mos_with_names.txt       (lines: "<MOS> <name>")
    mos_std.txt              (optional)
    distorted_images/i01_01_1.bmp ..
    reference_images/I01.BMP .. I25.BMP"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("tid2013",)
  MARKER = "mos_with_names.txt"
  SCORE_NAME = "mos"

  def _plan(self, root: pathlib.Path):
    lines = [l.split() for l in (root / self.MARKER).read_text().splitlines() if l.strip()]
    dist = _base.file_index(self.require_dir(root / "distorted_images"))
    refs = _base.file_index(self.require_dir(root / "reference_images"))
    std = [float("nan")] * len(lines)
    if (root / "mos_std.txt").is_file():
      vals = [_base.to_float(l) for l in (root / "mos_std.txt").read_text().split()]
      if len(vals) != len(lines):
        raise self.layout_error(f"mos_std.txt has {len(vals)} values for {len(lines)} "
                                "lines of mos_with_names.txt", root)
      std = vals
    full, used = [], {}
    for parts, s in zip(lines, std):
      m = _NAME.match(parts[-1]) if len(parts) == 2 else None
      if m is None:
        raise self.layout_error(f"mos_with_names.txt line {' '.join(parts)!r} is not "
                                "'<MOS> iXX_YY_Z.bmp'", root)
      content = m.group(1).upper()
      ref = refs.get(f"{content.lower()}.bmp")
      if ref is None:
        raise self.layout_error(f"reference_images/ has no {content}.BMP (needed by "
                                f"{parts[1]})", root)
      used[ref.name] = (ref, content)
      full.append(dict(image=dist.get(parts[1].lower(), root / "distorted_images" / parts[1]),
                       name=parts[1], content=content, reference=ref.name,
                       dist_type=int(m.group(2)), level=int(m.group(3)),
                       score=_base.to_float(parts[0]), std=s))
    references = [dict(image=p, name=n, content=c, reference=n)
                  for n, (p, c) in sorted(used.items())]
    return {_base.FULL: full, _base.REFERENCES: references}
