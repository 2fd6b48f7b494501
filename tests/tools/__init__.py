"""Tests of deepfl_jax/tools: the metrics demo and the generators of shipped files."""
