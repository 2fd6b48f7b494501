"""Fixtures for the distortion tests: the Octave reference outputs of the original
KADID generator (../shared/data/kadid_octave_ref, skipped when absent), and test
images."""
from __future__ import annotations

import json

import numpy as np
import png
import pytest
import skimage.data

from tests.conftest import SHARED, _need, load_uint8

KADID_REF = SHARED / "data" / "kadid_octave_ref"


def read_png16(path) -> np.ndarray:
  """(H, W, 3) float64 in [0, 1] from a 16-bit (or 8-bit) PNG, read with pypng (Pillow
  truncates 16-bit RGB to 8 bits)."""
  w, h, rows, info = png.Reader(filename=str(path)).asDirect()
  a = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, info["planes"])
  return a.astype(np.float64) / (2 ** info["bitdepth"] - 1)


class KadidRef:
  """Access to the reference folder: inputs, outputs, metadata and recorded draws."""

  def __init__(self, root):
    self.root = root

  def input(self, kind: str) -> np.ndarray:
    if kind == "crop":
      return read_png16(self.root / "crop_input.png")
    return load_uint8(_need(SHARED / "data" / "golden" / "piq" / "I01.BMP")) / 255.0

  def output(self, kind: str, dist_type: int, level: int) -> np.ndarray:
    return read_png16(self.root / kind / f"t{dist_type:02d}_l{level}.png")

  def has(self, kind: str, dist_type: int) -> bool:
    return (self.root / kind / f"t{dist_type:02d}_l1.png").exists()

  def meta(self, kind: str, dist_type: int) -> list[dict]:
    return json.loads((self.root / "meta" / f"{kind}_t{dist_type:02d}.json")
                      .read_text())["levels"]

  def draws(self, name: str) -> np.ndarray:
    return np.load(self.root / "draws" / f"{name}.npy")


@pytest.fixture(scope="session")
def kadid_ref():
  return KadidRef(_need(KADID_REF))


@pytest.fixture(scope="module")
def images():
  """A 384x512 crop (KADID's size) and an odd-sized crop (partial blocks, odd chroma)."""
  return {"astronaut_384x512": skimage.data.astronaut()[50:434, :512],
          "coffee_157x233": skimage.data.coffee()[3:160, 5:238]}

