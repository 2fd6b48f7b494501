"""KADIS-700k generation (the paper's flow: generate once, train from the stored images).

From the kadis700k builder's pristine images and the published assignment (each
image's type at all 5 levels), writes the 700,000 distorted images (lossless 8-bit
PNG) and their 11 raw FR scores as the TFDS dataset `kadis700k_generated`
(array_record), sharded over all devices and processes, resumable per shard (a rerun
skips finished shards). Then train Stage 1 from it:

  python -m deepfl_jax.main --config=configs/kadis700k_generate.py --workdir=runs/gen \
    --config.generate.data_dir=/data/tfds
  python -m deepfl_jax.main --config=configs/deepfl_kadis700k.py --workdir=runs/kadis \
    --config.stage1.source=kadis700k_generated \
    --config.stage1.data_dir=runs/gen/generate/tfds
"""
import ml_collections

from configs import common


def get_config():
  config = common.base_config("kadis700k_generate")
  config.stages = ("generate",)
  g = ml_collections.ConfigDict()
  g.data_dir = ""          # TFDS data_dir where the kadis700k builder was prepared
  g.out_dir = ""           # "" = <workdir>/generate/tfds
  g.seed = 0               # image (record i, level l): key split(fold_in(seed, i), 5)[l-1]
  g.shard_size = 1000      # pristine images per shard (5,000 records)
  g.types = ()             # types compiled in (() = all 25)
  g.host_otsu = True       # type 22: MATLAB's exact float64 Otsu search on the host
  config.generate = g
  return config
