"""KADIS-700k generation (deepfl_jax/data/generation.py) on a fake KADIS layout: four
176x176 pristine images (the FR metrics' minimum), types 1, 11 and 22, shards of two
images: killed and resumed on one device vs uninterrupted on 2 processes x 2 devices."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from deepfl_jax.data import builders, generation, histeq, mini_kadid, pipeline, synthesis
from deepfl_jax.distortions import distort
from deepfl_jax.metrics import fr_scores
from deepfl_jax.metrics.fused import stack
from deepfl_jax.train import parallel, stage1

pytestmark = pytest.mark.slow   # subprocesses and three compilations of the labels

SEED, SHARD, TYPES = 3, 2, (1, 11, 22)
ROWS = [("a.png", 22), ("b.png", 1), ("c.png", 11), ("d.png", 22)]
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fake_kadis(root: pathlib.Path) -> pathlib.Path:
  top = root / "manual" / "kadis700k"
  (top / "ref_imgs").mkdir(parents=True)
  photos = ("astronaut", "coffee", "chelsea")
  for i, (name, _) in enumerate(ROWS):
    img = mini_kadid.pristine_image(photos[i % 3], (176 + 8 * i, 200))[8 * i:8 * i + 176]
    Image.fromarray(np.ascontiguousarray(img[:, :176])).save(top / "ref_imgs" / name)
  (top / "kadis700k_ref_imgs.csv").write_text(
      "ref_im,dist_type_1,dist_type_2\n" + "".join(f"{n},{t},\n" for n, t in ROWS))
  builders.prepare("kadis700k", root / "manual", root / "tfds_in")
  return root / "tfds_in"


def _records(out) -> list[dict]:
  s = pipeline.load_source("kadis700k_generated", out, with_references=False)
  return [s.records[i] for i in range(len(s))]


def _run_until_killed(tfds_in, out, env) -> dict:
  """Runs _generate_killed_worker.py until it hangs inside its second shard's write,
  kills it with SIGKILL, and returns what the kill left on disk."""
  proc = subprocess.Popen([sys.executable, str(ROOT / "tests/data/_generate_killed_worker.py"),
                           str(tfds_in), str(out)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  try:
    line = proc.stdout.readline()  # blocks until the worker reaches the second write
    assert line.startswith("KILL_ME"), (line, proc.stderr.read()[-3000:])
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
  finally:
    if proc.poll() is None:
      proc.kill()
    proc.stdout.close()
    proc.stderr.close()
  ds = pathlib.Path(generation._builder(out).data_dir)
  return {"shards": sorted(p.name for p in ds.glob("kadis700k_generated-*")),
          "partial": sorted(p.name for p in ds.glob(".*.tmp-*"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("gen")
  tfds_in = _fake_kadis(root)
  source = pipeline.load_source("kadis700k", tfds_in, with_references=False)
  kw = dict(seed=SEED, shard_size=SHARD, types=TYPES, progress=False,
            devices=jax.devices()[:1])
  env = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "JAX_"))}
  env.update(JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
  # One process, one device, killed (SIGKILL) while it writes its second shard, then
  # rerun here.
  killed = _run_until_killed(tfds_in, root / "resumed", env)
  ds = pathlib.Path(generation._builder(root / "resumed").data_dir)
  first = sorted(ds.glob("kadis700k_generated-*"))
  stamp = [(p, p.stat().st_mtime_ns) for p in first]
  rest = generation.generate(source, root / "resumed", **kw)
  # Uninterrupted: two processes with two devices each (one after the other, sharing
  # the compilation cache: the same program on each).
  env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_COMPILATION_CACHE_DIR=str(root / "jax_cache"))
  multi = []
  for p in (0, 1):
    proc = subprocess.run([sys.executable, str(ROOT / "tests/data/_generate_worker.py"),
                           str(tfds_in), str(root / "multi"), str(p), "2"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    multi.append(json.loads(proc.stdout.strip().splitlines()[-1]))
  return dict(root=root, source=source, killed=killed, rest=rest, stamp=stamp,
              multi=multi)


def test_two_processes_write_all_records(runs):
  # Process 0 writes shard 0, process 1 shard 1 and, being last, the dataset info.
  assert [m["written"] for m in runs["multi"]] == [1, 1]
  assert [m["finalized"] for m in runs["multi"]] == [False, True]
  recs = _records(runs["root"] / "multi")
  assert len(recs) == 5 * len(ROWS)
  assert [int(r["level"]) for r in recs] == [1, 2, 3, 4, 5] * len(ROWS)
  assert [int(r["dist_type"]) for r in recs[::5]] == [t for _, t in ROWS]
  assert recs[0]["name"] == b"a_noisequantize_01.png" and recs[0]["content"] == b"a.png"
  assert all(r["image"].shape == (176, 176, 3) and r["image"].dtype == np.uint8
             for r in recs)
  scores = generation.load_scores(runs["root"] / "multi")
  np.testing.assert_array_equal(scores, np.stack([r["fr_scores"] for r in recs]))


def test_sigkilled_and_rerun_one_device_equals_two_processes_two_devices(runs):
  # The kill left the first shard and the second's temporary file, no second shard.
  assert runs["killed"]["shards"] == [
      "kadis700k_generated-full.array_record-00000-of-00002"], runs["killed"]
  assert len(runs["killed"]["partial"]) == 1, runs["killed"]
  assert runs["rest"] == {"written": 1, "skipped": 1, "num_shards": 2,
                          "finalized": True}
  for p, t in runs["stamp"]:   # the finished shard was not rewritten
    assert p.stat().st_mtime_ns == t
  ds = pathlib.Path(generation._builder(runs["root"] / "resumed").data_dir)
  assert not list(ds.glob(".*.tmp-*"))  # the killed write's leftover was removed
  a, b = _records(runs["root"] / "resumed"), _records(runs["root"] / "multi")
  assert len(a) == len(b) == 5 * len(ROWS)
  for x, y in zip(a, b):
    assert x["name"] == y["name"]
    np.testing.assert_array_equal(x["image"], y["image"], err_msg=str(x["name"]))
    # float32 reduction order of the metrics varies with the CPU device layout.
    np.testing.assert_allclose(x["fr_scores"], y["fr_scores"], rtol=1e-6, atol=1e-7)


def test_record_equals_distort_and_fr_scores(runs):
  recs = _records(runs["root"] / "resumed")
  src = runs["source"]
  for i in (0, 1, 2):      # type 22 (host Otsu), 1 and 11 (stochastic)
    ref = src.records[i]["image"]
    keys = generation.record_keys(SEED, [i])
    for lv in (1, 5):
      r = recs[5 * i + lv - 1]
      want = distort(ref, int(r["dist_type"]), lv, keys[lv - 1])
      want = np.round(np.asarray(want) * 255).astype(np.uint8)
      d = np.abs(want.astype(int) - r["image"].astype(int))
      assert d.max() <= 1 and np.mean(d > 0) < 1e-3, (r["name"], d.max(), np.mean(d > 0))
      direct = np.asarray(stack(fr_scores(ref[None], r["image"][None])))[0]
      # The same metrics, compiled into another program: float32 rounding only.
      np.testing.assert_allclose(r["fr_scores"], direct, rtol=1e-5, atol=1e-6)


def test_other_settings_in_the_same_directory_are_refused(runs):
  with pytest.raises(ValueError, match="other settings"):
    generation.generate(runs["source"], runs["root"] / "resumed", seed=SEED + 1,
                        shard_size=SHARD, types=TYPES, progress=False)


def test_stage1_trains_from_the_generated_records(runs):
  out = runs["root"] / "multi"
  src = pipeline.load_source("kadis700k_generated", out, with_references=False)
  eq = histeq.fit(generation.load_scores(out))
  syn = synthesis.SynthesisConfig(crop_size=(176, 176), batch_size=4, group_size=1)
  mesh = parallel.make_mesh(jax.devices()[:1])
  got = next(iter(stage1.stored_batches(src, syn, seed=0, equalizer=eq, mesh=mesh)(0)))
  with pipeline.batches(src, batch_size=4, seed=0) as it:
    host = next(it)
  np.testing.assert_allclose(np.asarray(got["image"]),
                             host["image"].astype(np.float32) / 255, atol=1e-7, rtol=0)
  want = np.asarray(histeq.equalize(eq, np.asarray(host["fr_scores"], np.float32)))
  np.testing.assert_allclose(np.asarray(got["target"]), want, atol=1e-6)
  assert got["target"].shape == (4, 11) and np.all((want >= 0) & (want <= 1))
