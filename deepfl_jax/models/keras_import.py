"""Keras 2 HDF5 weights -> Flax variables for InceptionResNetV2, and orbax checkpoints.

Reads the layout Keras 2 writes with `model.save_weights("x.h5")` (root attribute
`layer_names`, one group per layer with attribute `weight_names`) or inside
`model_weights` of a full `model.save("x.h5")`: the ImageNet file
`inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5` and the DeepFL-IQA
release `quality-mlsp-mtl-mse-loss.hdf5`. Layers are matched by their position among the
file's weighted layers, in `layer_names` order, as Keras' own loader does
(`load_weights_from_hdf5_group`), so Keras 2 (`conv2d_1, ...`) and Keras 3 (`conv2d,
conv2d_1, ...`) names both work; every layer's kind and every shape is checked.

Command line: `python -m deepfl_jax.models.keras_import IN.h5 OUT_DIR` writes an orbax
checkpoint of {"params", "batch_stats"}.
"""
from __future__ import annotations

import argparse
import collections
import os
import pathlib
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.models import inception_resnet_v2 as irv2

# Keras weight names per layer kind, in Keras' own order (BN has no gamma: scale=False).
_KIND_WEIGHTS = {
    "conv": ("kernel",),
    "conv_bias": ("kernel", "bias"),
    "bn": ("beta", "moving_mean", "moving_variance"),
}


def _decode(values) -> list[str]:
  return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _attr_list(group, name) -> list[str]:
  """A string-list attribute, also when Keras split it into `name0`, `name1`, ..."""
  if name in group.attrs:
    return _decode(group.attrs[name])
  out, i = [], 0
  while f"{name}{i}" in group.attrs:
    out += _decode(group.attrs[f"{name}{i}"])
    i += 1
  return out


def read_keras_h5(path) -> list[tuple[str, dict[str, np.ndarray]]]:
  """Weighted layers of a Keras HDF5 weight file, in `layer_names` order.

  Returns [(layer name, {short weight name: array}), ...]; a nested model's group is
  split into its inner layers (by the layer part of each weight name).
  """
  import h5py  # optional dependency: only the importer needs it

  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"Keras weight file not found: {path}")
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise ValueError(f"{path} is not an HDF5 file: {e}") from e
  with f:
    root = f["model_weights"] if "model_weights" in f else f
    names = _attr_list(root, "layer_names")
    if not names:
      raise ValueError(f"{path} is not a Keras 2 HDF5 weight file: no `layer_names` "
                       "attribute (Keras 3 `.weights.h5` files are not supported; save "
                       "with Keras' legacy h5 format)")
    layers = []
    for name in names:
      group = root[name]
      inner = collections.OrderedDict()
      for wname in _attr_list(group, "weight_names"):
        parts = wname.split("/")
        lname = parts[-2] if len(parts) >= 2 else name
        inner.setdefault(lname, {})[parts[-1].split(":")[0]] = np.asarray(group[wname])
      for lname, weights in inner.items():
        layers.append((name if lname == name else f"{name}/{lname}", weights))
  return layers


def _match(layers, order, graph, shapes):
  """Assign file layers to graph nodes in order; returns (assignments, error or None)."""
  out = []
  for k, node_id in enumerate(order):
    node = graph.nodes[node_id]
    if k >= len(layers):
      return out, (f"the file has only {len(layers)} weighted layers, the model needs "
                   f"{len(order)} (next expected: Keras layer #{k}, {node.name})")
    fname, weights = layers[k]
    want = _KIND_WEIGHTS[node.weighted]
    if set(weights) == set(want):
      values = [weights[w] for w in want]
    elif len(weights) == len(want):  # unknown short names: Keras' positional order
      values = list(weights.values())
    else:
      return out, (f"layer #{k} '{fname}' in the file has weights {sorted(weights)}, the "
                   f"model's layer '{node.name}' needs {list(want)}")
    for w, v in zip(want, values):
      expected = shapes[(node.name, w)]
      if tuple(v.shape) != tuple(expected):
        return out, (f"shape mismatch at layer #{k} '{fname}' (model layer "
                     f"'{node.name}', weight '{w}'): file {tuple(v.shape)}, model "
                     f"{tuple(expected)}")
    out.append((node.name, dict(zip(want, values))))
  return out, None


def _expected_shapes(model) -> dict[tuple[str, str], tuple[int, ...]]:
  var = irv2.abstract_variables(model)
  shapes = {}
  for name, p in var["params"].items():
    if "kernel" in p:
      shapes[(name, "kernel")] = p["kernel"].shape
    if "bias" in p:
      key = "beta" if name in var["batch_stats"] else "bias"
      shapes[(name, key)] = p["bias"].shape
  for name, s in var["batch_stats"].items():
    shapes[(name, "moving_mean")] = s["mean"].shape
    shapes[(name, "moving_variance")] = s["var"].shape
  return shapes


def load_keras_weights(path, model: irv2.InceptionResNetV2 | None = None,
                       extra: str = "error") -> dict[str, Any]:
  """Flax variables {"params", "batch_stats"} of InceptionResNetV2 from a Keras 2 h5.

  Args:
    path: Keras HDF5 weight file (`save_weights` layout or a full-model save).
    model: the Flax model the weights are for (default: Keras' architecture).
    extra: "error" (default) refuses files with weighted layers beyond the backbone
      (a classification top, a regression head); "ignore" skips them.

  A file from a model whose outputs are only the MLSP taps (block8_10's up-convolution
  and conv_7b are then absent) is accepted with a warning; those layers are set to zero
  (their output, the final features, is then zero; the taps are exact).

  Raises FileNotFoundError for a missing file and ValueError for a file that is not a
  Keras h5 weight file, has other layers, or a shape mismatch (naming the layer).
  """
  model = irv2.InceptionResNetV2() if model is None else model
  layers = read_keras_h5(path)
  shapes = _expected_shapes(model)
  errors = {}
  for variant in ("notop", "mlsp"):
    graph, order = irv2.keras_graph(variant, model.width, model.blocks)
    matched, err = _match(layers, order, graph, shapes)
    if err is None:
      break
    errors[variant] = (len(matched), err)
  else:
    # Report the variant that matched further: its error names the culprit layer.
    _, err = max(errors.values(), key=lambda e: e[0])
    raise ValueError(f"{path}: does not hold Keras' InceptionResNetV2 weights: {err}")
  rest = layers[len(order):]
  if rest and extra != "ignore":
    names = ", ".join(n for n, _ in rest[:5]) + (" ..." if len(rest) > 5 else "")
    raise ValueError(f"{path}: {len(rest)} weighted layers beyond the InceptionResNetV2 "
                     f"backbone ({names}); pass extra='ignore' to load the backbone only")
  params, stats = {}, {}
  for name, w in matched:
    if "moving_mean" in w:
      params[name] = {"bias": jnp.asarray(w["beta"], jnp.float32)}
      stats[name] = {"mean": jnp.asarray(w["moving_mean"], jnp.float32),
                     "var": jnp.asarray(w["moving_variance"], jnp.float32)}
    else:
      params[name] = {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}
  if variant == "mlsp":
    missing = sorted({n for n, _ in shapes} - set(params))
    warnings.warn(f"{path} holds an MLSP-only model: {missing} are absent and set to "
                  "zero (final features are zero; the MLSP taps are exact)")
    for name in missing:
      if (name, "moving_mean") in shapes:
        stats[name] = {"mean": jnp.zeros(shapes[(name, "moving_mean")]),
                       "var": jnp.ones(shapes[(name, "moving_variance")])}
        params[name] = {"bias": jnp.zeros(shapes[(name, "beta")])}
      else:
        params[name] = {"kernel": jnp.zeros(shapes[(name, "kernel")])}
        if (name, "bias") in shapes:
          params[name]["bias"] = jnp.zeros(shapes[(name, "bias")])
  return {"params": params, "batch_stats": stats}


def save_checkpoint(variables, out_dir) -> pathlib.Path:
  """Writes `variables` as an orbax checkpoint in a NEW directory `out_dir`."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel  # lazy: ~1 s import

  out = pathlib.Path(out_dir).absolute()
  if out.exists():
    raise FileExistsError(f"{out} exists; refusing to overwrite it")
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(out, variables)
    ckptr.wait_until_finished()
  return out


def restore_checkpoint(path) -> dict[str, Any]:
  """Variables saved by `save_checkpoint` (arrays as jax arrays)."""
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel  # lazy: ~1 s import

  path = pathlib.Path(path).absolute()
  if not path.is_dir():
    raise FileNotFoundError(f"orbax checkpoint directory not found: {path}")
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(path)
  return jax.tree.map(jnp.asarray, restored)


def load_variables(source, model: irv2.InceptionResNetV2 | None = None,
                   extra: str = "error") -> dict[str, Any]:
  """Variables from a dict (returned as is), a Keras .h5/.hdf5 file or an orbax dir.

  The entry point for `config.model.init_from`.
  """
  if isinstance(source, dict):
    return source
  path = pathlib.Path(os.fspath(source)).expanduser()
  if path.is_dir():
    return restore_checkpoint(path)
  return load_keras_weights(path, model, extra=extra)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(
      prog="python -m deepfl_jax.models.keras_import",
      description="Convert Keras 2 InceptionResNetV2 h5 weights to an orbax checkpoint.")
  p.add_argument("input", help="Keras HDF5 weight file")
  p.add_argument("out_dir", help="new directory for the orbax checkpoint")
  p.add_argument("--extra", choices=("error", "ignore"), default="error",
                 help="what to do with weighted layers beyond the backbone")
  args = p.parse_args(argv)
  if pathlib.Path(args.out_dir).exists():
    print(f"error: {args.out_dir} exists; refusing to overwrite it", file=sys.stderr)
    return 2
  try:
    variables = load_keras_weights(args.input, extra=args.extra)
  except (FileNotFoundError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  out = save_checkpoint(variables, args.out_dir)
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables))
  print(f"wrote {n} weights to {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
