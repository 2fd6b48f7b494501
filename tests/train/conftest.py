"""Fixtures of the Stage 2 tests: the width-1/8 backbone's variables and a tiny
database of two image sizes (tests/train/_small_backbone.py)."""
import pytest

from tests.train import _small_backbone


@pytest.fixture(scope="module")
def small_variables():
  """Random variables (seed 3) of `_small_backbone.SMALL`, as NumPy arrays."""
  return _small_backbone.init_small_variables()


@pytest.fixture(scope="module")
def tiny_source():
  """Seven tiny images of two sizes with names, contents and scores (an IqaSource)."""
  return _small_backbone.make_tiny_source()
