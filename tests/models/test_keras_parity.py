"""Parity with keras.applications.InceptionResNetV2 (Keras 3, JAX backend).

One Keras model (random weights, random batch-norm statistics) is written in the Keras 2
HDF5 weight layout with Keras 2 layer names, imported with `load_keras_weights`, and
both models run on the same images at 299x299 and 384x512: the 43 MLSP taps and the
final features must agree within 1e-4 relative error (max abs error / max abs value).
Needs `keras` and `h5py` (test extras).
"""
from __future__ import annotations

import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

from deepfl_jax.models import InceptionResNetV2, load_keras_weights, tap_widths
from deepfl_jax.models import inception_resnet_v2 as irv2

pytestmark = pytest.mark.slow  # builds Keras's InceptionResNetV2 beside ours

if keras.backend.backend() != "jax":
  pytest.skip(f"Keras runs on {keras.backend.backend()!r}, these tests need "
              "KERAS_BACKEND=jax", allow_module_level=True)

SIZES = [(299, 299), (384, 512)]
TOL = 1e-4


def _keras2_names(model) -> dict[str, str]:
  """Keras 3 layer name -> Keras 2 name (per-class counters from 1 in creation order)."""
  out = {}
  for prefix in ("conv2d", "batch_normalization", "activation", "max_pooling2d",
                 "average_pooling2d"):
    auto = [l.name for l in model.layers if re.fullmatch(rf"{prefix}(_\d+)?", l.name)]
    auto.sort(key=lambda n: int(n.rsplit("_", 1)[1]) if n != prefix and
              n[len(prefix):].startswith("_") and n[len(prefix) + 1:].isdigit() else 0)
    out.update({n: f"{prefix}_{i + 1}" for i, n in enumerate(auto)})
  return out


def _write_keras2_h5(model, path, names):
  """Keras 2 `save_weights` layout: root `layer_names`, per layer `weight_names`."""
  with h5py.File(path, "w") as f:
    layer_names = [names.get(l.name, l.name) for l in model.layers]
    f.attrs["layer_names"] = [n.encode("utf8") for n in layer_names]
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    for layer, name in zip(model.layers, layer_names):
      g = f.create_group(name)
      wnames = [f"{name}/{w.name}:0" for w in layer.weights]
      g.attrs["weight_names"] = [n.encode("utf8") for n in wnames]
      for wn, w in zip(wnames, layer.weights):
        g.create_dataset(wn, data=np.asarray(w.numpy()))


def _numpy_glorot_uniform(rng):
  """Keras' glorot_uniform drawn with NumPy: Keras' own draws compile one XLA program
  per kernel shape (about 50 s of the build on a loaded 2-core machine)."""
  def init(self, shape, dtype=None):
    receptive = int(np.prod(shape[:-2]))
    limit = np.sqrt(6.0 / (shape[-2] * receptive + shape[-1] * receptive))
    return rng.uniform(-limit, limit, shape).astype("float32")
  return init


@pytest.fixture(scope="module")
def keras_setup(tmp_path_factory):
  rng = np.random.default_rng(0)
  from keras.src.initializers import random_initializers
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(random_initializers.GlorotUniform, "__call__", _numpy_glorot_uniform(rng))
    km = keras.applications.InceptionResNetV2(weights=None, include_top=False,
                                              input_shape=(None, None, 3))
  for layer in km.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      c = layer.weights[0].shape[0]
      layer.set_weights([rng.normal(0, 0.2, c).astype("float32"),     # beta
                         rng.normal(0, 0.2, c).astype("float32"),     # moving mean
                         rng.uniform(0.5, 2.0, c).astype("float32")])  # moving var
    elif layer.name.endswith("_conv"):  # up-convolutions: random bias too
      k, b = layer.get_weights()
      layer.set_weights([k, rng.normal(0, 0.2, b.shape).astype("float32")])
  names = _keras2_names(km)
  path = tmp_path_factory.mktemp("keras") / "irv2_keras2_layout.h5"
  _write_keras2_h5(km, path, names)
  return km, names, path


def test_param_count_equals_keras(keras_setup):
  km, _, _ = keras_setup
  v = irv2.abstract_variables(InceptionResNetV2())  # shapes only, nothing computed
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v))
  assert n == km.count_params() == 54_336_736


def test_keras_layer_order_reproduced(keras_setup):
  km, names, _ = keras_setup
  keras_order = [names.get(l.name, l.name) for l in km.layers if l.weights]
  g, order = irv2.keras_graph("notop")
  assert [g.nodes[i].name for i in order] == keras_order


def test_taps_and_features_match_keras(keras_setup):
  km, _, path = keras_setup
  tap_layers = [l.name for l in km.layers if "mixed" in l.name]
  assert len(tap_layers) == 43
  kt = keras.Model(km.input, [km.get_layer(n).output for n in tap_layers] + [km.output])
  variables = load_keras_weights(path)
  model = InceptionResNetV2()
  apply = jax.jit(lambda v, x: model.apply(v, x, taps=True))
  rng = np.random.default_rng(1)
  for h, w in SIZES:
    x = rng.uniform(-1, 1, (1, h, w, 3)).astype("float32")
    ref = [np.asarray(t) for t in kt.predict_on_batch(x)]  # jit: cheaper than eager
    final, taps = apply(variables, x)
    got = list(taps) + [final]
    assert [t.shape[-1] for t in got[:-1]] == tap_widths()
    for name, a, b in zip(tap_layers + ["conv_7b_ac"], got, ref):
      assert a.shape == b.shape, (name, a.shape, b.shape)
      err = np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b))
      assert err <= TOL, f"{name} at {h}x{w}: relative error {err:.2e}"
