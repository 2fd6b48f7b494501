"""Tests of deepfl_jax/pretext: ranking and contrastive losses, degradations, runs."""
