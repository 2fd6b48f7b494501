"""Tests of deepfl_jax/metrics: MATLAB goldens, NumPy-port cross-checks, fused call,
correlations."""
