"""Multi-level spatially pooled (MLSP) features of InceptionResNetV2.

Hosu, Goldluecke, Saupe, "Effective Aesthetics Prediction with Multi-level Spatially
Pooled Features" (CVPR 2019), as used by DeepFL-IQA (Lin, Hosu, Saupe 2020): the 43
"mixed" tensors of InceptionResNetV2 (see `inception_resnet_v2._architecture`), each
pooled and concatenated on channels: narrow = global average (N, 16928); wide = area
resize to 5x5 (N, 5, 5, 16928).
"""
from __future__ import annotations

import functools
import os
from typing import Callable, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.metrics._inputs import _check_values as check_image_values  # shared
from deepfl_jax.models import inception_resnet_v2 as irv2
from deepfl_jax.models import keras_import

MLSP_WIDTH = 16928


def mlsp_narrow(taps: Sequence[jnp.ndarray]) -> jnp.ndarray:
  """Global average pool of each (N, h, w, c) tap, concatenated: (N, sum c), float32."""
  return jnp.concatenate([t.astype(jnp.float32).mean(axis=(1, 2)) for t in taps], -1)


@functools.lru_cache(maxsize=64)
def area_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) float64 weights of area resizing (TF `ResizeArea`, no half-pixel).

  Output cell i averages the input interval [i s, (i + 1) s), s = n_in / n_out, each
  input pixel weighted by its overlap; this also upsamples (replication) when n_in <
  n_out.
  """
  s = n_in / n_out
  lo = np.arange(n_out)[:, None] * s
  hi = lo + s
  j = np.arange(n_in)[None, :]
  overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
  return overlap / s


def area_resize(x: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
  """Area-resize (N, h, w, c) to (N, size[0], size[1], c) in float32."""
  rh = jnp.asarray(area_matrix(x.shape[1], size[0]), jnp.float32)
  rw = jnp.asarray(area_matrix(x.shape[2], size[1]), jnp.float32)
  return jnp.einsum("ih,jw,nhwc->nijc", rh, rw, x.astype(jnp.float32),
                    precision=jax.lax.Precision.HIGHEST)


def mlsp_wide(taps: Sequence[jnp.ndarray], size: tuple[int, int] = (5, 5)) -> jnp.ndarray:
  """Each tap area-resized to `size`, concatenated on channels: (N, 5, 5, sum c)."""
  return jnp.concatenate([area_resize(t, size) for t in taps], -1)


def scale_input(images: jnp.ndarray, input_scale: Literal["unit", "keras"]) -> jnp.ndarray:
  """[0, 1] images to the backbone's input: as they are ("unit", the DeepFL-IQA
  release's x/255) or Keras' [-1, 1] ("keras", `preprocess_input` mode "tf")."""
  if input_scale == "unit":
    return images
  if input_scale == "keras":
    return images * 2.0 - 1.0
  raise ValueError(f"input_scale must be 'unit' or 'keras', got {input_scale!r}")


def to_unit(images: jnp.ndarray) -> jnp.ndarray:
  """uint8 0..255 images -> float32 [0, 1] (x / 255, as the metrics and the DeepFL-IQA
  release read files); float images pass unchanged."""
  images = jnp.asarray(images)
  _check_dtype(images.dtype)
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images


def _check_dtype(dtype) -> None:
  if dtype != jnp.uint8 and not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"MLSP features: images must be float in [0, 1] or uint8 0..255, "
                    f"got {dtype}")


def mlsp_features(model: irv2.InceptionResNetV2, variables, images: jnp.ndarray,
                  kind: Literal["narrow", "wide"] = "narrow",
                  input_scale: Literal["unit", "keras"] = "unit",
                  train: bool = False):
  """MLSP features of (N, H, W, 3) images, float in [0, 1] or uint8 0..255 (scaled by
  1/255) (pure; jit/vmap/grad-able).

  With `train=True` returns (features, new batch_stats) for fine-tuning.
  """
  if kind not in ("narrow", "wide"):
    raise ValueError(f"kind must be 'narrow' or 'wide', got {kind!r}")
  pool = mlsp_narrow if kind == "narrow" else mlsp_wide
  x = scale_input(to_unit(images), input_scale)
  if train:
    (_, taps), upd = model.apply(variables, x, train=True, taps=True, final=False,
                                 mutable=["batch_stats"])
    return pool(taps), upd["batch_stats"]
  _, taps = model.apply(variables, x, taps=True, final=False)
  return pool(taps)


def mlsp_extractor(params, kind: Literal["narrow", "wide"] = "narrow",
                   input_scale: Literal["unit", "keras"] = "unit",
                   model: irv2.InceptionResNetV2 | None = None
                   ) -> Callable[[jnp.ndarray], jnp.ndarray]:
  """A jit-compiled `images -> features` function.

  Args:
    params: variables {"params", "batch_stats"}, or a path: a Keras 2 HDF5 weight file
      or an orbax checkpoint directory written by `deepfl_jax.models.keras_import`.
    kind: "narrow" -> (N, 16928); "wide" -> (N, 5, 5, 16928).
    input_scale: "unit" feeds [0, 1] images as they are (DeepFL-IQA release), "keras"
      maps them to [-1, 1].
    model: the backbone (default Keras' InceptionResNetV2, float32).

  Returns `fn(images)` for (N, H, W, 3) images, H, W >= 75: float in [0, 1], or uint8
  0..255 (scaled by 1/255, as the metrics do). Float values outside [0, 1] (e.g. 0..255
  floats) or NaN raise ValueError when `fn` is called eagerly; under `jax.jit` tracing
  the values are unknown and not checked. One compilation per input shape and dtype
  (shared by extractors of the same model, kind and input scale). The variables are a
  traced argument (not baked-in constants), so the function composes with `jax.jit`,
  `jax.vmap` and `jax.grad` (with respect to the images) in other code.

  Variables: random ones from `deepfl_jax.models.host_init(model, example_images,
  seed=0, taps=True, final=False)`; ImageNet ones from Keras'
  `inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5` by passing its
  path (use `input_scale="keras"` with them, as Keras preprocesses to [-1, 1]).
  """
  model = irv2.InceptionResNetV2() if model is None else model
  if kind not in ("narrow", "wide"):
    raise ValueError(f"kind must be 'narrow' or 'wide', got {kind!r}")
  scale_input(jnp.zeros(()), input_scale)  # validate early
  if isinstance(params, (str, os.PathLike)):
    params = keras_import.load_variables(params, model)
  variables = {"params": params["params"], "batch_stats": params["batch_stats"]}
  core = _jitted_core(model, kind, input_scale)

  def extract(images):
    # Concrete values only (skipped for tracers): uint8 passes, floats must be [0, 1].
    _check_dtype(jnp.result_type(images))
    check_image_values(images, "mlsp_extractor", "input")
    return core(variables, images)

  extract.jitted = core  # its compilation cache is shared (see _jitted_core)
  return extract


@functools.lru_cache(maxsize=32)
def _jitted_core(model, kind, input_scale):
  """One jitted function per (model, kind, scale): extractors built again (other
  weights, a reloaded checkpoint) reuse its compilations."""

  @jax.jit
  def core(variables, images):
    return mlsp_features(model, variables, images, kind, input_scale)

  return core
