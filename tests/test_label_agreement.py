"""The compare_labels stage (deepfl_jax/label_agreement.py) on a fake KADIS score file:
two 96x96 references x (Gaussian blur, darken) x 5 levels, one row whose reference is
absent, one distorted image supplied as a file; three fast metrics."""
import csv
import json

import jax
import ml_collections
import numpy as np
import pytest
import skimage.data
from PIL import Image

from deepfl_jax import label_agreement, metrics, stages
from deepfl_jax.distortions import distort

NAMES = ("ssim", "mdsi", "gmsd")
HEADER = ("dist_im,ref_im,SSIM,MS-SSIM,IW-SSIM,MDSI,VSI,FSIM,GMSD,SFF,SCQI,ADD-GSIM,"
          "SR-SIM")


def _write_scores(path, rows):
  """rows: (dist_im, ref_im, {metric: value}) -> a score file (other columns 0.5)."""
  lines = [HEADER]
  for d, r, vals in rows:
    cols = [repr(float(vals.get(m, 0.5))) for m in metrics.METRIC_NAMES]
    lines.append(",".join([d, r, *cols]))
  path.write_text("\n".join(lines) + "\n")
  return str(path)


def _config(score_file, ref_dir, dist_dir):
  config = ml_collections.ConfigDict()
  c = config.compare_labels = ml_collections.ConfigDict()
  c.score_file, c.ref_dir, c.dist_dir = score_file, str(ref_dir), str(dist_dir)
  c.max_rows, c.batch_size, c.metrics = 0, 10, NAMES
  c.color_mode = "rgb2gray_uint8"
  return config


@pytest.fixture(scope="module")
def fake_kadis(tmp_path_factory):
  root = tmp_path_factory.mktemp("kadis")
  (root / "ref_imgs").mkdir()
  (root / "dist_imgs").mkdir()
  refs = {"a.png": skimage.data.astronaut()[100:196, 150:246],
          "b.png": skimage.data.coffee()[100:196, 200:296]}
  for name, img in refs.items():
    Image.fromarray(img).save(root / "ref_imgs" / name)
  rows = [(f"{r[0]}_{kind}_{lv:02d}.png", r, {})
          for r in refs for kind in ("gblur", "darken") for lv in range(1, 6)]
  rows.append(("c_gblur_01.png", "c.png", {}))          # reference not at hand
  # One distorted image the user has (a "generated dataset"): a plain shift.
  given = np.clip(refs["a.png"].astype(int) + 9, 0, 255).astype(np.uint8)
  Image.fromarray(given).save(root / "dist_imgs" / "a_gblur_05.png")
  return root, refs, rows, given


def test_compare_labels_report(fake_kadis, tmp_path):
  root, refs, rows, given = fake_kadis
  work = tmp_path / "run"
  config = _config(_write_scores(root / "first.csv", rows), root / "ref_imgs",
                   root / "dist_imgs")
  first = stages.STAGES["compare_labels"](config, str(work))
  assert first["rows_in_file"] == 21 and first["rows_compared"] == 20
  assert first["rows_without_reference"] == 1
  assert first["distorted_from_files"] == 1 and first["distorted_regenerated"] == 19
  # Our scores (cached per row) are the metrics of (reference, engine output) ...
  with open(work / "compare_labels" / "ours.csv") as f:
    ours = {r["dist_im"]: r for r in csv.DictReader(f)}
  ref = refs["b.png"]
  dist = np.asarray(distort(ref, 1, 3, jax.random.PRNGKey(0)))
  dist = np.clip(np.floor(dist * 255 + 0.5), 0, 255).astype(np.uint8)
  np.testing.assert_allclose(float(ours["b_gblur_03.png"]["ssim"]),
                             float(metrics.ssim(ref, dist)[0]), rtol=1e-6)
  np.testing.assert_allclose(float(ours["b_darken_03.png"]["mdsi"]),
                             float(metrics.mdsi(ref, np.asarray(
                                 label_agreement._regenerate(ref, 17, 3, "b_darken_03.png")))[0]),
                             rtol=1e-6)
  # ... or of the supplied file where there is one.
  np.testing.assert_allclose(float(ours["a_gblur_05.png"]["gmsd"]),
                             float(metrics.gmsd(refs["a.png"], given)[0]), rtol=1e-6)

  # A "published" file that is ours shifted by 0.01 (SSIM), doubled (GMSD), and with
  # MDSI reversed in rank: the report must show exactly that.
  pub = [(d, r, {"ssim": float(ours[d]["ssim"]) + 0.01,
                 "gmsd": 2 * float(ours[d]["gmsd"]),
                 "mdsi": -float(ours[d]["mdsi"])}) for d, r, _ in rows if d in ours]
  config = _config(_write_scores(root / "second.csv", pub), root / "ref_imgs",
                   root / "dist_imgs")
  rep = label_agreement.run(config, str(work))       # cached: no rescoring
  assert rep["distorted_regenerated"] == 0 and rep["rows_compared"] == 20
  o = rep["overall"]
  assert o["ssim"]["n"] == 20 and o["ssim"]["mad"] == pytest.approx(0.01, abs=1e-9)
  assert o["ssim"]["srocc"] == pytest.approx(1.0) and o["ssim"]["plcc"] == pytest.approx(1.0)
  assert o["gmsd"]["plcc"] == pytest.approx(1.0)
  gm = np.array([float(ours[d]["gmsd"]) for d, _, _ in pub])
  assert o["gmsd"]["mad"] == pytest.approx(np.mean(np.abs(gm)), rel=1e-9)
  assert o["mdsi"]["srocc"] == pytest.approx(-1.0)
  assert set(rep["by_type"]) == {"1 gaussian_blur", "17 darken"}
  assert rep["by_type"]["17 darken"]["ssim"]["n"] == 10
  saved = json.loads((work / "compare_labels" / "agreement.json").read_text())
  assert saved["overall"]["ssim"]["n"] == 20
  md = (work / "compare_labels" / "agreement.md").read_text()
  assert "| ssim | 20 | 1.000 | 1.000 | 0.0100 | 0 |" in md
  assert "17 darken" in md


def test_compare_labels_errors(fake_kadis, tmp_path):
  root, _, rows, _ = fake_kadis
  good = _write_scores(root / "e.csv", rows)
  with pytest.raises(ValueError, match="score_file"):
    label_agreement.run(_config("", root / "ref_imgs", ""), str(tmp_path))
  with pytest.raises(ValueError, match="ref_dir"):
    label_agreement.run(_config(good, root / "nowhere", ""), str(tmp_path))
  bad = _config(good, root / "ref_imgs", "")
  bad.compare_labels.metrics = ("scqi",)
  with pytest.raises(ValueError, match="scqi_proxy"):
    label_agreement.run(bad, str(tmp_path))
  with pytest.raises(ValueError, match="type and level"):
    label_agreement.parse_dist_im("im1_blurry_03.png")
  assert label_agreement.parse_dist_im("x_y_noisegauss_02.bmp") == (11, 2)
