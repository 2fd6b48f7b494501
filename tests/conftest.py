"""Shared test fixtures: the golden images in ../shared (skipped when absent)."""
from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "data" / "golden"


def _need(path: pathlib.Path) -> pathlib.Path:
  if not path.exists():
    pytest.skip(f"{path} is absent: the golden files live in ../shared beside the "
                "checkout (developers and CI have it, users do not)")
  return path


def load_uint8(path: pathlib.Path) -> np.ndarray:
  """(H, W, 3) or (H, W, 1) uint8, as MATLAB's imread + double would read it."""
  img = np.asarray(Image.open(path))
  return img[..., None] if img.ndim == 2 else img[..., :3]


@pytest.fixture(scope="session")
def golden():
  """dict of uint8 arrays: goldhill, goldhill_jpeg (H, W, 1); I01, i01_01_5 (H, W, 3)."""
  piq = _need(GOLDEN / "piq")
  return {
      "goldhill": load_uint8(piq / "goldhill.gif"),
      "goldhill_jpeg": load_uint8(piq / "goldhill_jpeg.gif"),
      "I01": load_uint8(piq / "I01.BMP"),
      "i01_01_5": load_uint8(piq / "i01_01_5.bmp"),
  }


@pytest.fixture(scope="session")
def tid_pairs():
  """list of (name, reference uint8, distorted uint8) from golden/tid2013_pairs."""
  root = _need(GOLDEN / "tid2013_pairs")
  return [(p.name, load_uint8(p), load_uint8(root / "dist" / p.name))
          for p in sorted((root / "ref").glob("*.bmp"))]


@pytest.fixture
def x64():
  """Runs the test body in float64 (MATLAB parity is judged in double precision)."""
  with jax.enable_x64(True):
    yield


# The fast tier (`-m "not slow"`) leaves out the tests marked `slow` where they are
# defined: the demo, Keras parity, Octave references, multi-process runs, and every test
# that took 15 s or more (setup + call, summed over its parameters) in the fast tier
# measured on 2026-12-07 (2 workers on 2 shared cores): they compile full metric,
# synthesis or training programs, or start subprocesses. Mark a new test the same way
# when it takes that long.
