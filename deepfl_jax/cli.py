"""`deepfl-iqa`: command line of a trained DeepFL-IQA run.

    deepfl-iqa score IMAGE_OR_FOLDER --workdir=DIR [--batch-size=8] [--resize] [-v]

prints CSV `path,score` (a header, then one line per image, in path order): the
quality predicted by the run's scoring regressor (`<workdir>/stage3/model.json`; its
"fit" says which: by default one fit on all evaluation contents for the epoch count the
splits chose, `config.stage3.export`) on MLSP features of the backbone Stage 2 used
(reloaded from its recorded source and checked against the recorded weight digest).
The score is on the scale of the database the regressor was trained on (e.g. KADID-10k
or the demo's mini-KADID: DMOS 1..5, higher = better; LIVE and CSIQ DMOS: lower =
better); stderr names that scale, its direction and range.

Images are scored at native resolution, like the database the regressor was trained
on. Scores depend on the size (a photograph scored at two sizes can get very
different scores): stderr says at which size the run was trained and how many images
differ; `--resize` brings each image to that size by the training-time convention
(`data.mini_kadid.fit_to_size`: MATLAB-style antialiased bicubic resize to cover, then
a centre crop).

Pixels are read as the metrics read them: 8-bit images as they are, 16-bit ones
(PNG/TIFF grey) scaled by 255/65535 to 8 bits, palette / grey / CMYK converted to RGB,
alpha dropped. A folder is searched recursively for image files (png, jpg, jpeg, bmp,
tif, tiff, gif, webp); other files are skipped and counted on stderr (`-v` names them).
Errors (missing work directory, untrained run, unreadable or too small image) print one
line naming the problem and exit with status 2; no partial CSV is printed.
"""
from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys
from typing import Sequence

import numpy as np
from PIL import Image

from deepfl_jax import verbosity

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


class CliError(Exception):
  """A user-facing error: printed as `deepfl-iqa: error: <message>`, exit status 2."""


def _image_paths(target: pathlib.Path) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
  """(image files, skipped other files) of a file or a folder searched recursively."""
  if target.is_dir():
    files = sorted(p for p in target.rglob("*") if p.is_file())
    paths = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not paths:
      raise CliError(f"{target} contains no image files ({', '.join(IMAGE_SUFFIXES)})")
    return paths, [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
  if target.is_file():
    return [target], []
  raise CliError(f"{target}: no such image file or folder")


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _to_rgb8(im, path) -> np.ndarray:
  """uint8 (H, W, 3) of an opened PIL image; 16-bit grey scaled to 8 bits (x * 255 /
  65535, rounded): Pillow's own convert("RGB") would clip it at 255."""
  if im.mode in _SIXTEEN_BIT or im.mode == "I":
    a = np.asarray(im, dtype=np.int64)
    if im.mode == "I" and (a.min() < 0 or a.max() > 65535):
      raise CliError(f"cannot read image {path}: 32-bit integer pixels (mode I, range "
                     f"{a.min()}..{a.max()}); save it as 8- or 16-bit")
    grey = np.round(a * (255.0 / 65535.0)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
  if im.mode == "F":
    raise CliError(f"cannot read image {path}: floating-point pixels (mode F) have no "
                   "fixed range; save it as 8- or 16-bit")
  return np.asarray(im.convert("RGB"))


def _read_image(path: pathlib.Path, size: tuple[int, int] | None = None) -> np.ndarray:
  """uint8 (H, W, 3), fitted to `size` (H, W) when given; CliError naming the file
  when it cannot be decoded."""
  try:
    with Image.open(path) as im:
      im.load()
      rgb = _to_rgb8(im, path)
  except CliError:
    raise
  except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
    raise CliError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
  if size is not None:
    # Lazy: data.mini_kadid imports JAX, which must start after `quiet_native_logs`.
    from deepfl_jax.data import mini_kadid  # pylint: disable=import-outside-toplevel
    rgb = mini_kadid.fit_to_size(rgb, size)
  return rgb


def _image_size(path: pathlib.Path) -> tuple[int, int]:
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
  # Lazy (here and in `score`): JAX loads only once the arguments are known to be good.
  # pylint: disable-next=import-outside-toplevel
  from deepfl_jax.train import feature_cache, regressor
  try:
    reg, meta = regressor.load_regressor(workdir)
  except FileNotFoundError as e:
    raise CliError(f"{workdir} has no trained regressor ({e}): run Stages 2 and 3 on "
                   "it first (config.stages)") from None
  try:
    fs = feature_cache.load_feature_set(workdir / meta["feature_set"])
    model, variables = feature_cache.backbone_from_feature_set(fs, workdir)
  except (FileNotFoundError, ValueError) as e:
    raise CliError(f"cannot load the backbone of {workdir}: {e}") from None
  return model, variables, reg, meta


def training_info(workdir) -> dict:
  """What the exported regressor was trained on, from `stage3/model.json` and its
  Stage 2 feature set's index.json: dataset, score_name, score_range (lo, hi),
  higher_is_better, size ((H, W) of most training images, None if not recorded) and
  sizes ([[H, W, count], ...])."""
  workdir = pathlib.Path(workdir)
  try:
    meta = json.loads((workdir / "stage3" / "model.json").read_text())
    index = json.loads((workdir / meta["feature_set"] / "index.json").read_text())
  except (OSError, KeyError, ValueError):
    return {}
  scores = [float(v) for v in index.get("records", {}).get("score", [])]
  sizes = index.get("image_sizes") or []
  return {"dataset": index.get("metadata", {}).get("name", "") or "its database",
          "score_name": meta.get("score_name", "score"),
          "higher_is_better": bool(meta.get("higher_is_better", True)),
          "score_range": (min(scores), max(scores)) if scores else None,
          "size": tuple(sizes[0][:2]) if sizes else None, "sizes": sizes}


def score(paths: Sequence[pathlib.Path], workdir, *, batch_size: int = 8,
          size: tuple[int, int] | None = None) -> list[tuple[pathlib.Path, float]]:
  """Predicted scores of image files with the run in `workdir`, in the given order;
  each image first fitted to `size` (H, W) when given (see `_read_image`)."""
  model, variables, reg, meta = load_model(workdir)
  # pylint: disable=import-outside-toplevel
  from deepfl_jax.models import inception_resnet_v2 as irv2
  from deepfl_jax.train import features, regressor
  # pylint: enable=import-outside-toplevel
  for p in paths:  # check every file (header only) before any compute
    h, w = _image_size(p)
    if size is None and min(h, w) < irv2.MIN_SIZE:
      raise CliError(f"image {p} is {w}x{h}; the backbone needs sides >= {irv2.MIN_SIZE}")

  class Records:  # decoded on access, one batch of a size at a time
    def __len__(self):
      return len(paths)

    def __getitem__(self, i):
      return {"image": _read_image(paths[i], size)}

  feats = features.extract_features(variables, Records(), model=model, kind=meta["kind"],
                                    input_scale=meta["input_scale"],
                                    batch_size=batch_size, progress=False)
  pred = regressor.predict(reg, feats, hidden=meta["hidden"], dropout=meta["dropout"])
  return list(zip(paths, pred.tolist()))


_SCORE_HELP = """\
Prints CSV on stdout: a header `path,score`, then one row per image in path order.
`score` is the run's predicted quality on the scale of the database its regressor was
trained on: e.g. KADID-10k or the demo's mini-KADID, DMOS 1..5, where higher is better
(LIVE and CSIQ DMOS: lower is better). stderr names the run's scale, its direction and
range in training, and the training image size.

A folder is searched recursively; files that are not images are skipped and counted
(-v names them). Images are scored at their own size; scores shift with size, so
--resize scores each at the training size (antialiased bicubic resize to cover, then
a centre crop: how the demo's training images were made). Errors: one line, status 2.
"""


def _notes(info: dict, paths, skipped, resized: bool, verbose: bool) -> list[str]:
  """stderr lines: skipped files, the score's scale, the training size."""
  out = []
  if skipped:
    out.append(f"skipped {len(skipped)} file(s) that are not images" +
               ("" if verbose else " (-v names them)"))
    if verbose:
      out += [f"skipped {p}" for p in skipped]
  if info.get("score_range"):
    lo, hi = info["score_range"]
    better = "higher" if info["higher_is_better"] else "lower"
    out.append(f"scores are {info['dataset']} {info['score_name']} ({lo:.3g}..{hi:.3g} "
               f"in training); {better} is better")
  size = info.get("size")
  if size and resized:
    out.append(f"images resized to {size[1]}x{size[0]} (width x height), the training "
               "size")
  elif size:
    other = sum(_image_size(p) != tuple(size) for p in paths)
    if other:
      out.append(f"the run was trained on {size[1]}x{size[0]} images (width x height); "
                 f"{other} of {len(paths)} image(s) here have other sizes, which shifts "
                 "scores: --resize scores them at the training size")
  return out


def main(argv: Sequence[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = argparse.ArgumentParser(
      prog="deepfl-iqa", description="DeepFL-IQA (JAX): score images with a trained run.")
  sub = parser.add_subparsers(dest="command", required=True)
  p = sub.add_parser("score", help="predicted quality of images, as CSV path,score "
                     "(higher = better)", description=_SCORE_HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("target", metavar="IMAGE_OR_FOLDER",
                 help="an image file, or a folder searched recursively")
  p.add_argument("--workdir", required=True, help="work directory of a trained run")
  p.add_argument("--batch-size", type=int, default=8,
                 help="images of one size per forward pass")
  p.add_argument("--resize", action="store_true",
                 help="fit each image to the training size first (see above)")
  p.add_argument("-v", "--verbose", action="store_true",
                 help="name skipped files; show library logs (JAX, orbax)")
  args = parser.parse_args(argv)
  if not args.verbose:
    verbosity.quiet_native_logs(())  # before JAX starts
    verbosity.quiet_python_logs(False)
  try:
    if args.batch_size < 1:
      raise CliError(f"--batch-size must be >= 1, got {args.batch_size}")
    _check_workdir(args.workdir)
    paths, skipped = _image_paths(pathlib.Path(args.target))
    info = training_info(args.workdir)
    size = None
    if args.resize:
      size = info.get("size")
      if not size and info:
        raise CliError(f"--resize: {args.workdir} does not record its training image "
                       "size (a Stage 2 from before it did): rerun Stages 2 and 3")
    rows = score(paths, args.workdir, batch_size=args.batch_size, size=size)
    notes = _notes(info, paths, skipped, size is not None, args.verbose)
  except CliError as e:
    print(f"deepfl-iqa: error: {e}", file=sys.stderr)
    return 2
  for line in notes:
    print(f"deepfl-iqa: {line}", file=sys.stderr)
  writer = csv.writer(sys.stdout, lineterminator="\n")
  writer.writerow(["path", "score"])
  for path, s in rows:
    writer.writerow([str(path), f"{s:.6g}"])
  sys.stdout.flush()
  return 0


if __name__ == "__main__":
  sys.exit(main())
