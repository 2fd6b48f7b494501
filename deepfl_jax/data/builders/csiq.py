"""CSIQ (Larson, Chandler, J. Electronic Imaging 2010): 30 references, 866 distorted."""
from __future__ import annotations

import pathlib


from deepfl_jax.data.builders import _base, _xlsx

SHEET = "all_by_image"
COLUMNS = ("image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos")
# dst_type in the spreadsheet (lower case, spaces removed) -> (folder, file tag).
TYPES = {"noise": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"),
         "jpeg2000": ("jpeg2000", "jpeg2000"), "fnoise": ("fnoise", "fnoise"),
         "blur": ("blur", "BLUR"), "contrast": ("contrast", "contrast")}


def _cell_str(v) -> str:
  if isinstance(v, float) and v.is_integer():
    return str(int(v))  # image names such as 1600 are stored as numbers
  return "" if v is None else str(v).strip()


class Csiq(_base.SyntheticIqaBuilder):
  """CSIQ: 866 distorted images (white noise, JPEG, JPEG 2000, pink noise, blur,
  contrast; 4-5 levels) with DMOS in [0, 1] (lower = better) and its std.

  Expected layout (manual directory, or its `CSIQ/` or `csiq/` folder):

      CSIQ/
        csiq.DMOS.xlsx           sheet "all_by_image" with a header row
                                 image,dst_idx,dst_type,dst_lev,dmos_std,dmos
                                 (columns may start after empty ones)
        src_imgs/<image>.png     the 30 references (e.g. 1600.png)
        dst_imgs/<folder>/<image>.<TAG>.<lev>.png   folders awgn, jpeg, jpeg2000,
                                 fnoise, blur, contrast; TAG AWGN, JPEG, jpeg2000,
                                 fnoise, BLUR, contrast (case is ignored, and the files
                                 may sit anywhere under dst_imgs/)

  Split `full`: image, name (`1600.AWGN.1.png`), content (`1600`), reference,
  dist_type (dst_idx), level (dst_lev), score (dmos), std (dmos_std).
  Split `references`: image, name, content.
  """

  TITLE = "CSIQ"
  HOMEPAGE = "https://s2.smu.edu/~eclarson/csiq.html"
  CITATION = ("E.C. Larson, D.M. Chandler, Most apparent distortion: full-reference "
              "image quality assessment and the role of strategy, J. Electronic "
              "Imaging 19(1), 2010.")
  LAYOUT = """\
  CSIQ/
    csiq.DMOS.xlsx   (sheet all_by_image: image,dst_idx,dst_type,dst_lev,dmos_std,dmos)
    src_imgs/1600.png ..
    dst_imgs/{awgn,jpeg,jpeg2000,fnoise,blur,contrast}/1600.AWGN.1.png .."""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("CSIQ", "csiq")
  MARKER = "csiq.DMOS.xlsx"
  SCORE_NAME = "dmos"
  HIGHER_IS_BETTER = False

  def _rows(self, root: pathlib.Path) -> list[dict[str, str | float | None]]:
    path = root / self.MARKER
    try:
      rows = _xlsx.read_sheet(path, SHEET)
    except KeyError:
      raise self.layout_error(f"{path.name} has no sheet {SHEET!r}", root) from None
    except Exception as e:  # not a zip / not a workbook
      raise self.layout_error(f"{path.name} is not a readable .xlsx ({e})", root) from None
    for h, row in enumerate(rows):
      names = [_cell_str(v).lower() for v in row]
      if all(c in names for c in COLUMNS):
        cols = {c: names.index(c) for c in COLUMNS}
        out = []
        for r in rows[h + 1:]:
          get = lambda c: r[cols[c]] if cols[c] < len(r) else None
          if get("image") is None or get("dmos") is None:
            continue
          out.append({c: get(c) for c in COLUMNS})
        return out
    raise self.layout_error(f"sheet {SHEET!r} of {path.name} has no header row with "
                            f"{','.join(COLUMNS)}", root)

  def _plan(self, root: pathlib.Path):
    rows = self._rows(root)
    src = _base.file_index(self.require_dir(root / "src_imgs"))
    dst_dir = self.require_dir(root / "dst_imgs")
    dst = _base.file_index(dst_dir, recursive=True)
    full, used = [], {}
    for r in rows:
      image, kind = _cell_str(r["image"]), _cell_str(r["dst_type"]).lower().replace(" ", "")
      if kind not in TYPES:
        raise self.layout_error(f"{self.MARKER}: unknown dst_type {r['dst_type']!r} "
                                f"(known: {sorted(TYPES)})", root)
      folder, tag = TYPES[kind]
      level = int(float(r["dst_lev"]))
      name = f"{image}.{tag}.{level}.png"
      ref = src.get(f"{image.lower()}.png")
      if ref is None:
        raise self.layout_error(f"src_imgs/ has no {image}.png (needed by {name})", root)
      used[ref.name] = (ref, image)
      full.append(dict(image=dst.get(name.lower(), dst_dir / folder / name), name=name,
                       content=image, reference=ref.name,
                       dist_type=int(float(r["dst_idx"])), level=level,
                       score=_base.to_float(r["dmos"]), std=_base.to_float(r["dmos_std"])))
    references = [dict(image=p, name=n, content=c, reference=n)
                  for n, (p, c) in sorted(used.items())]
    return {_base.FULL: full, _base.REFERENCES: references}
