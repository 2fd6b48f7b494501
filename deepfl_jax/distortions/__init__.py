"""The 25 KADID-10k / KADIS-700k distortion types as pure JAX functions.

- `DISTORTIONS`: registry keyed by type id 1..25 (name, group, levels, fn, ...).
- `distort(image, dist_type, level, key)`: the original driver (mapmm, type, mapmm),
  jit-compiled, for one image or a batch with per-image types and levels.
- `distort_param(image, dist_type, param, key)`: the same with continuous parameters.
- Samplers: `kadis_assignment`, `read_kadis_csv`, `kadis_type`, `sample_type_level`.
"""
from deepfl_jax.distortions.driver import distort, distort_param, distort_runs
from deepfl_jax.distortions.registry import (BY_NAME, DISTORTIONS, LEVEL_TABLE,
                                             Distortion)
from deepfl_jax.distortions.sampling import (KadisJob, kadis_assignment, kadis_type,
                                             read_kadis_csv, sample_type_level)

__all__ = ["DISTORTIONS", "BY_NAME", "LEVEL_TABLE", "Distortion", "distort",
           "distort_param", "distort_runs", "KadisJob", "kadis_assignment", "kadis_type",
           "read_kadis_csv", "sample_type_level"]
