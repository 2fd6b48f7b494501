"""InceptionResNetV2 shapes, MLSP extractor behaviour, heads, weight import and CLI.

Everything that computes uses a width-reduced model (width 1/8, one block per stage);
the full model is only traced abstractly (jax.eval_shape). Keras parity is in
test_keras_parity.py.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax import models
from deepfl_jax.models import (
  MLSP_WIDTH,
  InceptionResNetV2,
  MOSRegressor,
  MultiTaskHead,
  keras_import,
  load_keras_weights,
  mlsp,
  mlsp_extractor,
)
from deepfl_jax.models import inception_resnet_v2 as irv2

SMALL = InceptionResNetV2(width=0.125, blocks=(1, 1, 1))
SHAPE = (2, 75, 91, 3)  # non-square, Keras' minimum side


@pytest.fixture(scope="module")
def small_vars():
  v = irv2.init_variables(SMALL, seed=0)
  # Non-trivial batch-norm statistics (small, so that ReLUs do not all die).
  rng = np.random.default_rng(1)
  stats = jax.tree_util.tree_map_with_path(
      lambda p, x: x * rng.uniform(0.5, 1.5, x.shape) if p[-1].key == "var"
      else x + rng.normal(0, 0.02, x.shape), v["batch_stats"])
  stats = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), stats)
  return {"params": v["params"], "batch_stats": stats}


@pytest.fixture(scope="module")
def images():
  return jax.random.uniform(jax.random.PRNGKey(2), SHAPE)


@pytest.fixture(scope="module")
def narrow(small_vars, images):
  """(extractor, its features of `images`) for the small model."""
  fn = mlsp_extractor(small_vars, model=SMALL)
  return fn, fn(images)


# ---------------------------------------------------------------- full architecture


def test_full_model_param_count_and_taps_abstract():
  model = InceptionResNetV2()
  v = irv2.abstract_variables(model)
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v)) == 54_336_736  # Keras
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))
  widths = [320] + [128] * 10 + [1088] + [384] * 20 + [2080] + [448] * 10
  assert irv2.tap_widths() == widths and sum(widths) == MLSP_WIDTH == 16_928
  x = jax.ShapeDtypeStruct((1, 384, 512, 3), jnp.float32)
  final, taps = jax.eval_shape(lambda v, x: model.apply(v, x, taps=True), v, x)
  assert [t.shape[-1] for t in taps] == widths
  # Spatial sizes of Keras at 384x512 (valid stem, stride-2 reductions).
  assert taps[0].shape[1:3] == (45, 61) and taps[11].shape[1:3] == (22, 30)
  assert taps[32].shape[1:3] == (10, 14) and final.shape == (1, 10, 14, 1536)
  assert jax.eval_shape(mlsp.mlsp_narrow, taps).shape == (1, MLSP_WIDTH)
  assert jax.eval_shape(mlsp.mlsp_wide, taps).shape == (1, 5, 5, MLSP_WIDTH)


@pytest.mark.slow
def test_bf16_compute_keeps_float32_params(small_vars, images, narrow):
  bf = InceptionResNetV2(width=0.125, blocks=(1, 1, 1), dtype=jnp.bfloat16)
  v = irv2.abstract_variables(bf, (1, 75, 75, 3))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))
  f32 = narrow[1]
  b16 = mlsp_extractor(small_vars, model=bf)(images)
  assert b16.dtype == jnp.float32
  rel = float(jnp.linalg.norm(b16 - f32) / jnp.linalg.norm(f32))
  assert 0 < rel < 0.05


def test_too_small_input_rejected(small_vars):
  with pytest.raises(ValueError, match="75"):
    SMALL.apply(small_vars, jnp.zeros((1, 74, 80, 3)))


# --------------------------------------------------------------------- MLSP extractor


def test_extractor_compiles_once_per_shape(small_vars, images, monkeypatch):
  traces = []
  real = mlsp.mlsp_narrow
  monkeypatch.setattr(mlsp, "mlsp_narrow", lambda taps: traces.append(1) or real(taps))
  model = InceptionResNetV2(width=0.125, blocks=(1, 1, 1), precision="highest")
  fn = mlsp_extractor(small_vars, model=model)
  a = fn(images)
  b = fn(images * 0.9)
  assert len(traces) == 1 and a.shape == (2, sum(irv2.tap_widths(0.125, (1, 1, 1))))
  assert not np.allclose(a, b)
  fn(images[:1])
  fn(images[1:])
  assert len(traces) == 2 and fn.jitted._cache_size() == 2


@pytest.mark.slow
def test_extractor_vmap_grad_jit(images, narrow):
  fn, ref = narrow
  stacked = jax.vmap(fn)(images[:, None])  # (2, 1, H, W, 3) -> (2, 1, D)
  np.testing.assert_allclose(stacked[:, 0], ref, rtol=1e-4, atol=1e-5)
  # Inside another jit, together with grad (one compilation for both).
  value, g = jax.jit(jax.value_and_grad(lambda x: jnp.sum(fn(x) ** 2)))(images)
  np.testing.assert_allclose(value, jnp.sum(ref ** 2), rtol=1e-4)
  assert g.shape == images.shape and bool(jnp.all(jnp.isfinite(g)))
  assert float(jnp.abs(g).max()) > 0


def test_wide_pools_consistently_with_narrow(small_vars, images, narrow):
  narrow = narrow[1]
  wide = mlsp_extractor(small_vars, "wide", model=SMALL)(images)
  assert wide.shape == (2, 5, 5, narrow.shape[-1])
  # Area resizing preserves the mean: the 5x5 average equals global average pooling.
  np.testing.assert_allclose(wide.mean(axis=(1, 2)), narrow, rtol=1e-4, atol=1e-6)


def test_extractor_inputs_uint8_scaled_out_of_range_rejected(small_vars, images,
                                                            narrow):
  fn, ref = narrow
  u8 = np.round(np.asarray(images) * 255).astype(np.uint8)
  # uint8 is read as x / 255, exactly what the float path gets from the same file.
  np.testing.assert_allclose(fn(u8), fn(u8.astype(np.float32) / 255), rtol=1e-6,
                             atol=1e-7)
  np.testing.assert_allclose(fn(u8), ref, rtol=0.05, atol=2e-3)  # 8-bit rounding only
  with pytest.raises(ValueError, match=r"mlsp_extractor: input image values must lie "
                     r"in \[0, 1\].*max 25[0-5].*uint8"):
    fn(u8.astype(np.float32))  # 0..255 floats: the mistake the error names
  with pytest.raises(ValueError, match="NaN"):
    fn(np.full(images.shape, np.nan, np.float32))
  with pytest.raises(TypeError, match="uint8"):
    fn(u8.astype(np.int32))


def test_area_matrix():
  r = mlsp.area_matrix(10, 5)
  np.testing.assert_allclose(r, np.kron(np.eye(5), [[0.5, 0.5]]))
  for n_in in (3, 5, 8, 17, 35):
    r = mlsp.area_matrix(n_in, 5)
    np.testing.assert_allclose(r.sum(1), 1.0)
    np.testing.assert_allclose(r.sum(0), 5 / n_in)
  np.testing.assert_allclose(mlsp.area_matrix(1, 5), np.ones((5, 1)))


@pytest.mark.slow
def test_input_scale_keras(small_vars, images):
  keras_scale = mlsp_extractor(small_vars, model=SMALL, input_scale="keras")
  # The unit extractor refuses floats outside [0, 1]; the pure function takes them.
  np.testing.assert_allclose(
      keras_scale(images), mlsp.mlsp_features(SMALL, small_vars, 2 * images - 1),
      rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="input_scale"):
    mlsp_extractor(small_vars, model=SMALL, input_scale="caffe")
  with pytest.raises(ValueError, match="kind"):
    mlsp_extractor(small_vars, kind="medium", model=SMALL)


def test_train_mode_updates_batch_stats(small_vars, images):
  feats, stats = jax.jit(lambda v, x: mlsp.mlsp_features(SMALL, v, x, train=True))(
      small_vars, images)
  assert feats.shape[0] == 2
  before = jax.tree.leaves(small_vars["batch_stats"])
  after = jax.tree.leaves(stats)
  assert len(before) == len(after)
  assert any(not np.allclose(a, b) for a, b in zip(after, before))


# ------------------------------------------------------------------------------ heads


def test_heads():
  reg = MOSRegressor()
  v = jax.eval_shape(reg.init, jax.random.PRNGKey(1), jnp.zeros((4, MLSP_WIDTH)))
  dims = [(k, p["kernel"].shape) for k, p in sorted(v["params"].items()) if "kernel" in p]
  assert dims == [("Dense_0", (MLSP_WIDTH, 2048)), ("Dense_1", (2048, 1024)),
                  ("Dense_2", (1024, 256)), ("Dense_3", (256, 1))]
  assert set(v["batch_stats"]) == {"BatchNorm_0", "BatchNorm_1", "BatchNorm_2"}
  assert "scale" in v["params"]["BatchNorm_0"]  # Keras' default BN has gamma
  vm = jax.eval_shape(MultiTaskHead().init, jax.random.PRNGKey(1), jnp.zeros((4, 64)))
  assert vm["params"]["Dense_3"]["kernel"].shape == (256, 11)
  # Behaviour on a narrow input (the same module, smaller first Dense).
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 64))
  v = jax.jit(reg.init)(jax.random.PRNGKey(1), x)
  w = v["params"]["Dense_0"]["kernel"]
  assert abs(float(w.std()) - np.sqrt(2 / 64)) < 0.1 * np.sqrt(2 / 64)  # He normal
  infer = jax.jit(reg.apply)
  train = jax.jit(lambda v, x, key: reg.apply(v, x, train=True, rngs={"dropout": key},
                                              mutable=["batch_stats"]))
  assert infer(v, x).shape == (4, 1)
  y1, upd = train(v, x, jax.random.PRNGKey(2))
  y2, _ = train(v, x, jax.random.PRNGKey(3))
  assert not np.allclose(y1, y2)  # dropout active in training
  np.testing.assert_array_equal(infer(v, x), infer(v, x))  # and not at inference
  mean = upd["batch_stats"]["BatchNorm_0"]["mean"]
  # Keras momentum 0.99: one step moves the running mean 1% towards the batch mean.
  h = jax.nn.relu(x @ w + v["params"]["Dense_0"]["bias"])
  np.testing.assert_allclose(mean, 0.01 * h.mean(0), rtol=1e-4, atol=1e-6)


def test_host_init_matches_init_structure():
  class Net(nn.Module):  # backbone + head, as Stage 1 composes them
    backbone: nn.Module
    head: nn.Module

    def __call__(self, x):
      _, taps = self.backbone(x, taps=True, final=False)
      return self.head(mlsp.mlsp_narrow(taps))

  net = Net(SMALL.clone(), MultiTaskHead(hidden=(32, 16, 8)))
  x = jnp.zeros((1, 75, 75, 3))
  v = models.host_init(net, x, seed=3)
  ref = jax.eval_shape(net.init, jax.random.PRNGKey(0), x)
  assert jax.tree.structure(v) == jax.tree.structure(ref)
  assert all(a.shape == b.shape and a.dtype == b.dtype
             for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(ref)))
  p = v["params"]
  k = np.asarray(p["backbone"]["conv2d_1"]["kernel"])  # (3, 3, 3, 4)
  limit = np.sqrt(6 / (27 + 36))
  assert np.abs(k).max() <= limit and np.abs(k).max() > 0.5 * limit  # glorot uniform
  d = np.asarray(p["head"]["Dense_0"]["kernel"])
  fan_in = d.shape[0]
  assert np.abs(d).max() <= 2 * np.sqrt(2 / fan_in) / 0.8796 + 1e-6  # truncated He
  assert 0.7 < d.std() / np.sqrt(2 / fan_in) < 1.3
  np.testing.assert_array_equal(p["head"]["BatchNorm_0"]["scale"], 1)
  np.testing.assert_array_equal(
      v["batch_stats"]["backbone"]["batch_normalization_1"]["var"], 1)
  assert not np.any(np.asarray(p["backbone"]["batch_normalization_1"]["bias"]))
  out = jax.jit(net.apply)(v, jax.random.uniform(jax.random.PRNGKey(0), (2, 75, 75, 3)))
  assert out.shape == (2, 11) and bool(jnp.all(jnp.isfinite(out)))


# ------------------------------------------------------------------ Keras h5 import


def _write_h5(path, variables, model, variant="notop", extra_layers=(), corrupt=None):
  """Keras 2 layout file from Flax variables, layers in Keras' order."""
  import h5py
  g, order = irv2.keras_graph(variant, model.width, model.blocks)
  p, s = variables["params"], variables["batch_stats"]
  layers = [("input_1", [])]
  for n in order:
    name = g.nodes[n].name
    if name in s:
      ws = [("beta", p[name]["bias"]), ("moving_mean", s[name]["mean"]),
            ("moving_variance", s[name]["var"])]
    else:
      ws = [(k, p[name][k]) for k in ("kernel", "bias") if k in p[name]]
    if name == corrupt:
      ws = [(k, np.asarray(a)[..., :-1]) for k, a in ws]
    layers.append((name, ws))
  layers += list(extra_layers)
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [n.encode() for n, _ in layers]
    for name, ws in layers:
      grp = f.create_group(name)
      grp.attrs["weight_names"] = [f"{name}/{k}:0".encode() for k, _ in ws]
      for k, a in ws:
        grp.create_dataset(f"{name}/{k}:0", data=np.asarray(a))
  return path


def _close(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
               a, b)


def test_import_roundtrip_and_errors(small_vars, tmp_path):
  path = _write_h5(tmp_path / "w.h5", small_vars, SMALL)
  _close(load_keras_weights(path, SMALL), small_vars)
  with pytest.raises(FileNotFoundError, match="missing.h5"):
    load_keras_weights(tmp_path / "missing.h5", SMALL)
  head = [("dense_1", [("kernel", np.zeros((3, 1))), ("bias", np.zeros(1))])]
  extra = _write_h5(tmp_path / "extra.h5", small_vars, SMALL, extra_layers=head)
  with pytest.raises(ValueError, match="dense_1"):
    load_keras_weights(extra, SMALL)
  _close(load_keras_weights(extra, SMALL, extra="ignore"), small_vars)
  bad = _write_h5(tmp_path / "bad.h5", small_vars, SMALL, corrupt="conv2d_7")
  with pytest.raises(ValueError, match="shape mismatch.*conv2d_7"):
    load_keras_weights(bad, SMALL)
  # The full Keras architecture does not accept the small model's file.
  with pytest.raises(ValueError, match="shape mismatch.*conv2d_1"):
    load_keras_weights(path)
  (tmp_path / "not.h5").write_text("hello")
  with pytest.raises(ValueError, match="not an HDF5"):
    load_keras_weights(tmp_path / "not.h5", SMALL)


def test_import_mlsp_only_file(small_vars, images, narrow, tmp_path):
  path = _write_h5(tmp_path / "mlsp.h5", small_vars, SMALL, variant="mlsp")
  with pytest.warns(UserWarning, match="conv_7b"):
    v = load_keras_weights(path, SMALL)
  np.testing.assert_allclose(mlsp_extractor(v, model=SMALL)(images), narrow[1],
                             rtol=1e-6)


def test_cli_orbax_checkpoint(small_vars, images, narrow, tmp_path, monkeypatch, capsys):
  path = _write_h5(tmp_path / "w.h5", small_vars, SMALL)
  # The CLI converts Keras' architecture; point it at the small one for speed.
  monkeypatch.setattr(keras_import.irv2, "InceptionResNetV2",
                      lambda: InceptionResNetV2(width=0.125, blocks=(1, 1, 1)))
  out = tmp_path / "ckpt"
  assert keras_import.main([str(path), str(out)]) == 0
  assert out.is_dir()
  stamp = sorted(p.name for p in out.iterdir())
  assert keras_import.main([str(path), str(out)]) == 2  # refuses to overwrite
  assert "exists" in capsys.readouterr().err
  assert sorted(p.name for p in out.iterdir()) == stamp
  assert keras_import.main([str(tmp_path / "nope.h5"), str(tmp_path / "c2")]) == 2
  assert not (tmp_path / "c2").exists()
  _close(models.restore_checkpoint(out), small_vars)
  ref = narrow[1]
  for source in (out, str(path)):
    np.testing.assert_allclose(mlsp_extractor(source, model=SMALL)(images), ref,
                               rtol=1e-6)
