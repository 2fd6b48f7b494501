"""Tests of deepfl_jax/distortions: the 25 types against Octave references and their
properties."""
