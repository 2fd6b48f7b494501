"""Tests; the folders mirror the package layout (tests/<area> tests deepfl_jax/<area>)."""
