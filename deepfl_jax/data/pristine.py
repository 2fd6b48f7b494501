"""Pristine images for Stage 1 when nothing is downloaded, kept apart from the contents
that Stages 2/3 evaluate and from an independent transfer check (the paper's protocol:
Stage 1 on KADIS-700k's pristine images, evaluation on KADID-10k's other contents).

Three groups of contents, disjoint by construction (`check_disjoint`):
  * Stage 1 (`stage1_source`): scikit-image's grey photographs as RGB (`GREY_PHOTOS`)
    and procedurally generated dead-leaves images (`dead_leaves`: occluding disks with
    a power-law radius distribution, which has the scale invariance of natural images;
    Lee, Mumford, Huang 2001). scikit-image ships no colour photograph outside
    mini-KADID's eight (motorcycle_right is the other view of mini-KADID's motorcycle;
    colorwheel and logo are drawings), so colour comes from the dead leaves.
  * Stages 2/3: mini-KADID's eight colour photographs (`mini_kadid.PHOTOS`).
  * Transfer check (`independent_photos`): scikit-learn's sample photographs (china,
    flower; when scikit-learn is installed) and the TID2013 reference images in
    ../shared beside the checkout (when present). No stage trains on them.

Stage 1 sees random crops at random scales with random horizontal flips
(`augment_transform`), as KADIS-700k's 140,000 contents cannot be had here.
"""
from __future__ import annotations

import pathlib
from typing import Mapping, Sequence

import dm_pix
import numpy as np
from PIL import Image
from skimage import data as skimage_data

from deepfl_jax.data import mini_kadid
from deepfl_jax.data.pipeline import IqaSource, Transform, in_memory_source
from deepfl_jax.ops.resize import resize_matrix

# Photographs of scikit-image's data folder that ship with the wheel (no download).
GREY_PHOTOS = ("camera", "moon", "coins", "brick", "grass", "gravel", "page", "text",
               "cell", "clock")
STAGE1_SOURCES = ("grey_photos", "dead_leaves")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
# TID2013 reference images among the golden files of ../shared (developers and CI).
SHARED_DIR = pathlib.Path(__file__).resolve().parents[2].parent / "shared"
TID2013_REFS = ("data/golden/piq/I01.BMP", "data/golden/tid2013_pairs/ref/I03.bmp",
                "data/golden/tid2013_pairs/ref/I04.bmp",
                "data/golden/tid2013_pairs/ref/I06.bmp",
                "data/golden/tid2013_pairs/ref/I08.bmp",
                "data/golden/tid2013_pairs/ref/I19.bmp")


def as_rgb(image: np.ndarray) -> np.ndarray:
  """uint8 (h, w), (h, w, 1), (h, w, 3) or (h, w, 4) -> uint8 (h, w, 3)."""
  img = np.asarray(image)
  if img.dtype == bool:
    img = img.astype(np.uint8) * 255
  if img.ndim == 2:
    img = img[..., None]
  if img.ndim != 3 or img.shape[-1] not in (1, 3, 4) or img.dtype != np.uint8:
    raise ValueError(f"expected a uint8 grey or RGB image, got {img.dtype} "
                     f"{img.shape}")
  return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img[..., :3]


def grey_photo(name: str) -> np.ndarray:
  """scikit-image's grey photograph `name` of `GREY_PHOTOS` as uint8 (h, w, 3)."""
  if name not in GREY_PHOTOS:
    raise ValueError(f"unknown grey photograph {name!r}; choose from {GREY_PHOTOS}")
  return as_rgb(getattr(skimage_data, name)())


def dead_leaves(seed: int, size: tuple[int, int] = (384, 512), *, r_min: float = 2.0,
                r_max: float = 160.0, alpha: float = 3.0, num_disks: int = 6000
                ) -> np.ndarray:
  """A dead-leaves image, uint8 (H, W, 3).

  Disks with radii drawn from p(r) ~ r^-alpha on [r_min, r_max] (alpha = 3 gives the
  scale invariance of natural images) and uniform centres are painted back to front
  (the last painted lies on top), so the visible image is the first-occluding
  dead-leaves model once the canvas is covered. Each leaf has a colour of random hue,
  saturation and lightness, and a linear shading, so the image has colour and smooth
  regions for the colour and blur distortions to act on.
  """
  rng = np.random.default_rng([int(seed), 0xDEAD1EAF])
  h, w = size
  u = rng.random(num_disks)
  a1 = 1.0 - alpha
  radii = (r_min ** a1 + u * (r_max ** a1 - r_min ** a1)) ** (1.0 / a1)
  cy = rng.uniform(-r_max / 2, h + r_max / 2, num_disks)
  cx = rng.uniform(-r_max / 2, w + r_max / 2, num_disks)
  # Colours: a random grey level times a random chromatic direction of random strength.
  grey = rng.uniform(0.05, 0.95, num_disks)
  chroma = rng.normal(0.0, 1.0, (num_disks, 3))
  chroma -= chroma.mean(1, keepdims=True)
  chroma *= rng.uniform(0.0, 0.25, (num_disks, 1)) / np.maximum(
      np.abs(chroma).max(1, keepdims=True), 1e-6)
  colours = grey[:, None] + chroma
  slope = rng.normal(0.0, 0.15, (num_disks, 2))   # brightness change across a leaf
  out = np.empty((h, w, 3), np.float32)
  out[:] = rng.uniform(0.2, 0.8)
  for r, y0, x0, col, (gy, gx) in zip(radii, cy, cx, colours, slope):
    t, b = max(int(y0 - r), 0), min(int(y0 + r) + 1, h)
    l, rr = max(int(x0 - r), 0), min(int(x0 + r) + 1, w)
    if t >= b or l >= rr:
      continue
    yy = (np.arange(t, b, dtype=np.float32)[:, None] - y0) / r
    xx = (np.arange(l, rr, dtype=np.float32)[None, :] - x0) / r
    inside = yy * yy + xx * xx <= 1.0
    shade = 1.0 + gy * yy + gx * xx
    patch = out[t:b, l:rr]
    patch[inside] = (col[None, None, :] * shade[..., None])[inside]
  return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """uint8 (h, w, 3) -> uint8 (H, W, 3), MATLAB-style bicubic (antialiased when
  shrinking; `ops.resize.resize_matrix` on the host)."""
  (h, w), (hh, ww) = img.shape[:2], size
  if (h, w) == (hh, ww):
    return img
  rh = resize_matrix(h, hh, None, "bicubic", True).astype(np.float32)
  rw = resize_matrix(w, ww, None, "bicubic", True).astype(np.float32)
  # BLAS products in float32 (einsum in float64 takes 10x longer per crop).
  x = np.tensordot(rh, img.astype(np.float32), (1, 0))          # (H, w, 3)
  x = np.tensordot(x, rw, (1, 1)).transpose(0, 2, 1)             # (H, W, 3)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


LUMA = np.asarray([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601


def colour_jitter(image: np.ndarray, rng: np.random.Generator, strength: float
                  ) -> np.ndarray:
  """Random colouring of a uint8 (h, w, 3) image (Stage 1 sees colour it would not
  otherwise have: the grey photographs have none).

  Each channel goes through its own gamma curve, exp(U(-strength, strength)), which
  tints a grey image by lightness (warm shadows and cool highlights, or the reverse),
  then the chroma around the BT.601 luma is scaled by exp(U(-strength, 2 strength))
  (`strength` 0: the image unchanged). Returns uint8 (h, w, 3).
  """
  if strength <= 0:
    return image
  x = image.astype(np.float32) / 255.0
  x = x ** np.exp(rng.uniform(-strength, strength, 3)).astype(np.float32)
  luma = (x @ LUMA)[..., None]
  x = luma + (x - luma) * np.float32(np.exp(rng.uniform(-strength, 2 * strength)))
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def augment_transform(size: tuple[int, int], *, min_scale: float = 0.25,
                      max_scale: float = 1.0, flip: bool = True, colour: float = 0.0
                      ) -> Transform:
  """`pipeline.batches` transform: a random crop at a random scale, randomly flipped
  (and coloured).

  The scale s (output pixels per source pixel) is log-uniform on [min_scale,
  max_scale], raised where needed so the source region (H / s, W / s) fits in the
  image (images smaller than the crop are enlarged); the region is placed uniformly
  and resized to `size` (bicubic, antialiased), then flipped left-right with
  probability 1/2 (`dm_pix.flip_left_right`) and, with `colour` > 0, coloured at that
  strength (`colour_jitter`). Returns uint8 (H, W, 3).
  """
  ch, cw = size
  if not 0 < min_scale <= max_scale:
    raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
  if not 0 <= colour <= 1:
    raise ValueError(f"config.stage1.augment.colour must be in [0, 1], got {colour}")

  def transform(ex, rng: np.random.Generator):
    img = as_rgb(ex["image"])
    h, w = img.shape[:2]
    cover = max(ch / h, cw / w)
    lo, hi = max(min_scale, cover), max(max_scale, cover)
    s = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
    rh, rw = min(h, max(1, round(ch / s))), min(w, max(1, round(cw / s)))
    top, left = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
    crop = _resize(img[top:top + rh, left:left + rw], (ch, cw))
    if flip and rng.random() < 0.5:
      crop = np.asarray(dm_pix.flip_left_right(crop))
    crop = colour_jitter(crop, rng, colour)
    out = {k: v for k, v in ex.items() if k != "image"}
    out["image"] = crop
    return out

  return transform


def stage1_source(sources: Sequence[str] = STAGE1_SOURCES, *,
                  num_dead_leaves: int = 32, dead_leaves_size: tuple[int, int] = (384, 512),
                  seed: int = 0) -> IqaSource:
  """Stage 1's pristine images: records (image uint8 (h, w, 3) at native size, name,
  content, source) from `sources` ("grey_photos", "dead_leaves"), contents disjoint
  from mini-KADID and from `independent_photos`."""
  unknown = [s for s in sources if s not in STAGE1_SOURCES]
  if unknown or not sources:
    raise ValueError(f"config.stage1.pristine.sources: {list(sources)} must name some "
                     f"of {STAGE1_SOURCES}")
  recs = []
  if "grey_photos" in sources:
    recs += [{"image": grey_photo(n), "name": n, "content": n, "source": "grey_photos"}
             for n in GREY_PHOTOS]
  if "dead_leaves" in sources:
    recs += [{"image": dead_leaves(seed * 100003 + i, tuple(dead_leaves_size)),
              "name": f"dead_leaves_{i:03d}", "content": f"dead_leaves_{i:03d}",
              "source": "dead_leaves"} for i in range(int(num_dead_leaves))]
  return in_memory_source(recs, index_fields=("name", "content", "source"),
                          metadata={"name": "stage1_pristine", "split_kind": "content",
                                    "sources": list(sources)})


def independent_photos(*, sklearn: bool = True, shared_dir=SHARED_DIR,
                       folders: Sequence[str] = ()) -> dict[str, np.ndarray]:
  """Contents no stage trains on, {name: uint8 (h, w, 3)}: scikit-learn's sample
  photographs (when scikit-learn is installed), the TID2013 references in `shared_dir`
  (when present) and every image file of `folders` (a user's own photographs)."""
  out = {}
  if sklearn:
    try:
      # Optional (the `test` extra): the transfer check says when it is missing.
      from sklearn.datasets import load_sample_image  # pylint: disable=import-outside-toplevel
    except ImportError:
      pass
    else:
      for n in SKLEARN_PHOTOS:
        out[f"sklearn_{n.split('.')[0]}"] = as_rgb(load_sample_image(n))
  paths = []
  if shared_dir:
    paths += [pathlib.Path(shared_dir) / p for p in TID2013_REFS]
  for folder in folders:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
      raise ValueError(f"transfer folder {folder} does not exist")
    paths += sorted(p for p in folder.iterdir()
                    if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
  for p in paths:
    if p.is_file():
      with Image.open(p) as im:
        out[f"{p.stem.lower()}"] = as_rgb(np.asarray(im.convert("RGB")))
  return out


def check_disjoint(groups: Mapping[str, Sequence[str]]) -> None:
  """Raises ValueError when two groups of contents (e.g. "stage1", "stage2/3",
  "transfer") share a content name."""
  seen: dict[str, str] = {}
  for group, names in groups.items():
    for n in names:
      if n in seen and seen[n] != group:
        raise ValueError(f"content {n!r} is in both {seen[n]} and {group}: the stages "
                         "must see disjoint contents (the paper's protocol)")
      seen[n] = group


def eval_contents() -> tuple[str, ...]:
  """The contents Stages 2/3 evaluate by default (mini-KADID's photographs)."""
  return tuple(mini_kadid.PHOTOS)
