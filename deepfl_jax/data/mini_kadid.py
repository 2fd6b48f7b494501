"""The embedded default database: "mini-KADID" from photographs that ship with
scikit-image, so that every stage runs with nothing downloaded.

Every chosen photograph (resized to cover 384 x 512 and centre-cropped) is distorted by
the engine (`deepfl_jax.distortions.distort`) with all 25 KADID types at all 5 levels,
using a fixed seed, and written as an 8-bit PNG, as KADID-10k's images are.

LABELS ARE CONTENT-INDEPENDENT HUMAN AVERAGES. The score of an image is KADID-10k's
DMOS for its (type, level) averaged over KADID's 81 contents
(`kadid_type_level_dmos.csv`, made by `tools/make_kadid_dmos_table.py`); nobody rated these
images. All images with the same (type, level) share one label, whatever their content
and whatever the port's distortion really looks like. Models trained or evaluated on
mini-KADID show that the pipeline runs; numbers comparable with the paper need the real
databases.

The photographs (`PHOTOS`): astronaut (portrait), chelsea (the cat; `data.cat` is the
same photo), coffee (a cup), rocket (a launch), immunohistochemistry (microscopy),
hubble_deep_field (telescope), retina (fundus camera) and motorcycle (left view of
`stereo_motorcycle`). Omitted: synthetic or grey images (colorwheel, logo, camera, ...)
and those skimage fetches from the network (skin, lily, eagle, ...).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import pathlib
import zlib
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from skimage import data as skimage_data

from deepfl_jax import atomic
from deepfl_jax.data.pipeline import IqaSource, in_memory_source
from deepfl_jax.distortions import distort
from deepfl_jax.ops.resize import resize_matrix

TABLE_PATH = pathlib.Path(__file__).with_name("kadid_type_level_dmos.csv")
DEFAULT_SIZE = (384, 512)   # (height, width) of KADID-10k's images
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
          "hubble_deep_field", "retina", "motorcycle")
NUM_TYPES, NUM_LEVELS = 25, 5
VERSION = 1                 # bump when generation changes (invalidates the caches)
LABEL_NOTE = ("mini-KADID labels are content-independent human averages: KADID-10k's "
              "DMOS averaged over its 81 contents per (type, level); no one rated these "
              "images, and paper numbers need the real databases")


def _skimage_photo(name: str) -> np.ndarray:
  if name == "motorcycle":
    return skimage_data.stereo_motorcycle()[0]
  if name not in PHOTOS:
    raise ValueError(f"unknown mini-KADID photograph {name!r}; choose from {PHOTOS}")
  return getattr(skimage_data, name)()


def fit_to_size(image: np.ndarray, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
  """uint8 (h, w, 3) -> uint8 (H, W, 3): MATLAB-style bicubic resize (antialiased when
  shrinking; `ops.resize.resize_matrix` on the host) by the one factor that makes the
  image cover (H, W), then a centre crop. Unchanged when already (H, W)."""
  img = np.asarray(image)
  if img.ndim != 3 or img.shape[-1] != 3:
    raise ValueError(f"expected an RGB image (h, w, 3), got shape {img.shape}")
  hh, ww = size
  h, w = img.shape[:2]
  if (h, w) != (hh, ww):
    scale = max(hh / h, ww / w)
    nh, nw = max(hh, round(h * scale)), max(ww, round(w * scale))
    rh = resize_matrix(h, nh, None, "bicubic", True)
    rw = resize_matrix(w, nw, None, "bicubic", True)
    x = np.einsum("ih,hwc->iwc", rh, img.astype(np.float64))
    x = np.einsum("iwc,jw->ijc", x, rw)
    top, left = (nh - hh) // 2, (nw - ww) // 2
    img = np.clip(np.round(x[top:top + hh, left:left + ww]), 0, 255).astype(np.uint8)
  return img


def pristine_image(name: str, size: tuple[int, int] = DEFAULT_SIZE) -> np.ndarray:
  """Photograph `name` of `PHOTOS` as uint8 (H, W, 3) of `size`."""
  return fit_to_size(_skimage_photo(name)[..., :3], size)


@dataclasses.dataclass(frozen=True)
class DmosTable:
  """KADID-10k DMOS per (type, level), averaged over contents: arrays (25, 5) indexed
  [type - 1, level - 1]."""
  mean: np.ndarray
  std: np.ndarray
  n: np.ndarray
  type_names: tuple[str, ...]

  def label(self, dist_type, level) -> np.ndarray:
    return self.mean[np.asarray(dist_type) - 1, np.asarray(level) - 1]


def load_dmos_table(path=TABLE_PATH) -> DmosTable:
  """Reads kadid_type_level_dmos.csv (125 rows) into a `DmosTable`."""
  mean = np.full((NUM_TYPES, NUM_LEVELS), np.nan)
  std = np.full((NUM_TYPES, NUM_LEVELS), np.nan)
  n = np.zeros((NUM_TYPES, NUM_LEVELS), np.int64)
  names = [""] * NUM_TYPES
  with open(path, newline="") as f:
    for r in csv.DictReader(f):
      t, l = int(r["type_id"]) - 1, int(r["level"]) - 1
      mean[t, l], std[t, l] = float(r["dmos_mean"]), float(r["dmos_std"])
      n[t, l] = int(r["n"])
      names[t] = r["type_name"]
  if np.isnan(mean).any():
    raise ValueError(f"{path}: missing (type, level) rows")
  return DmosTable(mean, std, n, tuple(names))


def image_key(seed: int, content: str, dist_type: int, level: int):
  """PRNG key of one generated image: a function of (seed, photo name, type, level)
  only, so a subset of photos or types reproduces the same images."""
  name_id = zlib.crc32(content.encode()) & 0x7FFFFFFF
  k = jax.random.fold_in(jax.random.PRNGKey(seed), name_id)
  return jax.random.fold_in(jax.random.fold_in(k, dist_type), level)


def dist_name(content: str, dist_type: int, level: int) -> str:
  """File name, KADID style: <content>_<type %02d>_<level %02d>.png."""
  return f"{content}_{dist_type:02d}_{level:02d}.png"


def _config(photos, size, types, levels, seed) -> dict:
  return {"version": VERSION, "photos": list(photos), "size": list(size),
          "types": list(types), "levels": list(levels), "seed": int(seed)}


def cache_dir(work_dir, config: dict) -> pathlib.Path:
  digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
  return pathlib.Path(work_dir) / f"mini_kadid_{digest}"


def _write_png(path: pathlib.Path, img: np.ndarray) -> None:
  with atomic.replacing(path, ".png") as tmp:
    Image.fromarray(img).save(tmp, compress_level=1)


def _generate(root: pathlib.Path, config: dict, progress: Callable[[str], None] | None,
              images: Mapping[str, np.ndarray] | None = None) -> None:
  (root / "images").mkdir(parents=True, exist_ok=True)
  (root / "references").mkdir(parents=True, exist_ok=True)
  size, levels, seed = tuple(config["size"]), list(config["levels"]), config["seed"]
  for content in config["photos"]:
    ref = (pristine_image(content, size) if images is None
           else fit_to_size(images[content][..., :3], size))
    _write_png(root / "references" / f"{content}.png", ref)
    batch = jnp.broadcast_to(jnp.asarray(ref), (len(levels), *ref.shape))
    for t in config["types"]:
      todo = [l for l in levels
              if not (root / "images" / dist_name(content, t, l)).exists()]
      if not todo:       # resumes an interrupted generation
        continue
      # All levels of one type in one call: one compiled program per type.
      keys = jnp.stack([image_key(seed, content, t, l) for l in levels])
      out = distort(batch, jnp.full((len(levels),), t, jnp.int32),
                    jnp.asarray(levels, jnp.int32), keys)
      out = np.asarray(jax.device_get(out))
      for i, l in enumerate(levels):
        if l in todo:
          img = np.clip(np.round(out[i] * 255.0), 0, 255).astype(np.uint8)
          _write_png(root / "images" / dist_name(content, t, l), img)
      if progress is not None:
        progress(f"mini-KADID: {content} type {t} done")


class _PngRecords:
  """Random-access records read from the cache folder (decoded on access)."""

  def __init__(self, folder: pathlib.Path, rows: list[dict]):
    self._folder, self._rows = folder, rows

  def __len__(self):
    return len(self._rows)

  def __getitem__(self, i):
    r = dict(self._rows[i])
    r["image"] = np.asarray(Image.open(self._folder / r["name"]).convert("RGB"))
    return r


def _rows(config: dict, table: DmosTable) -> list[dict]:
  rows = []
  for content in config["photos"]:
    for t in config["types"]:
      for l in config["levels"]:
        rows.append({"name": dist_name(content, t, l), "content": content,
                     "reference": f"{content}.png", "dist_type": int(t), "level": int(l),
                     "score": float(table.mean[t - 1, l - 1]),
                     "std": float(table.std[t - 1, l - 1])})
  return rows


def load(work_dir, *, photos: Sequence[str] = PHOTOS,
         size: tuple[int, int] = DEFAULT_SIZE, types: Sequence[int] | None = None,
         levels: Sequence[int] | None = None, seed: int = 0, in_memory: bool = False,
         progress: Callable[[str], None] | None = None,
         images: Mapping[str, np.ndarray] | None = None) -> IqaSource:
  """The mini-KADID database, generated into `work_dir` on first use, then cached.

  Args:
    work_dir: folder of the cache (one subfolder per configuration, named by a hash
      of photos, size, types, levels, seed and the generator version).
    photos: names from `PHOTOS`. size: (H, W) of every image.
    types / levels: KADID type ids 1..25 and levels 1..5 (default all).
    seed: the fixed seed of the stochastic types (see `image_key`).
    in_memory: decode all images into RAM (`in_memory_source`); default reads each
      PNG on access (1,000 images of 384x512 are about 600 MB decoded).
    progress: called with a line per (photo, type) generated.
    images: other pristine photographs {content name: uint8 (h, w, 3)} instead of
      `photos` (e.g. `pristine.independent_photos()`, the transfer check), labelled
      the same way.

  Returns:
    An `IqaSource` laid out like the KADID-10k builder's: records with image (H, W, 3)
    uint8, name, content (the photo: use `splits.make_split(source.index, "content")`),
    reference, dist_type, level, score (KADID DMOS mean of the (type, level), 1..5,
    higher = better: a CONTENT-INDEPENDENT human average, see the module docstring)
    and std (its standard deviation over KADID's contents); `references` holds the
    pristine photos.
  """
  types = tuple(range(1, NUM_TYPES + 1) if types is None else map(int, types))
  levels = tuple(range(1, NUM_LEVELS + 1) if levels is None else map(int, levels))
  if images is not None:
    photos = tuple(images)
  for p in ([] if images is not None else photos):
    if p not in PHOTOS:
      raise ValueError(f"unknown mini-KADID photograph {p!r}; choose from {PHOTOS}")
  if not types or min(types) < 1 or max(types) > NUM_TYPES:
    raise ValueError(f"types must be ids 1..{NUM_TYPES}, got {types}")
  if not levels or min(levels) < 1 or max(levels) > NUM_LEVELS:
    raise ValueError(f"levels must be 1..{NUM_LEVELS}, got {levels}")
  config = _config(photos, size, types, levels, seed)
  if images is not None:  # the cache is keyed by the pixels of the given photographs
    h = hashlib.sha1()
    for name in sorted(images):
      h.update(f"{name}|{np.shape(images[name])}|".encode())
      h.update(np.ascontiguousarray(images[name]).tobytes())
    config["images"] = h.hexdigest()[:12]
  root = cache_dir(work_dir, config)
  done = root / "index.json"
  table = load_dmos_table()
  rows = _rows(config, table)
  if not done.exists():
    _generate(root, config, progress, images)
    atomic.write_json(done, {"config": config, "note": LABEL_NOTE, "records": rows},
                      indent=1)
  metadata = {"name": "mini_kadid", "score_name": "dmos", "higher_is_better": True,
              "split_kind": "content", "full_reference": True, "label_note": LABEL_NOTE,
              "config": config, "cache_dir": str(root)}
  index_fields = ("name", "content", "reference", "dist_type", "level", "score", "std")
  ref_rows = [{"name": f"{c}.png", "content": c} for c in config["photos"]]
  ref_folder = root / "references"
  if in_memory:
    def read(folder, r):
      return {**r, "image": np.asarray(Image.open(folder / r["name"]).convert("RGB"))}
    refs = in_memory_source([read(ref_folder, r) for r in ref_rows],
                            index_fields=("name", "content"))
    return in_memory_source([read(root / "images", r) for r in rows],
                            index_fields=index_fields, metadata=metadata, references=refs)
  refs = IqaSource(records=_PngRecords(ref_folder, ref_rows),
                   index={f: np.asarray([r[f] for r in ref_rows], dtype=object)
                          for f in ("name", "content")})
  index = {f: (np.asarray([r[f] for r in rows], dtype=object)
               if isinstance(rows[0][f], str) else np.asarray([r[f] for r in rows]))
           for f in index_fields}
  return IqaSource(records=_PngRecords(root / "images", rows), index=index,
                   metadata=metadata, references=refs)


def pristine_source(photos: Sequence[str] = PHOTOS,
                    size: tuple[int, int] = DEFAULT_SIZE) -> IqaSource:
  """The pristine photos alone (records: image, name, content), e.g. as the source of
  `synthesis.stream` when nothing is downloaded."""
  return in_memory_source([{"image": pristine_image(p, size), "name": p, "content": p}
                           for p in photos], index_fields=("name", "content"),
                          metadata={"name": "mini_kadid_pristine",
                                    "split_kind": "content"})
