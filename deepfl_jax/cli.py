"""`deepfl-iqa`: command line of a trained DeepFL-IQA run.

    deepfl-iqa score IMAGE_OR_FOLDER --workdir=DIR [--batch-size=8]

prints CSV `path,score` (a header, then one line per image, in path order): the
quality predicted by the run's Stage 3 regressor (`<workdir>/stage3/model.json`, the
regressor of its export repeat) on MLSP features of the backbone Stage 2 used (reloaded
from its recorded source and checked against the recorded weight digest). Images are
scored at native resolution, like the database the regressor was trained on; the score
is on that database's scale (e.g. KADID-10k DMOS 1..5, higher = better).

A folder is searched recursively for image files (png, jpg, jpeg, bmp, tif, tiff, gif,
webp). Errors (missing work directory, untrained run, unreadable or too small image)
print one line naming the problem and exit with status 2; no partial CSV is printed.
"""
from __future__ import annotations

import argparse
import csv
import pathlib
import sys
from typing import Sequence

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


class CliError(Exception):
  """A user-facing error: printed as `deepfl-iqa: error: <message>`, exit status 2."""


def _image_paths(target: pathlib.Path) -> list[pathlib.Path]:
  if target.is_dir():
    paths = sorted(p for p in target.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
      raise CliError(f"{target} contains no image files ({', '.join(IMAGE_SUFFIXES)})")
    return paths
  if target.is_file():
    return [target]
  raise CliError(f"{target}: no such image file or folder")


def _read_image(path: pathlib.Path) -> np.ndarray:
  """uint8 (H, W, 3); CliError naming the file when it cannot be decoded."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as im:
      im.load()
      rgb = np.asarray(im.convert("RGB"))
  except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
    raise CliError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
  return rgb


def _image_size(path: pathlib.Path) -> tuple[int, int]:
  from PIL import Image  # pylint: disable=import-outside-toplevel
  try:
    with Image.open(path) as im:
      w, h = im.size
  except Exception as e:  # pylint: disable=broad-except
    raise CliError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
  return h, w


def _check_workdir(workdir) -> pathlib.Path:
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise CliError(f"work directory {workdir} does not exist; pass the --workdir of a "
                   "run trained with `python -m deepfl_jax.main --config=... "
                   "--workdir=DIR`")
  return workdir


def load_model(workdir):
  """(backbone module, backbone variables, regressor variables, model.json) of a
  trained work directory; CliError with the fix when something is missing."""
  workdir = _check_workdir(workdir)
  from deepfl_jax.train import stage2, stage3  # pylint: disable=import-outside-toplevel
  try:
    reg, meta = stage3.load_regressor(workdir)
  except FileNotFoundError:
    raise CliError(f"{workdir} has no trained regressor ({stage3.STAGE_DIR}/model.json "
                   "is missing): run Stages 2 and 3 on it first (config.stages) ") from None
  try:
    fs = stage2.load_feature_set(workdir / meta["feature_set"])
    model, variables = stage2.backbone_from_feature_set(fs, workdir)
  except (FileNotFoundError, ValueError) as e:
    raise CliError(f"cannot load the backbone of {workdir}: {e}") from None
  return model, variables, reg, meta


def score(paths: Sequence[pathlib.Path], workdir, *, batch_size: int = 8
          ) -> list[tuple[pathlib.Path, float]]:
  """Predicted scores of image files with the run in `workdir`, in the given order."""
  model, variables, reg, meta = load_model(workdir)
  # pylint: disable-next=import-outside-toplevel
  from deepfl_jax.models import inception_resnet_v2 as irv2
  from deepfl_jax.train import stage2, stage3  # pylint: disable=import-outside-toplevel
  for p in paths:  # check every file (header only) before any compute
    h, w = _image_size(p)
    if min(h, w) < irv2.MIN_SIZE:
      raise CliError(f"image {p} is {w}x{h}; the backbone needs sides >= {irv2.MIN_SIZE}")

  class Records:  # decoded on access, one batch of a size at a time
    def __len__(self):
      return len(paths)

    def __getitem__(self, i):
      return {"image": _read_image(paths[i])}

  feats = stage2.extract_features(variables, Records(), model=model, kind=meta["kind"],
                                  input_scale=meta["input_scale"], batch_size=batch_size,
                                  progress=False)
  pred = stage3.predict(reg, feats, hidden=meta["hidden"], dropout=meta["dropout"])
  return list(zip(paths, pred.tolist()))


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="deepfl-iqa", description="DeepFL-IQA (JAX): score images with a trained run.")
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("score", help="predicted quality of images, as CSV path,score")
  p.add_argument("target", metavar="IMAGE_OR_FOLDER")
  p.add_argument("--workdir", required=True, help="work directory of a trained run")
  p.add_argument("--batch-size", type=int, default=8,
                 help="images of one size per forward pass")
  args = parser.parse_args(argv)
  try:
    if args.batch_size < 1:
      raise CliError(f"--batch-size must be >= 1, got {args.batch_size}")
    _check_workdir(args.workdir)
    paths = _image_paths(pathlib.Path(args.target))
    rows = score(paths, args.workdir, batch_size=args.batch_size)
  except CliError as e:
    print(f"deepfl-iqa: error: {e}", file=sys.stderr)
    return 2
  writer = csv.writer(sys.stdout, lineterminator="\n")
  writer.writerow(["path", "score"])
  for path, s in rows:
    writer.writerow([str(path), f"{s:.6g}"])
  sys.stdout.flush()
  return 0


if __name__ == "__main__":
  sys.exit(main())
