"""InceptionResNetV2 in Flax linen, layer for layer as `keras.applications` builds it.

Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual Connections
on Learning" (2016), in the Keras variant (keras/src/applications/inception_resnet_v2.py):
conv + batch-norm (no scale, epsilon 1e-3) + ReLU units, convolutions without bias except
the residual "up" 1x1 convolutions, residual scales 0.17 / 0.1 / 0.2 and, as Keras does,
scale 1.0 and no activation for the last block8.

The architecture is written once (`_architecture`) against a tiny builder interface. The
Flax builder computes; the graph builder (`keras_graph`) records the Keras layer graph,
which the Keras weight importer needs to reproduce Keras' topological layer order.

Parameter names follow the Keras 2 ImageNet weight file: unnamed layers are numbered in
creation order (`conv2d_1`, `batch_normalization_1`, ...), named ones keep their Keras
name (`block35_1_conv`, `conv_7b`, `conv_7b_bn`). Batch-norm statistics live in the
`batch_stats` collection.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from deepfl_jax.models.host_init import host_init

# Keras' block lengths (block35, block17, block8) and residual scales.
KERAS_BLOCKS = (10, 20, 10)
SCALES = (0.17, 0.1, 0.2)
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
MIN_SIZE = 75  # Keras' smallest accepted input side.


def _filters(n: int, width: float) -> int:
  return max(1, int(round(n * width)))


def _architecture(b, x, width: float = 1.0, blocks: Sequence[int] = KERAS_BLOCKS,
                  final: bool = True):
  """Keras' InceptionResNetV2 body on builder `b`. Returns (final or None, taps list).

  Taps: mixed_5b, each block's branch concatenation (`<block>_<i>_mixed`, before the
  up-convolution), mixed_6a, mixed_7a, in network order (43 for Keras' depths).
  """
  f = lambda n: _filters(n, width)
  taps = []
  x = b.conv_bn(x, f(32), 3, strides=2, padding="VALID")
  x = b.conv_bn(x, f(32), 3, padding="VALID")
  x = b.conv_bn(x, f(64), 3)
  x = b.max_pool(x)
  x = b.conv_bn(x, f(80), 1, padding="VALID")
  x = b.conv_bn(x, f(192), 3, padding="VALID")
  x = b.max_pool(x)

  b0 = b.conv_bn(x, f(96), 1)
  b1 = b.conv_bn(b.conv_bn(x, f(48), 1), f(64), 5)
  b2 = b.conv_bn(b.conv_bn(b.conv_bn(x, f(64), 1), f(96), 3), f(96), 3)
  bp = b.conv_bn(b.avg_pool(x), f(64), 1)
  x = b.concat([b0, b1, b2, bp], "mixed_5b")
  taps.append(x)

  def block(x, kind, idx, scale, activation=True):
    if kind == "block35":
      br = [b.conv_bn(x, f(32), 1),
            b.conv_bn(b.conv_bn(x, f(32), 1), f(32), 3),
            b.conv_bn(b.conv_bn(b.conv_bn(x, f(32), 1), f(48), 3), f(64), 3)]
    elif kind == "block17":
      br = [b.conv_bn(x, f(192), 1),
            b.conv_bn(b.conv_bn(b.conv_bn(x, f(128), 1), f(160), (1, 7)), f(192), (7, 1))]
    else:
      br = [b.conv_bn(x, f(192), 1),
            b.conv_bn(b.conv_bn(b.conv_bn(x, f(192), 1), f(224), (1, 3)), f(256), (3, 1))]
    name = f"{kind}_{idx}"
    mixed = b.concat(br, f"{name}_mixed")
    taps.append(mixed)
    if not final and kind == "block8" and idx == blocks[2]:
      return None  # the last up-convolution feeds only the final features
    up = b.conv_bn(mixed, b.channels(x), 1, activation=False, use_bias=True,
                   name=f"{name}_conv")
    return b.residual(x, up, scale, activation, name)

  for i in range(1, blocks[0] + 1):
    x = block(x, "block35", i, SCALES[0])

  b0 = b.conv_bn(x, f(384), 3, strides=2, padding="VALID")
  b1 = b.conv_bn(b.conv_bn(b.conv_bn(x, f(256), 1), f(256), 3), f(384), 3, strides=2,
                 padding="VALID")
  x = b.concat([b0, b1, b.max_pool(x)], "mixed_6a")
  taps.append(x)

  for i in range(1, blocks[1] + 1):
    x = block(x, "block17", i, SCALES[1])

  b0 = b.conv_bn(b.conv_bn(x, f(256), 1), f(384), 3, strides=2, padding="VALID")
  b1 = b.conv_bn(b.conv_bn(x, f(256), 1), f(288), 3, strides=2, padding="VALID")
  b2 = b.conv_bn(b.conv_bn(b.conv_bn(x, f(256), 1), f(288), 3), f(320), 3, strides=2,
                 padding="VALID")
  x = b.concat([b0, b1, b2, b.max_pool(x)], "mixed_7a")
  taps.append(x)

  for i in range(1, blocks[2] + 1):
    last = i == blocks[2]
    x = block(x, "block8", i, 1.0 if last else SCALES[2], activation=not last)
  if x is None:
    return None, taps
  x = b.conv_bn(x, f(1536), 1, name="conv_7b")
  return x, taps


def tap_widths(width: float = 1.0, blocks: Sequence[int] = KERAS_BLOCKS) -> list[int]:
  """Channel width of each MLSP tap (Keras: 320, 10x128, 1088, 20x384, 2080, 10x448)."""
  g = KerasGraph()
  _, taps = _architecture(g, g.input(3), width, blocks)
  return [g.nodes[t].channels for t in taps]


class _Namer:
  """Keras 2 automatic layer names: per-class counters from 1, in creation order."""

  def __init__(self):
    self.counts = {}

  def __call__(self, cls: str) -> str:
    self.counts[cls] = self.counts.get(cls, 0) + 1
    return f"{cls}_{self.counts[cls]}"


class _FlaxBuilder:
  """Builder that computes with Flax submodules of `module` (inside its compact call)."""

  def __init__(self, module: "InceptionResNetV2", train: bool):
    self.m, self.train, self.name = module, train, _Namer()

  def channels(self, x):
    return x.shape[-1]

  def conv_bn(self, x, filters, kernel, strides=1, padding="SAME", activation=True,
              use_bias=False, name=None):
    m = self.m
    kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    x = nn.Conv(filters, kernel, strides=(strides, strides), padding=padding,
                use_bias=use_bias, dtype=m.dtype, param_dtype=jnp.float32,
                precision=m.precision, kernel_init=nn.initializers.glorot_uniform(),
                name=name or self.name("conv2d"))(x)
    if not use_bias:
      x = nn.BatchNorm(use_running_average=not self.train, momentum=m.bn_momentum,
                       epsilon=BN_EPSILON, use_scale=False, dtype=m.dtype,
                       param_dtype=jnp.float32, axis_name=m.bn_axis_name,
                       name=f"{name}_bn" if name else self.name("batch_normalization"))(x)
    return nn.relu(x) if activation else x

  def max_pool(self, x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")

  def avg_pool(self, x):
    # Keras/TF "same" average pooling divides by the number of in-image pixels.
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)

  def concat(self, xs, name):
    return jnp.concatenate(xs, axis=-1)

  def residual(self, x, up, scale, activation, name):
    x = x + up * jnp.asarray(scale, up.dtype)
    return nn.relu(x) if activation else x


class InceptionResNetV2(nn.Module):
  """Keras' InceptionResNetV2 without top, NHWC.

  Attributes:
    width: filter multiplier (1.0 = Keras; smaller for fast unit tests).
    blocks: number of (block35, block17, block8) blocks; Keras: (10, 20, 10).
    dtype: compute dtype (e.g. jnp.bfloat16); parameters stay float32.
    precision: lax precision of the convolutions (None = backend default, TF32 on
      recent NVIDIA GPUs; `jax.lax.Precision.HIGHEST` for exact float32 there).
    bn_axis_name: mapped axis name for cross-replica batch statistics (shard_map).
    bn_momentum: decay of the batch-norm running averages in training (Keras: 0.99;
      short runs need less, as the averages start at mean 0 and variance 1).

  Call: `model.apply(variables, x, train=False, taps=False, final=True)` with x
  (N, H, W, 3), H, W >= 75, already scaled (x/255 or Keras' [-1, 1]). Returns the final
  (N, h, w, 1536) features, or `(final, taps)` with `taps` a tuple of the 43 MLSP
  tensors when `taps=True`; `final=False` skips the last up-convolution and conv_7b
  (returns `(None, taps)`). With `train=True` pass `mutable=["batch_stats"]`.
  """
  width: float = 1.0
  blocks: tuple[int, int, int] = KERAS_BLOCKS
  dtype: Any = jnp.float32
  precision: Any = None
  bn_axis_name: str | None = None
  bn_momentum: float = BN_MOMENTUM

  @nn.compact
  def __call__(self, x, train: bool = False, taps: bool = False, final: bool = True):
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"InceptionResNetV2 expects (N, H, W, 3) images, got {x.shape}")
    if min(x.shape[1:3]) < MIN_SIZE:
      raise ValueError(f"InceptionResNetV2 needs H, W >= {MIN_SIZE} (as Keras), got "
                       f"{x.shape[1:3]}")
    out, tap_list = _architecture(_FlaxBuilder(self, train), x.astype(self.dtype),
                                  self.width, self.blocks, final=final or not taps)
    return (out, tuple(tap_list)) if taps else out


# ---------------------------------------------------------------------------------
# Keras layer graph (for the weight importer's topological order).


@dataclasses.dataclass
class _Node:
  name: str
  inputs: list
  channels: int
  weighted: str | None = None  # "conv", "conv_bias", "bn" for layers with weights


class KerasGraph:
  """Builder that records the Keras layer graph (one node per Keras layer)."""

  def __init__(self):
    self.nodes: list[_Node] = []
    self.name = _Namer()

  def _add(self, name, inputs, channels, weighted=None):
    self.nodes.append(_Node(name, list(inputs), channels, weighted))
    return len(self.nodes) - 1

  def input(self, channels):
    return self._add("input_1", [], channels)

  def channels(self, x):
    return self.nodes[x].channels

  def conv_bn(self, x, filters, kernel, strides=1, padding="SAME", activation=True,
              use_bias=False, name=None):
    x = self._add(name or self.name("conv2d"), [x], filters,
                  "conv_bias" if use_bias else "conv")
    if not use_bias:
      x = self._add(f"{name}_bn" if name else self.name("batch_normalization"), [x],
                    filters, "bn")
    if activation:
      x = self._add(f"{name}_ac" if name else self.name("activation"), [x], filters)
    return x

  def max_pool(self, x):
    return self._add(self.name("max_pooling2d"), [x], self.channels(x))

  def avg_pool(self, x):
    return self._add(self.name("average_pooling2d"), [x], self.channels(x))

  def concat(self, xs, name):
    return self._add(name, xs, sum(self.channels(i) for i in xs))

  def residual(self, x, up, scale, activation, name):
    x = self._add(f"{name}_scale", [x, up], self.channels(x))
    if activation:
      x = self._add(f"{name}_ac", [x], self.channels(x))
    return x

  def keras_order(self, outputs: Sequence[int]) -> list[int]:
    """Node ids in Keras' `model.layers` order for a model with these outputs.

    As keras `ops/function.py::map_graph` (and Keras 2's network builder): depth-first
    traversal from the outputs assigns each layer its first-visit index; a layer's
    depth is its longest path to an output; layers sort by decreasing depth, then by
    traversal index.
    """
    index, finished, post = {}, set(), []

    def visit(n):
      if n in finished:
        return
      index.setdefault(n, len(index))
      for p in self.nodes[n].inputs:
        visit(p)
      finished.add(n)
      post.append(n)

    for o in outputs:
      visit(o)
    depth = {}
    for n in reversed(post):
      d = depth.setdefault(n, 0)
      for p in self.nodes[n].inputs:
        depth[p] = max(depth.get(p, 0), d + 1)
    return sorted(index, key=lambda n: (-depth[n], index[n]))


def keras_graph(variant: str = "notop", width: float = 1.0,
                blocks: Sequence[int] = KERAS_BLOCKS) -> tuple[KerasGraph, list[int]]:
  """(graph, node ids of weighted layers in Keras order) for a Keras model variant.

  variant "notop": `InceptionResNetV2(include_top=False)` (the ImageNet `_notop.h5`);
  "mlsp": a model whose outputs are the pooled taps only (as the DeepFL-IQA / KonCept
  MLSP models are built), which leaves out block8_10's up-convolution and conv_7b.
  """
  g = KerasGraph()
  out, taps = _architecture(g, g.input(3), width, blocks, final=variant == "notop")
  if variant == "notop":
    outputs = [out]
  elif variant == "mlsp":
    gaps = [g._add(f"gap_{i}", [t], g.channels(t)) for i, t in enumerate(taps)]
    outputs = [g._add("concatenated_gaps", gaps, 0)]
  else:
    raise ValueError(f"unknown Keras graph variant {variant!r}")
  return g, [n for n in g.keras_order(outputs) if g.nodes[n].weighted]


def init_variables(model: InceptionResNetV2, seed: int = 0, shape=(1, 299, 299, 3)):
  """Fresh {"params", "batch_stats"} drawn on the host (NumPy), as Keras initialises.

  Kernels glorot-uniform (Keras' default), biases and batch-norm offsets zero, moving
  mean 0 and variance 1. Same distribution as `model.init`, but without compiling one
  random-number program per parameter (`jax.jit(model.init)` of the full model takes
  minutes of XLA compilation on a CPU). See `deepfl_jax.models.host_init`.
  """
  return host_init(model, jnp.zeros(shape, jnp.float32), seed=seed)


def abstract_variables(model: InceptionResNetV2, shape=(1, 299, 299, 3)):
  """Shapes of the variables (jax.ShapeDtypeStruct pytree) without computing."""
  return jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(shape, jnp.float32))
