"""`deepfl-iqa score` end to end on a work directory made here by Stages 2 and 3
(width-reduced backbone, random weights, tiny images), and its error messages."""
from __future__ import annotations

import csv
import io
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from PIL import Image

from deepfl_jax import cli, config_defaults
from deepfl_jax.data import mini_kadid
from deepfl_jax.data.pipeline import in_memory_source
from deepfl_jax.train import regressor, stage2, stage3


def _images(folder: pathlib.Path, n=30):
  """n PNGs (75x75 and 80x90) whose score is their mean brightness (10 contents)."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  examples = []
  for i in range(n):
    shape = (75, 75, 3) if i % 2 else (80, 90, 3)
    level = rng.uniform(0.1, 0.9)
    img = np.clip(rng.normal(level * 255, 30, shape), 0, 255).astype(np.uint8)
    name = f"img_{i:02d}.png"
    Image.fromarray(img).save(folder / name)
    examples.append({"image": img, "name": name, "content": f"c{i % 10}",
                     "score": float(1 + 4 * img.mean() / 255)})
  return in_memory_source(examples, index_fields=("name", "content", "score"),
                          metadata={"name": "brightness", "split_kind": "content",
                                    "score_name": "mos"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("cli")
  source = _images(root / "images")
  config = ml_collections.ConfigDict()
  config.stage2 = config_defaults.stage2_config()
  config.stage2.update(weights="random", random_seed=4, compare_random=False,
                       width=0.125, blocks=(1, 1, 1), batch_size=4, progress=False)
  config.stage3 = config_defaults.stage3_config()
  config.stage3.update(epochs=4, batch_size=8, hidden=(32, 16, 8), num_repeats=1,
                       progress=False)
  work = root / "work"
  fs = stage2.run_stage2(config, str(work), source=source)["random"]
  stage3.run_stage3(config, str(work))
  return root, work, source, fs


def _run(argv, capsys):
  rc = cli.main(argv)
  out, err = capsys.readouterr()
  return rc, out, err


@pytest.mark.slow
def test_score_folder_matches_pipeline(trained, capsys):
  root, work, source, fs = trained
  rc, out, err = _run(["score", str(root / "images"), f"--workdir={work}",
                       "--batch-size=3"], capsys)
  assert rc == 0, err
  rows = list(csv.reader(io.StringIO(out)))
  assert rows[0] == ["path", "score"] and len(rows) == 1 + len(source)
  paths = [pathlib.Path(r[0]) for r in rows[1:]]
  assert [p.name for p in paths] == sorted(source.index["name"])
  got = np.asarray([float(r[1]) for r in rows[1:]])
  # The same numbers as the regressor on Stage 2's cached features of those files.
  reg, meta = regressor.load_regressor(work)
  pos = {n: i for i, n in enumerate(fs.columns["name"])}
  want = regressor.predict(reg, np.asarray(fs.features)[[pos[p.name] for p in paths]],
                           hidden=meta["hidden"])
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  assert np.std(got) > 0


def test_score_single_file(trained, capsys):
  root, work, _, _ = trained
  rc, out, _ = _run(["score", str(root / "images" / "img_03.png"), "--workdir",
                     str(work)], capsys)
  assert rc == 0
  rows = list(csv.reader(io.StringIO(out)))
  assert len(rows) == 2 and rows[1][0].endswith("img_03.png")
  assert np.isfinite(float(rows[1][1]))


def test_errors_name_the_problem(trained, tmp_path, capsys):
  root, work, _, _ = trained
  image = str(root / "images" / "img_01.png")
  rc, out, err = _run(["score", image, f"--workdir={tmp_path / 'nope'}"], capsys)
  assert rc == 2 and out == "" and "does not exist" in err and "nope" in err

  rc, out, err = _run(["score", image, f"--workdir={tmp_path}"], capsys)
  assert rc == 2 and out == "" and "no trained regressor" in err

  bad = tmp_path / "mixed"
  bad.mkdir()
  Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(bad / "a_ok.png")
  (bad / "b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
  rc, out, err = _run(["score", str(bad), f"--workdir={work}"], capsys)
  assert rc == 2 and out == "" and "b_broken.png" in err

  small = tmp_path / "small.png"
  Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(small)
  rc, out, err = _run(["score", str(small), f"--workdir={work}"], capsys)
  assert rc == 2 and "small.png" in err and "75" in err

  rc, _, err = _run(["score", str(tmp_path / "none.png"), f"--workdir={work}"], capsys)
  assert rc == 2 and "none.png" in err


def test_module_entry_point(tmp_path):
  # The console script's code path (deepfl-iqa = deepfl_jax.cli:main) in a process.
  p = subprocess.run([sys.executable, "-m", "deepfl_jax.cli", "score", str(tmp_path),
                      f"--workdir={tmp_path / 'missing'}"], capture_output=True,
                     text=True, timeout=120)
  assert p.returncode == 2 and "missing" in p.stderr and "does not exist" in p.stderr


def _rows(out):
  rows = list(csv.reader(io.StringIO(out)))[1:]
  return {pathlib.Path(r[0]).name: float(r[1]) for r in rows}


def test_sixteen_bit_grey_scaled_not_clipped(trained, tmp_path, capsys):
  _, work, _, _ = trained
  rng = np.random.default_rng(5)
  grey8 = rng.integers(20, 235, (90, 80), dtype=np.uint8)
  folder = tmp_path / "bits"
  folder.mkdir()
  Image.fromarray(grey8).save(folder / "a8.png")
  Image.fromarray(grey8.astype(np.uint16) * 257).save(folder / "b16.png")
  Image.fromarray(np.full_like(grey8, 255)).save(folder / "c_clipped.png")
  with Image.open(folder / "b16.png") as im:
    assert im.mode.startswith("I")  # a real 16-bit file
  rc, out, err = _run(["score", str(folder), f"--workdir={work}"], capsys)
  assert rc == 0, err
  s = _rows(out)
  # 16-bit v * 257 is read as 8-bit v: the same score as the 8-bit file, not the
  # all-white image that clipping at 255 would make of it.
  assert abs(s["b16.png"] - s["a8.png"]) < 1e-5
  assert abs(s["b16.png"] - s["c_clipped.png"]) > 1e-3


def test_skipped_files_counted_and_named_with_v(trained, tmp_path, capsys):
  _, work, _, _ = trained
  folder = tmp_path / "mixed"
  (folder / "sub").mkdir(parents=True)
  Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(folder / "sub" / "x.png")
  (folder / "notes.txt").write_text("not an image")
  (folder / "sub" / "raw.cr2").write_bytes(b"\0" * 10)
  rc, out, err = _run(["score", str(folder), f"--workdir={work}"], capsys)
  assert rc == 0 and list(_rows(out)) == ["x.png"]  # found in the subfolder
  assert "skipped 2 file(s) that are not images (-v names them)" in err
  assert "notes.txt" not in err
  rc, _, err = _run(["score", str(folder), f"--workdir={work}", "-v"], capsys)
  assert rc == 0 and "notes.txt" in err and "raw.cr2" in err


def test_training_size_named_and_resize(trained, tmp_path, capsys):
  _, work, source, _ = trained
  info = cli.training_info(work)
  h, w = info["size"]
  assert (h, w) in {(75, 75), (80, 90)} and info["higher_is_better"]
  assert info["score_range"][0] >= 1 and info["score_range"][1] <= 5
  rng = np.random.default_rng(6)
  big = np.clip(rng.normal(140, 40, (200, 160, 3)), 0, 255).astype(np.uint8)
  folder = tmp_path / "sizes"
  folder.mkdir()
  Image.fromarray(big).save(folder / "big.png")
  Image.fromarray(mini_kadid.fit_to_size(big, (h, w))).save(folder / "fitted.png")
  rc, out, err = _run(["score", str(folder / "big.png"), f"--workdir={work}"], capsys)
  assert rc == 0 and f"trained on {w}x{h} images" in err and "1 of 1 image" in err
  assert "scores are brightness mos" in err and "higher is better" in err
  native = _rows(out)["big.png"]
  rc, out, err = _run(["score", str(folder), f"--workdir={work}", "--resize"], capsys)
  assert rc == 0 and f"resized to {w}x{h}" in err
  s = _rows(out)
  # --resize applies the training-time convention: the same as the fitted file.
  assert abs(s["big.png"] - s["fitted.png"]) < 1e-4
  assert abs(s["big.png"] - native) > 1e-4


def test_score_help_says_what_the_csv_holds(capsys):
  with pytest.raises(SystemExit):
    cli.main(["score", "--help"])
  text = " ".join(capsys.readouterr().out.split())
  for phrase in ("CSV", "path,score", "higher is better", "DMOS 1..5", "recursively",
                 "--resize"):
    assert phrase in text, phrase


def test_import_and_bad_arguments_load_no_jax(tmp_path):
  """XLA's native logs are silenced before JAX starts (verbosity.quiet_native_logs), so
  the CLI module and its argument checks must not import JAX."""
  code = ("import sys; from deepfl_jax import cli; rc = cli.main(['score', "
          f"'--workdir', {str(tmp_path / 'none')!r}, {str(tmp_path)!r}]); "
          "print(rc, 'jax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, cwd=pathlib.Path(__file__).resolve().parents[1])
  assert out.stdout.split()[-2:] == ["2", "False"], (out.stdout, out.stderr[-2000:])
