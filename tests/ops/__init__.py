"""Tests of deepfl_jax/ops: the MATLAB primitives, once, before the metrics."""
