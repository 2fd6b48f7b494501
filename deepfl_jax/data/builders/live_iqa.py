"""LIVE Image Quality Assessment Database, release 2 (Sheikh, Sabir, Bovik 2006)."""
from __future__ import annotations

import pathlib

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from deepfl_jax.data.builders import _base


def mat_vector(path: pathlib.Path, key: str, error) -> np.ndarray:
  """A MATLAB vector (numbers or a cell of strings) from a .mat file, flattened."""
  try:
    mat = scipy.io.loadmat(str(path))
  except FileNotFoundError:
    raise error(f"{path.name} is missing") from None
  except Exception as e:  # scipy raises ValueError / TypeError / MatReadError
    raise error(f"{path.name} cannot be read as a MATLAB file ({e})") from None
  if key not in mat:
    raise error(f"{path.name} has no variable {key!r} (has "
                f"{sorted(k for k in mat if not k.startswith('__'))})")
  v = np.asarray(mat[key]).reshape(-1)
  if v.dtype == object:  # cell array of char arrays
    return np.asarray([str(np.asarray(c).reshape(-1)[0]) if np.asarray(c).size else ""
                       for c in v], dtype=object)
  return v


class LiveIqa(_base.IqaBuilder):
  """LIVE release 2: 779 distorted images (29 references; JPEG2000, JPEG, white noise,
  Gaussian blur, fast fading) with realigned DMOS (lower = better).

  Expected layout (manual directory, or its `databaserelease2/` folder):

      databaserelease2/
        jp2k/img1.bmp .. img227.bmp      folder order and sizes fixed by the release:
        jpeg/img1.bmp .. img233.bmp      entry k of the .mat vectors is image k of
        wn/img1.bmp .. img174.bmp        jp2k, then jpeg, wn, gblur, fastfading
        gblur/img1.bmp .. img174.bmp
        fastfading/img1.bmp .. img174.bmp
        refimgs/<reference>.bmp          the 29 references (e.g. bikes.bmp)
        dmos_realigned.mat               dmos_new, orgs, dmos_std (1 x 982)
        refnames_all.mat                 refnames_all (1 x 982 cell)

  Entries with orgs = 1 are the references themselves and are left out.
  Split `full`: image, name (`jp2k/img1.bmp`), content (reference stem), reference,
  dist_type (1..5 in folder order), score (dmos_new), std (dmos_std).
  Split `references`: image, name, content.
  """

  TITLE = "LIVE IQA (release 2)"
  HOMEPAGE = "https://live.ece.utexas.edu/research/quality/subjective.htm"
  CITATION = ("H.R. Sheikh, M.F. Sabir, A.C. Bovik, A statistical evaluation of recent "
              "full reference image quality assessment algorithms, IEEE TIP 15, 2006.")
  LAYOUT = """\
  databaserelease2/
    jp2k/ jpeg/ wn/ gblur/ fastfading/   (img1.bmp .. imgN.bmp; N = 227, 233, 174, 174, 174)
    refimgs/*.bmp
    dmos_realigned.mat                   (dmos_new, orgs, dmos_std)
    refnames_all.mat                     (refnames_all)"""
  MANUAL_DOWNLOAD_INSTRUCTIONS = _base.instructions(TITLE, HOMEPAGE, LAYOUT)
  TOP_FOLDERS = ("databaserelease2", "live")
  MARKER = "dmos_realigned.mat"
  SCORE_NAME = "dmos"
  HIGHER_IS_BETTER = False
  SPLIT_KIND = "content"
  FULL_REFERENCE = True
  # (folder, number of images) in the order of the .mat vectors.
  FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174),
             ("fastfading", 174))
  INDEX_FIELDS = ("name", "content", "reference", "dist_type", "score", "std")

  def _features_dict(self):
    return {"reference": tfds.features.Text(),
            "dist_type": tfds.features.Scalar(np.int32),
            "score": tfds.features.Scalar(np.float32),
            "std": tfds.features.Scalar(np.float32)}

  def _plan(self, root: pathlib.Path):
    err = lambda m: self.layout_error(m, root)
    dmos = mat_vector(root / "dmos_realigned.mat", "dmos_new", err)
    orgs = mat_vector(root / "dmos_realigned.mat", "orgs", err)
    refnames = mat_vector(root / "refnames_all.mat", "refnames_all", err)
    try:
      std = mat_vector(root / "dmos_realigned.mat", "dmos_std", err)
    except _base.ManualDirError:
      std = np.full(dmos.shape, np.nan)
    total = sum(n for _, n in self.FOLDERS)
    for name, v in (("dmos_new", dmos), ("orgs", orgs), ("refnames_all", refnames),
                    ("dmos_std", std)):
      if v.shape[0] != total:
        raise err(f"{name} has {v.shape[0]} entries, the release has {total}")
    refdir = self.require_dir(root / "refimgs")
    refs = _base.file_index(refdir)
    full, used, k = [], {}, 0
    for t, (folder, n) in enumerate(self.FOLDERS, start=1):
      self.require_dir(root / folder)
      for i in range(1, n + 1):
        if not orgs[k]:
          refname = str(refnames[k])
          ref = refs.get(refname.lower())
          if ref is None:
            raise err(f"refimgs/ has no {refname} (needed by {folder}/img{i}.bmp)")
          content = pathlib.Path(refname).stem
          used[ref.name] = (ref, content)
          full.append(dict(image=root / folder / f"img{i}.bmp", name=f"{folder}/img{i}.bmp",
                           content=content, reference=ref.name, dist_type=t,
                           score=float(dmos[k]), std=float(std[k])))
        k += 1
    references = [dict(image=p, name=n, content=c, reference=n)
                  for n, (p, c) in sorted(used.items())]
    return {_base.FULL: full, _base.REFERENCES: references}
