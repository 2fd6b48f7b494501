"""Stages 2 and 3 on CSIQ: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated content splits. Paper target: 0.930 SROCC.

  python -m deepfl_jax.main --config=configs/mlsp_csiq.py --workdir=runs/csiq \
    --config.stage2.manual_dir=/data/<unpacked CSIQ> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_csiq", "csiq", num_repeats=10)
