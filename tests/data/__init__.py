"""Tests of deepfl_jax/data: builders on fake layouts, pipeline, splits, order,
synthesis, generation, histogram equalisation and the embedded images."""
