"""Experiment configs, one file per experiment (`get_config()` -> ConfigDict); the
defaults of every section live in `deepfl_jax.config_defaults`. See configs/README.md."""
