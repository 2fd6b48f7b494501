"""Shared machinery of the IQA database builders (TFDS, manual download, array_record).

Every builder reads a database the user unpacked into TFDS' manual directory and writes:
  * split `full`: every scored image of the database once, in the published order
    (shuffling disabled), with its score and the fields that content-disjoint splits need.
    `deepfl_jax.data.splits` partitions it; the database's own split (KonIQ) is a field.
  * split `references` (full-reference databases only): each pristine image once; a
    distorted example names its reference in `reference` (storing the reference beside
    every distorted image would double the stored size).
  * `metadata.json` (TFDS `MetadataDict`): a column index of the small scalar fields per
    split (`index`), the images that were skipped (`skipped_images`), the score's name
    and direction, so a pipeline can plan splits without reading any image.

A corrupt, truncated or missing image file is reported by name: it stops the build
(`on_bad_image="raise"`, default) or is skipped with a warning listing every skipped
file (`on_bad_image="skip"`); it is never dropped silently. A skipped reference leaves
its distorted images in `full` (still usable by no-reference models); looking it up with
`pipeline.IqaSource.reference_image` then raises KeyError.
"""
from __future__ import annotations

import abc
import csv
import dataclasses
import inspect
import io
import logging
import pathlib
import warnings
from typing import Any, Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

logger = logging.getLogger(__name__)

ON_BAD_IMAGE = ("raise", "skip")
FULL = "full"
REFERENCES = "references"


class ManualDirError(FileNotFoundError):
  """The manual directory is missing, incomplete or malformed (message shows the layout)."""


class BadImageError(ValueError):
  """An image file of the database is missing, corrupt or truncated."""


@dataclasses.dataclass(eq=False)
class IqaConfig(tfds.core.BuilderConfig):
  """Builder options.

  on_bad_image: "raise" stops the build at the first unreadable image (named in the
    error); "skip" leaves such images out and warns once with the full list (also kept
    in `metadata.json` under `skipped_images`).
  resolution: KonIQ-10k only: "512x384" or "1024x768" (the folder that is read).
  """
  on_bad_image: str = "raise"
  resolution: str = ""

  def __post_init__(self):
    if self.on_bad_image not in ON_BAD_IMAGE:
      raise ValueError(f"on_bad_image must be one of {ON_BAD_IMAGE}, got "
                       f"{self.on_bad_image!r}")


def default_configs(version: str = "1.0.0") -> list[IqaConfig]:
  return [IqaConfig(name="raise", version=version, on_bad_image="raise",
                    description="stop at the first unreadable image"),
          IqaConfig(name="skip", version=version, on_bad_image="skip",
                    description="skip unreadable images, warn with their names")]


def instructions(title: str, homepage: str, layout: str) -> str:
  return (f"Download {title} from {homepage} and unpack it into the manual directory "
          "(by default `<data_dir>/downloads/manual/`, or pass `download_config="
          "tfds.download.DownloadConfig(manual_dir=...)`). Expected layout (the "
          f"top folder may be the manual directory itself):\n{layout}")


def encode_image(path: pathlib.Path) -> bytes:
  """PNG bytes of an RGB image file; the original bytes when it already is an RGB PNG.

  Raises BadImageError naming the file when it is missing, corrupt or truncated
  (`Image.verify` checks the PNG CRCs, `load` decodes every pixel).
  """
  try:
    data = path.read_bytes()
  except FileNotFoundError:
    raise BadImageError(f"{path}: file is missing") from None
  except OSError as e:
    raise BadImageError(f"{path}: cannot be read ({e})") from None
  try:
    with Image.open(io.BytesIO(data)) as im:
      im.verify()
    with Image.open(io.BytesIO(data)) as im:
      im.load()
      if im.format == "PNG" and im.mode == "RGB":
        return data
      rgb = im.convert("RGB")
  except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
    raise BadImageError(f"{path}: corrupt or truncated image ({type(e).__name__}: {e})"
                        ) from None
  buf = io.BytesIO()
  rgb.save(buf, format="PNG")
  return buf.getvalue()


def read_csv(path: pathlib.Path, required: Iterable[str], *, error) -> list[dict[str, str]]:
  """Rows of a CSV with a header line; `error(msg)` builds the layout error."""
  if not path.is_file():
    raise error(f"the score file {path.name} is missing")
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
      raise error(f"{path.name} has columns {header}, missing {missing}")
    reader.fieldnames = header
    return [{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
            for row in reader]


def file_index(folder: pathlib.Path, recursive: bool = False) -> dict[str, pathlib.Path]:
  """lower-case file name -> path (the databases mix case, e.g. TID's I01.BMP)."""
  it = folder.rglob("*") if recursive else folder.iterdir()
  return {p.name.lower(): p for p in it if p.is_file()}


def to_float(value: Any) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):
    return float("nan")


class IqaBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the database builders (not registered). Subclasses set the class constants
  and implement `_features_dict` and `_plan`."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = default_configs()
  TITLE = ""
  HOMEPAGE = ""
  CITATION = ""
  LAYOUT = ""
  # Folder names the user's archive may unpack to inside the manual directory.
  TOP_FOLDERS: tuple[str, ...] = ()
  # A file or folder that exists at the database root.
  MARKER = ""
  SCORE_NAME = "mos"
  HIGHER_IS_BETTER = True
  SPLIT_KIND = "content"     # "content" | "official" | "random" (see splits.py)
  FULL_REFERENCE = False
  # Scalar fields copied into metadata.json's column index, per split.
  INDEX_FIELDS: tuple[str, ...] = ("name", "content", "score")
  REFERENCE_INDEX_FIELDS: tuple[str, ...] = ("name", "content")

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):  # pylint: disable=no-self-argument
    # TFDS' default probes `importlib_resources` (a backport TFDS only requires on
    # Python < 3.9); the module file is all TFDS needs (it looks for checksums there).
    return epath.Path(inspect.getfile(cls))

  # --- subclass interface ------------------------------------------------------------
  @abc.abstractmethod
  def _features_dict(self) -> dict[str, tfds.features.FeatureConnector]:
    """Features of split `full` besides `image`, `name`, `content`."""

  @abc.abstractmethod
  def _plan(self, root: pathlib.Path) -> dict[str, list[dict[str, Any]]]:
    """Validates the layout under `root`; split -> rows. A row holds every feature value
    except `image`, which is the image's path (read and checked while generating)."""

  # --- TFDS plumbing ------------------------------------------------------------------
  def _info(self) -> tfds.core.DatasetInfo:
    features = {"image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                "name": tfds.features.Text(), "content": tfds.features.Text()}
    features.update(self._features_dict())
    return tfds.core.DatasetInfo(
        builder=self, description=(self.__doc__ or "").strip().split("\n")[0],
        features=tfds.features.FeaturesDict(features), homepage=self.HOMEPAGE,
        citation=self.CITATION, disable_shuffling=True,
        metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    root = self._manual_root(dl_manager)
    plan = self._plan(root)
    self._skipped: list[str] = []
    self._pending = set(plan)
    meta = self.info.metadata
    meta.update(score_name=self.SCORE_NAME, higher_is_better=self.HIGHER_IS_BETTER,
                split_kind=self.SPLIT_KIND, full_reference=self.FULL_REFERENCE,
                skipped_images=[], index={})
    return {split: self._generate_examples(split, rows) for split, rows in plan.items()}

  def _generate_examples(self, split: str, rows: list[dict[str, Any]]
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    fields = self.REFERENCE_INDEX_FIELDS if split == REFERENCES else self.INDEX_FIELDS
    index = {f: [] for f in fields}
    key = 0
    for row in rows:
      try:
        image = encode_image(pathlib.Path(row["image"]))
      except BadImageError as e:
        if self.builder_config.on_bad_image == "raise":
          raise BadImageError(f"{self.TITLE}: {e} (build with config 'skip' / "
                              "on_bad_image='skip' to leave it out)") from None
        self._skipped.append(str(row["image"]))
        continue
      example = dict(self._defaults(), **row)
      example["image"] = image
      for f in fields:
        v = row[f]
        index[f].append(v.item() if isinstance(v, np.generic) else v)
      yield key, example
      key += 1
    self._finish_split(split, index)

  def _defaults(self) -> dict[str, Any]:
    """Values of the fields a row leaves out (the `references` split of an FR database
    has no score, type or level): "" for text, 0 for integers, False for booleans, NaN
    for floats."""
    if not hasattr(self, "_default_values"):
      out = {}
      for k, f in self.info.features.items():
        if isinstance(f, tfds.features.Text):
          out[k] = ""
        elif isinstance(f, tfds.features.Tensor):
          dt = np.dtype(f.np_dtype)
          fill = np.nan if dt.kind == "f" else (False if dt.kind == "b" else 0)
          out[k] = np.full(f.shape, fill, dt) if f.shape else dt.type(fill)
      self._default_values = out
    return dict(self._default_values)

  def _finish_split(self, split: str, index: dict[str, list]) -> None:
    meta = self.info.metadata
    meta["index"][split] = index
    self._pending.discard(split)
    if not self._pending and self._skipped:
      meta["skipped_images"] = sorted(self._skipped)
      msg = (f"{self.TITLE}: skipped {len(self._skipped)} unreadable image(s) "
             f"(on_bad_image='skip'): " + ", ".join(sorted(self._skipped)))
      logger.warning(msg)
      warnings.warn(msg, stacklevel=2)

  # --- layout -------------------------------------------------------------------------
  def layout_error(self, problem: str, where: pathlib.Path | str | None = None
                   ) -> ManualDirError:
    where = f" in {where}" if where is not None else ""
    return ManualDirError(
        f"{self.TITLE}: {problem}{where}.\n"
        + instructions(self.TITLE, self.HOMEPAGE, self.LAYOUT))

  def _manual_root(self, dl_manager) -> pathlib.Path:
    try:
      manual = pathlib.Path(str(dl_manager.manual_dir))
    except AssertionError:  # TFDS: manual_dir missing or empty
      manual = pathlib.Path(str(dl_manager._manual_dir))  # pylint: disable=protected-access
      raise self.layout_error("the manual directory is missing or empty", manual) from None
    for cand in [manual] + [manual / t for t in self.TOP_FOLDERS]:
      if (cand / self.MARKER).exists():
        return cand
    raise self.layout_error(f"{self.MARKER} was not found", manual)

  def require_dir(self, path: pathlib.Path) -> pathlib.Path:
    if not path.is_dir():
      raise self.layout_error(f"the folder {path.name}/ is missing", path.parent)
    return path


class SyntheticIqaBuilder(IqaBuilder, skip_registration=True):
  """A synthetic full-reference database (KADID-10k, TID2013, CSIQ): every record
  names its reference, distortion type and level; splits go by reference content."""
  SPLIT_KIND = "content"
  FULL_REFERENCE = True
  INDEX_FIELDS = ("name", "content", "reference", "dist_type", "level", "score", "std")

  def _features_dict(self):
    return {"reference": tfds.features.Text(),
            "dist_type": tfds.features.Scalar(np.int32),
            "level": tfds.features.Scalar(np.int32),
            "score": tfds.features.Scalar(np.float32),
            "std": tfds.features.Scalar(np.float32)}
