"""Stages 2 and 3 on KonIQ-10k: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated official splits. Paper target: 0.877 SROCC / 0.887 PLCC (unconfirmed).

  python -m deepfl_jax.main --config=configs/mlsp_koniq10k.py --workdir=runs/koniq10k \
    --config.stage2.manual_dir=/data/<unpacked KonIQ-10k> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_koniq10k", "koniq10k", num_repeats=1)
