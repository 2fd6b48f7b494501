"""Stages 2 and 3 on TID2013: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated content splits. Paper target: 0.858 SROCC.

  python -m deepfl_jax.main --config=configs/mlsp_tid2013.py --workdir=runs/tid2013 \
    --config.stage2.manual_dir=/data/<unpacked TID2013> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_tid2013", "tid2013", num_repeats=10)
