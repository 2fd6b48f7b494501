"""Tests of deepfl_jax/train: loop, signals, checkpoints, data parallelism and the
stages (workers for multi-process runs start with an underscore)."""
