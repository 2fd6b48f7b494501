"""Stages 2 and 3 on LIVE: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated content splits. Paper target: 0.972 SROCC (unconfirmed) / 0.978 PLCC.

  python -m deepfl_jax.main --config=configs/mlsp_live.py --workdir=runs/live \
    --config.stage2.manual_dir=/data/<unpacked LIVE> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_live", "live_iqa", num_repeats=10)
