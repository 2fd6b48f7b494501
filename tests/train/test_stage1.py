"""Stage 1 wiring: backbone taps -> narrow MLSP -> multi-task head -> MSE, trained by the
data-parallel step, in float32 and bfloat16 compute.

A stand-in backbone with InceptionResNetV2's call signature keeps this fast; the real
network (width-reduced) is traced abstractly only (its compile alone takes minutes on
a shared 2-core CPU); experiments/bench_train.py runs it for real.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepfl_jax import config_defaults
from deepfl_jax import train as tr
from deepfl_jax.models import NUM_PROXIES
from deepfl_jax.train import stage1


class TapNet(nn.Module):
  """InceptionResNetV2's interface: (x, train, taps, final) -> (final | None, taps)."""
  dtype: object = jnp.float32
  bn_axis_name: str | None = tr.DATA_AXIS

  @nn.compact
  def __call__(self, x, train=False, taps=False, final=True):
    out = []
    for ch, stride in ((6, 2), (10, 2)):
      x = nn.Conv(ch, (3, 3), strides=stride, use_bias=False, dtype=self.dtype)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       axis_name=self.bn_axis_name, dtype=self.dtype)(x)
      x = nn.relu(x)
      out.append(x)
    return None, tuple(out)


def _model(dtype):
  m = stage1.make_model(width=0.125, blocks=(1, 1, 1), dtype=dtype)
  return m.clone(backbone=TapNet(dtype=dtype))


def _data(n=8):
  """Images of graded brightness; every task's target is that brightness, spread over
  [0.1, 0.9] (the head starts at 0.5, so the loss falls only if the net learns)."""
  rng = np.random.default_rng(0)
  level = np.linspace(0.1, 0.9, n)
  image = level[:, None, None, None] * rng.uniform(0.5, 1.5, size=(n, 16, 16, 3)) / 1.5
  target = np.repeat(level[:, None], NUM_PROXIES, 1)
  return {"image": image.astype(np.float32), "target": target.astype(np.float32)}


def _train(dtype, steps):
  model = _model(dtype)
  v = stage1.init_variables(model, jax.random.PRNGKey(0), (16, 16))
  mesh = tr.make_mesh(jax.devices()[:1])
  tx = tr.make_optimizer(learning_rate=3e-3)
  state = tr.replicate(tr.TrainState.create(params=v["params"],
                                            batch_stats=v["batch_stats"], tx=tx,
                                            rng=jax.random.PRNGKey(1)), mesh)
  step = tr.make_train_step(stage1.make_loss_fn(model), tx, mesh)
  batch = tr.shard_batch(_data(), mesh)
  losses = []
  for _ in range(steps):
    state, m = step(state, batch)
    losses.append(float(m["loss"]))
  return v, state, losses


@pytest.fixture(scope="module")
def f32_run():
  return _train(jnp.float32, 12)


@pytest.mark.slow
def test_variables_split_backbone_and_head(f32_run):
  v, state, _ = f32_run
  assert set(v["params"]) == {"backbone", "head"}
  assert set(v["batch_stats"]) == {"backbone", "head"}
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       v["batch_stats"], tr.to_host(state.batch_stats))
  assert min(jax.tree.leaves(moved)) > 0  # every running statistic was updated


def test_multitask_loss_falls(f32_run):
  _, _, losses = f32_run
  assert all(np.isfinite(losses))
  assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_parameters(f32_run):
  v32, _, losses32 = f32_run
  v16, state16, losses16 = _train(jnp.bfloat16, 2)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state16.params))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state16.opt_state)
             if hasattr(x, "dtype") and x.ndim)
  for a, b in zip(jax.tree.leaves(v32["params"]), jax.tree.leaves(v16["params"])):
    np.testing.assert_array_equal(a, b)  # same initialisation
  # Same first step up to bfloat16 rounding.
  assert abs(losses16[0] - losses32[0]) < 0.05 * losses32[0]


def test_real_backbone_traces_with_the_data_parallel_step():
  model = stage1.make_model(width=0.125, blocks=(1, 1, 1))
  v = jax.eval_shape(lambda: stage1.init_variables(model, jax.random.PRNGKey(0),
                                                   (75, 75)))
  assert {"backbone", "head"} <= set(v["params"])
  mesh = tr.make_mesh(jax.devices()[:1])
  tx = tr.make_optimizer()
  state = jax.eval_shape(lambda v: tr.TrainState.create(
      params=v["params"], batch_stats=v["batch_stats"], tx=tx,
      rng=jax.random.PRNGKey(0)), v)
  batch = {"image": jax.ShapeDtypeStruct((2, 75, 75, 3), jnp.float32),
           "target": jax.ShapeDtypeStruct((2, NUM_PROXIES), jnp.float32)}
  step = tr.make_train_step(stage1.make_loss_fn(model), tx, mesh)
  new_state, metrics = jax.eval_shape(step, state, batch)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert metrics["loss"].shape == () and metrics["mse"].shape == ()


def test_head_layers_follow_config_and_mismatch_names_the_keys():
  model = stage1.make_model(width=0.125, blocks=(1, 1, 1), head_hidden=(32,),
                            head_dropout=(0.0,)).clone(backbone=TapNet())
  v = jax.eval_shape(lambda: stage1.init_variables(model, jax.random.PRNGKey(0),
                                                   (16, 16)))
  kernels = [x["kernel"].shape for k, x in sorted(v["params"]["head"].items())
             if k.startswith("Dense")]
  assert kernels == [(16, 32), (32, NUM_PROXIES)]
  with pytest.raises(ValueError, match="head_hidden .* head_dropout"):
    stage1.make_model(head_hidden=(64, 32), head_dropout=(0.0,))


@pytest.mark.slow
def test_bn_momentum_reaches_every_batch_norm_and_sets_the_running_average():
  # Keras' 0.99 keeps 0.99^n of the initial (mean 0, variance 1) after n steps: 22%
  # after the CI demo's 150 steps, which left Stage 1's inference-mode outputs near
  # constant (experiments/RESULTS.md, issue 13); config.model.bn_momentum sets it.
  model = stage1.make_model(width=0.125, blocks=(1, 1, 1), head_hidden=(8,),
                            head_dropout=(0.0,), axis_name=None, bn_momentum=0.9)
  assert model.backbone.bn_momentum == 0.9 and model.head.bn_momentum == 0.9
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 75, 75, 3))
  v = stage1.init_variables(model, jax.random.PRNGKey(0), (75, 75))
  _, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
  zero = jax.tree.map(jnp.zeros_like, v["batch_stats"])
  _, batch = model.apply({"params": v["params"], "batch_stats": zero}, x, train=True,
                         mutable=["batch_stats"])  # 0.1 x this batch's statistics
  for new, old, b in zip(jax.tree.leaves(upd["batch_stats"]),
                         jax.tree.leaves(v["batch_stats"]),
                         jax.tree.leaves(batch["batch_stats"])):
    np.testing.assert_allclose(new, 0.9 * old + b, rtol=1e-5, atol=1e-6)
  assert config_defaults.model_config().bn_momentum == 0.99  # Keras' default


_MASKED_WORKER = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import PartitionSpec as P
from deepfl_jax import train as tr
from deepfl_jax.train import stage1
rng = np.random.default_rng(0)
pred, target = rng.uniform(size=(8, 3)), rng.uniform(size=(8, 3))
target[[0, 1, 2], 1] = np.nan  # all on the first device's rows: uneven counts
target[:, 2] = np.nan          # a task without any label in the batch
def per_device(p, t):
  per_task, n_bad, loss = stage1.masked_task_mse(p, t)
  return jax.lax.pmean((per_task, loss), tr.DATA_AXIS) + (n_bad,)
mesh = tr.make_mesh()
f = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(tr.DATA_AXIS),) * 2,
                          out_specs=P()))
per_task, loss, n_bad = f(jnp.asarray(pred, jnp.float32), jnp.asarray(target, jnp.float32))
json.dump({"devices": len(jax.devices()), "per_task": np.asarray(per_task).tolist(),
           "loss": float(loss), "n_bad": np.asarray(n_bad).tolist()}, open(sys.argv[1], "w"))
"""


def test_masked_loss_over_devices_equals_the_global_masked_mean(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             PYTHONPATH=root)
  out = tmp_path / "r.json"
  proc = subprocess.run([sys.executable, "-c", _MASKED_WORKER, str(out)], env=env,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  r = json.loads(out.read_text())
  assert r["devices"] == 4
  rng = np.random.default_rng(0)
  pred, target = rng.uniform(size=(8, 3)), rng.uniform(size=(8, 3))
  want0 = np.mean((pred[:, 0] - target[:, 0]) ** 2)
  want1 = np.mean((pred[3:, 1] - target[3:, 1]) ** 2)
  np.testing.assert_allclose(r["per_task"][:2], [want0, want1], rtol=1e-5)
  assert r["per_task"][2] == 0.0 and r["n_bad"] == [0, 3, 8]
  np.testing.assert_allclose(r["loss"], (want0 + want1) / 2, rtol=1e-5)


def test_pristine_source_and_crops_follow_config():
  # The demo's Stage 1 source: grey photographs + dead leaves; crops of the crop size
  # from every record (the small grey photographs are enlarged), plain or augmented.
  c = config_defaults.stage1_config()
  c.update(source="pristine", crop_size=(192, 256))
  c.pristine.num_dead_leaves = 2
  src = stage1._pristine_source(c)  # pylint: disable=protected-access
  assert len(src) == 12 and "text" in list(src.index["content"])
  rng = np.random.default_rng(0)
  for enabled in (False, True):
    c.augment.enabled = enabled
    tf = stage1._crop_transform(c)  # pylint: disable=protected-access
    crops = [tf(src.records[i], rng)["image"] for i in range(len(src))]
    assert all(x.shape == (192, 256, 3) and x.dtype == np.uint8 for x in crops)
  c.source = "embedded"
  c.augment.enabled = False
  assert stage1._crop_transform(c) is None  # pylint: disable=protected-access
