"""Scripts around the library, each runnable as `python -m deepfl_jax.tools.<name>`.

- `fr_metrics_demo`: the 11 FR proxies on embedded photographs under noise and blur
  (the "fr_metrics" stage of `configs/metrics_demo.py`).
- `learn_sff_w`: learns SFF's feature detector W (`metrics/data/sff_w.npy`) by the
  procedure of SFF's TrainW.m from scikit-image photographs.
- `make_kadid_dmos_table`: KADID-10k's human DMOS averaged per (type, level)
  (`data/kadid_type_level_dmos.csv`, the labels of the embedded mini-KADID).

The one-off generators were run once; their outputs ship with the package.
"""
