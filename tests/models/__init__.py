"""Tests of deepfl_jax/models: the backbone, MLSP features, heads and Keras import."""
