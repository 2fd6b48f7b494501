"""Online Stage-1 synthesis (deepfl_jax/data/synthesis.py).

Small on purpose: 192x192 crops (MS-SSIM / IW-SSIM need >= 176 px), 5 images per step
(so the fused metric program compiles once for the whole file), types 1 (Gaussian
blur) and 11 (white noise) only.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from deepfl_jax.data import histeq, mini_kadid, synthesis
from deepfl_jax.metrics import METRIC_NAMES, fr_scores
from deepfl_jax.metrics.fused import stack

CROP = (192, 192)
UNIFORM = synthesis.SynthesisConfig(crop_size=CROP, batch_size=5, types=(1, 11),
                                    group_size=1)
KADIS = synthesis.SynthesisConfig(crop_size=CROP, batch_size=1, assignment="kadis")


@pytest.fixture(scope="module")
def pristine():
  return mini_kadid.pristine_source(("astronaut", "coffee"), size=(224, 256))


def _take(source, n, **kw):
  kw.setdefault("process_index", 0)
  kw.setdefault("process_count", 1)
  return list(synthesis.stream(source, num_steps=n, **kw))


@pytest.fixture(scope="module")
def uniform_batches(pristine):
  return _take(pristine, 2, config=UNIFORM, seed=0)


@pytest.fixture(scope="module")
def kadis_source():
  recs = [{"image": mini_kadid.pristine_image("chelsea", (200, 240)), "name": "chelsea",
           "content": "chelsea", "dist_type": 1}]
  return recs


@pytest.mark.slow
def test_stream_is_deterministic(pristine, uniform_batches):
  again = _take(pristine, 2, config=UNIFORM, seed=0)
  for a, b in zip(uniform_batches, again):
    for k in ("image", "reference", "dist_type", "level", "scores"):
      np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
  other = _take(pristine, 1, config=UNIFORM, seed=1, with_labels=False)[0]
  assert not np.array_equal(np.asarray(other["image"]),
                            np.asarray(uniform_batches[0]["image"]))


@pytest.mark.slow
def test_batch_contents(uniform_batches):
  b = uniform_batches[0]
  img, ref = np.asarray(b["image"]), np.asarray(b["reference"])
  assert img.shape == ref.shape == (5, *CROP, 3) and ref.dtype == np.uint8
  assert img.dtype == np.float32 and img.min() >= 0 and img.max() <= 1
  assert np.abs(img * 255 - np.round(img * 255)).max() < 1e-3   # on the 8-bit grid
  assert set(np.asarray(b["dist_type"]).tolist()) <= {1, 11}
  assert set(np.asarray(b["level"]).tolist()) <= {1, 2, 3, 4, 5}
  assert b["scores"].shape == (5, 11) and np.all(np.isfinite(b["scores"]))
  assert "target" not in b and b["mask"].all() and len(b["content"]) == 5
  types = np.concatenate([np.asarray(x["dist_type"]) for x in uniform_batches])
  assert len(set(types.tolist())) == 2   # both types drawn in 10 images (p = 1 - 2^-9)


@pytest.mark.slow
def test_labels_equal_metrics_on_same_images(uniform_batches):
  for b in uniform_batches:
    image8 = np.round(np.asarray(b["image"]) * 255).astype(np.uint8)
    direct = stack(fr_scores(np.asarray(b["reference"]), image8))
    np.testing.assert_allclose(np.asarray(b["scores"]), np.asarray(direct), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.slow
def test_resume_and_process_sharding(pristine):
  cfg = dict(config=UNIFORM, seed=3, with_labels=False)
  two = _take(pristine, 2, **cfg)
  resumed = _take(pristine, 1, start_step=1, **cfg)[0]
  np.testing.assert_array_equal(np.asarray(resumed["image"]), np.asarray(two[1]["image"]))
  # Two processes with 2 crops each == one process with 4 crops.
  one = synthesis.SynthesisConfig(crop_size=CROP, batch_size=4, types=(1, 11),
                                  group_size=1)
  half = synthesis.SynthesisConfig(crop_size=CROP, batch_size=2, types=(1, 11),
                                   group_size=1)
  full = _take(pristine, 1, config=one, seed=3, with_labels=False)[0]
  parts = [_take(pristine, 1, config=half, seed=3, with_labels=False, process_index=p,
                 process_count=2)[0] for p in (0, 1)]
  for k in ("image", "dist_type", "level"):
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(p[k]) for p in parts]), np.asarray(full[k]), err_msg=k)


def test_uniform_plan_groups():
  t, l = synthesis.uniform_plan(jax.random.PRNGKey(0), 400, group_size=4)
  assert t.shape == l.shape == (400,)
  assert np.all(t.reshape(100, 4) == t.reshape(100, 4)[:, :1])   # one type per group
  assert len(np.unique(l.reshape(100, 4), axis=0)) > 50           # levels per image
  assert set(t.tolist()) <= set(range(1, 26)) and len(set(t.tolist())) > 15
  assert set(l.tolist()) == {1, 2, 3, 4, 5}


@pytest.mark.slow
def test_kadis_assignment_and_orientation(kadis_source, uniform_batches):
  b = _take(kadis_source, 1, config=KADIS, seed=0)[0]
  np.testing.assert_array_equal(np.asarray(b["dist_type"]), [1] * 5)
  np.testing.assert_array_equal(np.asarray(b["level"]), [1, 2, 3, 4, 5])
  ref = np.asarray(b["reference"])
  assert np.all(ref == ref[:1])           # one crop at all five levels
  raw = np.asarray(b["scores"])
  mdsi, gmsd = METRIC_NAMES.index("mdsi"), METRIC_NAMES.index("gmsd")
  assert raw[4, mdsi] > raw[0, mdsi] and raw[4, gmsd] > raw[0, gmsd]  # raw: lower=better
  # Equaliser fitted on a calibration sample that includes these five images.
  calib = np.concatenate([np.asarray(x["scores"]) for x in uniform_batches] + [raw])
  eq = histeq.fit(calib)
  target = np.asarray(histeq.equalize(eq, raw))
  for j, m in enumerate(METRIC_NAMES):
    assert target[4, j] < target[0, j], m     # stronger blur -> lower label, all 11
    assert target[4, j] == target[:, j].min(), m
  # The stream applies the same equaliser on the device.
  b2 = _take(kadis_source, 1, config=KADIS, seed=0, equalizer=eq)[0]
  np.testing.assert_allclose(np.asarray(b2["target"]), target, atol=1e-6)


def test_record_types_kadis_quirk():
  batch = {"dist_type_1": np.array([7, 7, 3]), "dist_type_2": np.array([8, 0, 12])}
  np.testing.assert_array_equal(synthesis.record_types(batch), [8, 7, 3])
  with pytest.raises(ValueError, match="dist_type"):
    synthesis.record_types({"image": np.zeros((1, 2, 2, 3))})


def test_config_errors(pristine):
  with pytest.raises(ValueError, match="176"):
    synthesis.SynthesisConfig(crop_size=(128, 128))
  with pytest.raises(ValueError, match="divide"):
    synthesis.SynthesisConfig(batch_size=6, group_size=4)
  with pytest.raises(ValueError, match="smaller than the crop"):
    big = synthesis.SynthesisConfig(crop_size=(300, 300), group_size=1, batch_size=1)
    _take(pristine, 1, config=big, with_labels=False)


@pytest.mark.slow
def test_calibrate(pristine):
  done = []
  eq = synthesis.calibrate(pristine, config=UNIFORM, num_steps=2, seed=7,
                           on_batch=done.append)
  assert done == [1, 2]  # the progress callback saw each batch
  assert eq.names == METRIC_NAMES and eq.num_samples == (10,) * 11
  scores = np.concatenate([np.asarray(b["scores"]) for b in
                           _take(pristine, 2, config=UNIFORM, seed=7)])
  u = np.asarray(histeq.equalize(eq, scores))
  for j in range(11):   # the calibration sample itself spreads over [0, 1]
    assert u[:, j].min() < 0.1 and u[:, j].max() > 0.9   # 0 and 1 unless ends tie
    assert u[:, j].mean() == pytest.approx(0.5, abs=1e-6)


# --- device-parallel synthesis (4 simulated CPU devices, in a subprocess) -----------
@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
  root = pathlib.Path(__file__).resolve().parents[2]
  tmp = tmp_path_factory.mktemp("synth4")
  env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(root), env.get("PYTHONPATH", "")]))
  proc = subprocess.run([sys.executable, str(root / "tests/data/_synth_worker.py"),
                         str(tmp / "out.json"), str(tmp)], env=env,
                        capture_output=True, text=True, timeout=2400)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads((tmp / "out.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["uniform", "kadis"])
def test_steady_state_steps_read_only_the_logged_scalars(four_devices, assignment):
  """Phase "stepK" spans step K's shard_batch, train step, logging and the stream's
  synthesis of step K+1. The loop logs at steps 1 and 5 (the last)."""
  r, reads = four_devices[assignment], four_devices["reads"]
  for s in (2, 3, 4):
    assert reads.get(f"{assignment}:step{s}", []) == [], s
  # Step 5 reads the scalar metrics the train step returned for steps 2..5 (the
  # logged values), one read each, and nothing else.
  n = r["metric_leaves"][-1]
  assert n >= 2 and set(r["metric_leaves"]) == {n}
  assert {"loss", "mse"} <= set(r["logged_keys"])
  assert reads[f"{assignment}:step5"] == [[]] * (4 * n)
  # Control: the counter sees reads (the first step's log reads its scalars).
  assert reads[f"{assignment}:step1"].count([]) >= n
  assert r["shards"] == [4, 4, 4]
  assert r["n_images"] == [20 if assignment == "kadis" else 8] * 3


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["uniform", "kadis"])
def test_four_devices_equal_the_one_device_stream(four_devices, assignment):
  r = four_devices[assignment]
  assert r["diff"]["image"] == 0.0
  # The labels' float32 reductions may round differently with the per-device batch
  # (2 or 5 images here vs 8 or 20 on one device).
  assert r["diff"]["target"] < 1e-6
  assert any(len(set(t)) > 1 for t in r["ref_types"])   # mixed batches


@pytest.mark.slow
def test_sharded_program_flops_are_a_quarter(four_devices):
  f = four_devices["flops"]
  assert abs(f["four"] - f["one"] / 4) < 0.1 * f["one"] / 4, f
