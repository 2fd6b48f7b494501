"""Tiny fake archives in the official layouts of the IQA databases (file names, headers).

Every writer returns a dict with what a correct build must contain, so tests compare
records against the files actually written. Images are a few pixels, each different.
"""
from __future__ import annotations

import pathlib
import zipfile

import numpy as np
import scipy.io
from PIL import Image

from deepfl_jax.distortions.registry import DISTORTIONS

H, W = 6, 8


def pixels(seed: int, h: int = H, w: int = W) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_image(path: pathlib.Path, seed: int, fmt: str | None = None, **kw) -> np.ndarray:
  path.parent.mkdir(parents=True, exist_ok=True)
  a = pixels(seed, **kw)
  Image.fromarray(a).save(path, format=fmt)
  return a


def corrupt(path: pathlib.Path) -> None:
  """Truncates an image file to half its bytes (a broken download)."""
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])


# --- KADID-10k ----------------------------------------------------------------------
def kadid10k(root: pathlib.Path) -> dict:
  top = root / "kadid10k"
  images, rows = {}, []
  for r in (1, 2, 3, 4, 5):
    ref = f"I{r:02d}.png"
    images[ref] = write_image(top / "images" / ref, 100 + r)
    for t, lev in ((1, 1), (10, 5)):
      name = f"I{r:02d}_{t:02d}_{lev:02d}.png"
      images[name] = write_image(top / "images" / name, 1000 + 100 * r + t + lev)
      rows.append((name, ref, round(4.5 - 0.3 * lev + 0.01 * r, 3), round(0.5 + 0.01 * t, 3)))
  with open(top / "dmos.csv", "w") as f:
    f.write("dist_img,ref_img,dmos,var\n")
    for row in rows:
      f.write(",".join(map(str, row)) + "\n")
  return {"top": top, "images": images, "rows": rows}


# --- KADIS-700k ---------------------------------------------------------------------
KADIS_ROWS = [("a-fleshy-plant-1464418.png", 7, 8), ("abstract-1239412.png", 7, 0),
              ("zebra-crossing-99.png", 11, 0), ("yellow-flower-3.png", 1, 0)]


def kadis700k(root: pathlib.Path, friqa: bool = True) -> dict:
  top = root / "kadis700k"
  images = {name: write_image(top / "ref_imgs" / name, 200 + i)
            for i, (name, _, _) in enumerate(KADIS_ROWS)}
  with open(top / "kadis700k_ref_imgs.csv", "w") as f:
    f.write("ref_im,dist_type_1,dist_type_2\n")
    for name, t1, t2 in KADIS_ROWS:
      f.write(f"{name},{t1},{t2 if t2 else ''}\n")
  scores = {}
  if friqa:
    with open(top / "kadis700k_friqa.csv", "w") as f:
      f.write("dist_im,ref_im,SSIM,MS-SSIM,IW-SSIM,MDSI,VSI,FSIM,GMSD,SFF,SCQI,ADD-GSIM,"
              "SR-SIM\n")
      # The last reference has no scores (a partial file): NaN, has_fr_scores False.
      for i, (name, t1, t2) in enumerate(KADIS_ROWS[:-1]):
        t = 8 if (t1, t2) == (7, 8) else t1
        table = np.round(np.random.default_rng(i).uniform(0, 1, (5, 11)), 4)
        scores[name] = table
        for lev in range(1, 6):
          dist = f"{name[:-4]}_{DISTORTIONS[t].kadis_name}_{lev:02d}.bmp"
          f.write(",".join([dist, name] + [str(v) for v in table[lev - 1]]) + "\n")
  return {"top": top, "images": images, "scores": scores}


# --- KonIQ-10k ----------------------------------------------------------------------
KONIQ_SETS = ["training"] * 6 + ["validation"] * 2 + ["test"] * 2


def koniq10k(root: pathlib.Path, resolution: str = "512x384") -> dict:
  top = root / "koniq10k"
  rows, images = [], {}
  for i, s in enumerate(KONIQ_SETS):
    name = f"{10004473376 + 17 * i}.jpg"
    # JPEG is lossy: tests compare with the decoded file, not with `pixels`.
    write_image(top / resolution / name, 300 + i, fmt="JPEG")
    images[name] = np.asarray(Image.open(top / resolution / name).convert("RGB"))
    c = [i % 3, 10, 40 + i, 30, 5]
    mos = round(1 + 4 * i / 10, 4)
    rows.append([name] + c + [sum(c), mos, 0.5, round(20 * mos, 3), s])
  with open(top / "koniq10k_distributions_sets.csv", "w") as f:
    f.write('"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore","set"\n')
    for r in rows:
      f.write(",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in r) + "\n")
  return {"top": top, "images": images, "rows": rows}


# --- TID2013 ------------------------------------------------------------------------
def tid2013(root: pathlib.Path) -> dict:
  top = root / "tid2013"
  images, lines = {}, []
  for r in (1, 2, 3, 4, 5):
    ref = f"I{r:02d}.BMP"
    images[ref] = write_image(top / "reference_images" / ref, 400 + r, fmt="BMP")
    for t, lev in ((1, 1), (24, 5)):
      name = f"i{r:02d}_{t:02d}_{lev}.bmp"
      images[name] = write_image(top / "distorted_images" / name, 500 + 10 * r + t + lev,
                                 fmt="BMP")
      lines.append((round(5.5 - 0.4 * lev + 0.01 * r, 5), name))
  (top / "mos_with_names.txt").write_text("".join(f"{m} {n}\n" for m, n in lines))
  std = [round(0.1 + 0.01 * i, 5) for i in range(len(lines))]
  (top / "mos_std.txt").write_text("".join(f"{s}\n" for s in std))
  return {"top": top, "images": images, "lines": lines, "std": std}


# --- LIVE release 2 -----------------------------------------------------------------
LIVE_FOLDERS = (("jp2k", 3), ("jpeg", 2), ("wn", 2), ("gblur", 2), ("fastfading", 2))
LIVE_REFS = ("bikes.bmp", "cemetry.bmp", "sailing2.bmp", "womanhat.bmp", "parrots.bmp")


def live_iqa(root: pathlib.Path) -> dict:
  top = root / "databaserelease2"
  images = {f"refimgs/{r}": write_image(top / "refimgs" / r, 600 + i, fmt="BMP")
            for i, r in enumerate(LIVE_REFS)}
  refnames, dmos, orgs, std, k = [], [], [], [], 0
  for folder, n in LIVE_FOLDERS:
    for i in range(1, n + 1):
      ref = LIVE_REFS[k % len(LIVE_REFS)]
      images[f"{folder}/img{i}.bmp"] = write_image(top / folder / f"img{i}.bmp", 700 + k,
                                                    fmt="BMP")
      refnames.append(ref)
      orgs.append(1 if k == 2 else 0)  # one entry is a reference copy (orgs = 1)
      dmos.append(0.0 if k == 2 else 20.0 + 3 * k)
      std.append(5.0 + k)
      k += 1
  cell = np.empty((1, k), dtype=object)
  for i, r in enumerate(refnames):
    cell[0, i] = np.array([r])
  scipy.io.savemat(top / "dmos_realigned.mat",
                   {"dmos_new": np.asarray([dmos]), "orgs": np.asarray([orgs], float),
                    "dmos_std": np.asarray([std])})
  scipy.io.savemat(top / "refnames_all.mat", {"refnames_all": cell})
  return {"top": top, "images": images, "refnames": refnames, "dmos": dmos, "orgs": orgs,
          "std": std}


# --- CSIQ ---------------------------------------------------------------------------
CSIQ_TYPES = (("noise", 1, "awgn", "AWGN"), ("jpeg 2000", 3, "jpeg2000", "jpeg2000"),
              ("blur", 5, "blur", "BLUR"))
CSIQ_REFS = ("1600", "aerial_city", "boston", "bridge", "butter_flower")


def _xlsx(path: pathlib.Path, rows: list[list]) -> None:
  """A minimal Excel workbook (two sheets; data in the second, starting in column B)."""
  strings: list[str] = []

  def cell(ref, v):
    if isinstance(v, str):
      if v not in strings:
        strings.append(v)
      return f'<c r="{ref}" t="s"><v>{strings.index(v)}</v></c>'
    return f'<c r="{ref}"><v>{v}</v></c>'

  body = "".join(
      f'<row r="{i + 1}">' + "".join(cell(f"{chr(66 + j)}{i + 1}", v)
                                     for j, v in enumerate(r)) + "</row>"
      for i, r in enumerate(rows))
  ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
  rns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
  sheet = f'<?xml version="1.0"?><worksheet {ns}><sheetData>{body}</sheetData></worksheet>'
  empty = f'<?xml version="1.0"?><worksheet {ns}><sheetData/></worksheet>'
  sst = (f'<?xml version="1.0"?><sst {ns}>' + "".join(f"<si><t>{s}</t></si>" for s in strings)
         + "</sst>")
  wb = (f'<?xml version="1.0"?><workbook {ns} {rns}><sheets>'
        '<sheet name="note" sheetId="1" r:id="rId1"/>'
        '<sheet name="all_by_image" sheetId="2" r:id="rId2"/></sheets></workbook>')
  rels = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
          'package/2006/relationships">'
          '<Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/>'
          '<Relationship Id="rId2" Type="worksheet" Target="worksheets/sheet2.xml"/>'
          '<Relationship Id="rId3" Type="sharedStrings" Target="sharedStrings.xml"/>'
          '</Relationships>')
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
               'openxmlformats.org/package/2006/content-types"/>')
    z.writestr("xl/workbook.xml", wb)
    z.writestr("xl/_rels/workbook.xml.rels", rels)
    z.writestr("xl/worksheets/sheet1.xml", empty)
    z.writestr("xl/worksheets/sheet2.xml", sheet)
    z.writestr("xl/sharedStrings.xml", sst)


def csiq(root: pathlib.Path) -> dict:
  top = root / "CSIQ"
  images = {f"{r}.png": write_image(top / "src_imgs" / f"{r}.png", 800 + i)
            for i, r in enumerate(CSIQ_REFS)}
  rows = [["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]]
  for i, ref in enumerate(CSIQ_REFS):
    for kind, idx, folder, tag in CSIQ_TYPES[: 2 + i % 2]:
      lev = 1 + (i + idx) % 5
      name = f"{ref}.{tag}.{lev}.png"
      images[name] = write_image(top / "dst_imgs" / folder / name, 900 + 10 * i + idx)
      rows.append([int(ref) if ref.isdigit() else ref, idx, kind, lev,
                   round(0.01 * (i + 1), 3), round(0.1 * idx + 0.01 * i, 3)])
  _xlsx(top / "csiq.DMOS.xlsx", rows)
  return {"top": top, "images": images, "rows": rows[1:]}


# --- LIVE in the Wild ---------------------------------------------------------------
def live_in_the_wild(root: pathlib.Path, n: int = 10) -> dict:
  top = root / "ChallengeDB_release"
  names, images = [], {}
  for i in range(7):
    name = f"t{i + 1}.bmp"
    write_image(top / "Images" / "trainingImages" / name, 1100 + i, fmt="BMP")
    names.append(name)
  for i in range(n):
    name = f"{10 + i}.bmp"
    images[name] = write_image(top / "Images" / name, 1200 + i, fmt="BMP")
    names.append(name)
  cell = np.empty((len(names), 1), dtype=object)
  for i, nm in enumerate(names):
    cell[i, 0] = np.array([nm])
  mos = np.round(np.linspace(10, 90, len(names)), 3)
  std = np.round(np.linspace(5, 15, len(names)), 3)
  (top / "Data").mkdir(parents=True)
  scipy.io.savemat(top / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
  scipy.io.savemat(top / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos[None]})
  scipy.io.savemat(top / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": std[None]})
  return {"top": top, "images": images, "names": names, "mos": mos, "std": std}
