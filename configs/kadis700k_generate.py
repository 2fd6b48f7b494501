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
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("kadis700k_generate")
  config.stages = ("generate",)
  config.generate = config_defaults.generate_config()  # data_dir: required
  return config
