"""Each database builder end to end on a tiny fake archive in the official layout, and
the errors for a malformed one (missing score file, bad header, missing / corrupt image
under both on_bad_image options)."""
from __future__ import annotations

import dataclasses
import pathlib
import warnings
from typing import Callable

import numpy as np
import pytest
import tensorflow_datasets as tfds

from deepfl_jax.data import builders, load_source, splits
from deepfl_jax.data.builders import live_iqa
from tests.data import fakes


class TinyLive(live_iqa.LiveIqa, skip_registration=True):
  """LIVE release 2 with the fake archive's folder sizes (the release's are 227, ...)."""
  FOLDERS = fakes.LIVE_FOLDERS


@dataclasses.dataclass
class Case:
  builder: object
  write: Callable
  marker: str            # the score file, relative to the archive's top folder
  image: str             # a distorted image file, relative to the top folder
  n: int                 # records of split `full`
  n_refs: int | None     # records of split `references` (None: no such split)


CASES = {
    "kadid10k": Case("kadid10k", fakes.kadid10k, "dmos.csv", "images/I02_10_05.png",
                     10, 5),
    "kadis700k": Case("kadis700k", fakes.kadis700k, "kadis700k_ref_imgs.csv",
                      "ref_imgs/abstract-1239412.png", 4, None),
    "koniq10k": Case("koniq10k", fakes.koniq10k, "koniq10k_distributions_sets.csv",
                     "512x384/10004473393.jpg", 10, None),
    "tid2013": Case("tid2013", fakes.tid2013, "mos_with_names.txt",
                    "distorted_images/i03_24_5.bmp", 10, 5),
    "live_iqa": Case(TinyLive, fakes.live_iqa, "dmos_realigned.mat", "jpeg/img2.bmp",
                     10, 5),
    "csiq": Case("csiq", fakes.csiq, "csiq.DMOS.xlsx", "dst_imgs/blur/aerial_city.BLUR.2.png",
                 12, 5),
    "live_in_the_wild": Case("live_in_the_wild", fakes.live_in_the_wild,
                             "Data/AllMOS_release.mat", "Images/12.bmp", 10, None),
}


def _build(case: Case, tmp_path: pathlib.Path, **kw):
  manual = tmp_path / "manual"
  manual.mkdir(parents=True, exist_ok=True)
  fake = case.write(manual)
  return fake, manual, lambda: builders.prepare(case.builder, manual, tmp_path / "tfds", **kw)


def _check_common(case: Case, source, fake):
  assert len(source) == case.n
  for i in range(len(source)):
    rec = source.records[i]
    name = rec["name"].decode()
    assert name == source.index["name"][i]
    key = name if name in fake["images"] else name.split("/")[-1]
    np.testing.assert_array_equal(rec["image"], fake["images"][key])
  for f, col in source.index.items():
    assert len(col) == case.n, f
  if case.n_refs is None:
    assert source.references is None
  else:
    assert len(source.references) == case.n_refs
    for i, ref_name in enumerate(source.references.index["name"]):
      img = source.reference_image(ref_name)
      key = ref_name if ref_name in fake["images"] else f"refimgs/{ref_name}"
      np.testing.assert_array_equal(img, fake["images"][key])
    # every distorted record names a stored reference with the same content
    ref_content = dict(zip(source.references.index["name"],
                           source.references.index["content"]))
    for ref, content in zip(source.index["reference"], source.index["content"]):
      assert ref_content[ref] == content


@pytest.mark.parametrize("name", list(CASES))
def test_builds_end_to_end(name, tmp_path):
  case = CASES[name]
  fake, _, build = _build(case, tmp_path)
  builder = build()
  assert builder.info.splits["full"].num_examples == case.n
  source = load_source(builder)
  _check_common(case, source, fake)
  kind = source.metadata["split_kind"]
  parts = splits.make_split(source.index, kind, seed=0)
  assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(case.n))
  # file format and reading by name through tfds.data_source
  assert list(builder.data_path.glob("*.array_record*"))
  if isinstance(case.builder, str):
    by_name = load_source(case.builder, tmp_path / "tfds")
    assert list(by_name.index["name"]) == list(source.index["name"])
    ds = tfds.data_source(case.builder, data_dir=str(tmp_path / "tfds"), split="full",
                          download=False)
    assert len(ds) == case.n and ds[case.n - 1]["name"].decode() == source.index["name"][-1]


def test_kadid_fields(tmp_path):
  fake, _, build = _build(CASES["kadid10k"], tmp_path)
  s = load_source(build())
  names = [r[0] for r in fake["rows"]]
  assert list(s.index["name"]) == names
  np.testing.assert_allclose(s.index["score"], [r[2] for r in fake["rows"]], rtol=1e-6)
  np.testing.assert_allclose(s.index["std"], [r[3] for r in fake["rows"]], rtol=1e-6)
  assert list(s.index["dist_type"]) == [int(n[4:6]) for n in names]
  assert list(s.index["level"]) == [int(n[7:9]) for n in names]
  assert list(s.index["reference"]) == [r[1] for r in fake["rows"]]
  assert s.metadata["score_name"] == "dmos" and s.metadata["higher_is_better"]
  # the references split has no score: NaN, not a made-up number
  assert np.isnan(s.references.records[0]["score"])


def test_kadis_assignment_and_scores(tmp_path):
  fake, _, build = _build(CASES["kadis700k"], tmp_path)
  s = load_source(build())
  rows = {n: (t1, t2) for n, t1, t2 in fakes.KADIS_ROWS}
  for i, name in enumerate(s.index["name"]):
    t1, t2 = rows[name]
    assert s.index["dist_type"][i] == (8 if (t1, t2) == (7, 8) else t1)
    rec = s.records[i]
    if name in fake["scores"]:
      assert rec["has_fr_scores"]
      np.testing.assert_allclose(rec["fr_scores"], fake["scores"][name], rtol=1e-6)
    else:
      assert not rec["has_fr_scores"] and np.isnan(rec["fr_scores"]).all()
  assert list(s.index["dist_type"]) == [8, 7, 11, 1]


def test_kadis_without_score_file(tmp_path):
  manual = tmp_path / "manual"
  fakes.kadis700k(manual, friqa=False)
  s = load_source(builders.prepare("kadis700k", manual, tmp_path / "tfds"))
  assert not s.index["has_fr_scores"].any()
  assert s.metadata["has_friqa_file"] is False


def test_koniq_official_split_and_resolution(tmp_path):
  manual = tmp_path / "manual"
  fake = fakes.koniq10k(manual, resolution="1024x768")
  # config 512x384 (default) needs the 512x384/ folder
  with pytest.raises(builders.ManualDirError, match="512x384"):
    builders.prepare("koniq10k", manual, tmp_path / "tfds")
  s = load_source(builders.prepare("koniq10k", manual, tmp_path / "tfds",
                                   resolution="1024x768"))
  assert list(s.index["set"]) == fakes.KONIQ_SETS
  np.testing.assert_allclose(s.index["score"], [r[7] for r in fake["rows"]], rtol=1e-6)
  np.testing.assert_array_equal(s.records[3]["ratings"], fake["rows"][3][1:6])
  parts = splits.make_split(s.index, "official")
  assert [len(parts[p]) for p in splits.PARTS] == [6, 2, 2]
  assert all(s.index["set"][i] == "test" for i in parts["test"])


def test_tid_live_csiq_wild_fields(tmp_path):
  fake, _, build = _build(CASES["tid2013"], tmp_path / "tid")
  s = load_source(build())
  np.testing.assert_allclose(s.index["score"], [m for m, _ in fake["lines"]], rtol=1e-6)
  np.testing.assert_allclose(s.index["std"], fake["std"], rtol=1e-6)
  assert list(s.index["content"]) == [n[:3].upper() for _, n in fake["lines"]]

  fake, _, build = _build(CASES["live_iqa"], tmp_path / "live")
  s = load_source(build())
  keep = [k for k, o in enumerate(fake["orgs"]) if not o]
  np.testing.assert_allclose(s.index["score"], np.asarray(fake["dmos"])[keep])
  np.testing.assert_allclose(s.index["std"], np.asarray(fake["std"])[keep])
  assert list(s.index["reference"]) == [fake["refnames"][k] for k in keep]
  assert "jp2k/img3.bmp" not in s.index["name"]  # orgs = 1: the reference itself
  assert not s.metadata["higher_is_better"]

  fake, _, build = _build(CASES["csiq"], tmp_path / "csiq")
  s = load_source(build())
  np.testing.assert_allclose(s.index["score"], [r[5] for r in fake["rows"]], rtol=1e-6)
  assert list(s.index["dist_type"]) == [r[1] for r in fake["rows"]]
  assert list(s.index["level"]) == [r[3] for r in fake["rows"]]
  assert list(s.index["content"]) == [str(r[0]) for r in fake["rows"]]

  fake, _, build = _build(CASES["live_in_the_wild"], tmp_path / "wild")
  s = load_source(build())
  assert list(s.index["name"]) == fake["names"][7:]  # practice images left out
  np.testing.assert_allclose(s.index["score"], fake["mos"][7:], rtol=1e-6)
  np.testing.assert_allclose(s.index["std"], fake["std"][7:], rtol=1e-6)


# --- malformed archives -----------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_missing_score_file_names_layout(name, tmp_path):
  case = CASES[name]
  fake, _, build = _build(case, tmp_path)
  (fake["top"] / case.marker).unlink()
  with pytest.raises(builders.ManualDirError) as e:
    build()
  msg = str(e.value)
  assert pathlib.Path(case.marker).name in msg
  assert "Expected layout" in msg and "manual directory" in msg


def test_empty_manual_dir(tmp_path):
  (tmp_path / "manual").mkdir()
  with pytest.raises(builders.ManualDirError, match="missing or empty") as e:
    builders.prepare("kadid10k", tmp_path / "manual", tmp_path / "tfds")
  assert "dmos.csv" in str(e.value)  # the layout is in the message


@pytest.mark.parametrize("name,header", [
    ("kadid10k", "dist_img,ref_img,dmos\n"),
    ("kadis700k", "ref_im,dist_type\n"),
    ("koniq10k", "image_name,MOS,SD,set\n"),
])
def test_bad_csv_header(name, header, tmp_path):
  case = CASES[name]
  fake, _, build = _build(case, tmp_path)
  path = fake["top"] / case.marker
  lines = path.read_text().splitlines(keepends=True)
  path.write_text(header + "".join(lines[1:]))
  with pytest.raises(builders.ManualDirError, match="missing"):
    build()


def test_bad_mat_and_xlsx(tmp_path):
  fake, _, build = _build(CASES["live_iqa"], tmp_path / "live")
  (fake["top"] / "refnames_all.mat").write_bytes(b"not a mat file")
  with pytest.raises(builders.ManualDirError, match="refnames_all.mat"):
    build()
  fake, _, build = _build(CASES["csiq"], tmp_path / "csiq")
  (fake["top"] / "csiq.DMOS.xlsx").write_bytes(b"PK garbage")
  with pytest.raises(builders.ManualDirError, match="xlsx"):
    build()


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_image_raise_and_skip(name, tmp_path):
  case = CASES[name]
  fake, _, build_raise = _build(case, tmp_path)
  bad = fake["top"] / case.image
  fakes.corrupt(bad)
  with pytest.raises(builders.BadImageError, match=bad.name) as e:
    build_raise()
  assert "corrupt or truncated" in str(e.value)
  with pytest.warns(UserWarning, match=bad.name):
    builder = builders.prepare(case.builder, tmp_path / "manual", tmp_path / "tfds2",
                               on_bad_image="skip")
  s = load_source(builder)
  assert len(s) == case.n - 1
  record = case.image if name == "live_iqa" else bad.name
  assert record not in s.index["name"]
  assert s.metadata["skipped_images"] == [str(bad)]


def test_missing_image_raise_and_skip(tmp_path):
  case = CASES["kadid10k"]
  fake, manual, build = _build(case, tmp_path)
  (fake["top"] / case.image).unlink()
  with pytest.raises(builders.BadImageError, match="I02_10_05.png: file is missing"):
    build()
  with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    s = load_source(builders.prepare("kadid10k", manual, tmp_path / "tfds2",
                                     on_bad_image="skip"))
  assert any("I02_10_05.png" in str(x.message) for x in w)
  assert "I02_10_05.png" not in s.index["name"] and len(s) == case.n - 1


def test_bad_config_option():
  with pytest.raises(ValueError, match="on_bad_image"):
    builders.IqaConfig(name="x", on_bad_image="ignore")
