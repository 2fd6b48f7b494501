"""MLSP features of whole images at their native size (Stage 2 and `deepfl-iqa score`).

No crop and no augmentation, as DeepFL-IQA's Stage 2 (Lin, Hosu, Saupe 2020,
arXiv 2001.08113): a batch holds images of one size; a size's last, partial batch is
padded with repeats, so every size compiles once. Features come from
`models.mlsp_extractor`: narrow (N, 16928) or wide (N, 5, 5, 16928).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.models.mlsp import mlsp_extractor
from deepfl_jax.train import parallel
from deepfl_jax.train.progress import Progress


def size_batches(records, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(record indices (B,), uint8 images (B, H, W, 3)) of equal size, reading every
  record once in order; a size's last batch is padded by repeating its first image
  (padding rows carry index -1)."""
  pending: dict[tuple, list] = {}

  def flush(shape):
    rows = pending.pop(shape)
    idx = np.full(batch_size, -1, np.int64)
    idx[:len(rows)] = [i for i, _ in rows]
    imgs = [im for _, im in rows]
    imgs += [imgs[0]] * (batch_size - len(imgs))
    return idx, np.stack(imgs)

  for i in range(len(records)):
    img = np.asarray(records[i]["image"])
    if img.ndim != 3 or img.shape[-1] != 3:
      raise ValueError(f"record {i}: expected an RGB image (H, W, 3), got {img.shape}")
    if min(img.shape[:2]) < irv2.MIN_SIZE:
      raise ValueError(f"record {i}: image of {img.shape[:2]} is smaller than the "
                       f"backbone's minimum side {irv2.MIN_SIZE}")
    pending.setdefault(img.shape, []).append((i, img))
    if len(pending[img.shape]) == batch_size:
      yield flush(img.shape)
  for shape in list(pending):
    yield flush(shape)


def extract_features(variables, records, *, model: irv2.InceptionResNetV2,
                     kind: str = "narrow", input_scale: str = "unit",
                     batch_size: int = 16, progress: bool = True,
                     desc: str = "stage2 features",
                     image_sizes: dict | None = None) -> np.ndarray:
  """MLSP features (N, D) or (N, 5, 5, D) float32 of `records` (a sequence of dicts
  with "image" uint8 (H, W, 3), or of such arrays), in record order. `image_sizes`, if
  given, receives {(H, W): number of images} (the sizes the features were taken at).

  Batches over the local devices when `batch_size` divides evenly; device compute of
  one batch overlaps with the decoding of the next (JAX dispatch is asynchronous).
  """
  if batch_size <= 0:
    raise ValueError(f"config.stage2.batch_size must be >= 1, got {batch_size}")
  if len(records) and not isinstance(records[0], Mapping):
    records = [{"image": r} for r in records]
  devices = jax.local_devices()
  multi = len(devices) > 1 and batch_size % len(devices) == 0
  mesh = parallel.make_mesh(devices if multi else devices[:1])
  # Weights go to the device(s) once: host (NumPy) weights bound into the extractor
  # would be copied to the device again with every batch.
  variables = jax.device_put(variables, NamedSharding(mesh, P()))
  put = (lambda x: jax.device_put(x, NamedSharding(mesh, P(parallel.DATA_AXIS)))
         ) if multi else None
  fn = mlsp_extractor(variables, kind=kind, input_scale=input_scale, model=model)
  n = len(records)
  out = None
  bar = Progress(n, desc=desc, enabled=progress, unit="images")
  done, inflight = 0, None

  def collect(item):
    nonlocal out, done
    idx, feats = item
    feats = np.asarray(feats, np.float32)
    if out is None:
      out = np.zeros((n,) + feats.shape[1:], np.float32)
    keep = idx >= 0
    out[idx[keep]] = feats[keep]
    done += int(keep.sum())
    bar.update(done, force=done == n)

  try:
    for idx, imgs in size_batches(records, batch_size):
      if image_sizes is not None:
        hw = tuple(int(d) for d in imgs.shape[1:3])
        image_sizes[hw] = image_sizes.get(hw, 0) + int((idx >= 0).sum())
      x = imgs.astype(np.float32) / np.float32(255.0)
      feats = fn(put(x) if put is not None else x)  # dispatched, not waited for
      if inflight is not None:
        collect(inflight)
      inflight = (idx, feats)
    if inflight is not None:
      collect(inflight)
  finally:
    bar.close()
  if out is None:
    raise ValueError("the database has no records")
  return out
