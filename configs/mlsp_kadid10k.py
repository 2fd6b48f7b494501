"""Stages 2 and 3 on KADID-10k: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated content splits. Paper target: 0.936 SROCC (paper), 0.930 mean of
the released model over 5 content splits.

  python -m deepfl_jax.main --config=configs/mlsp_kadid10k.py --workdir=runs/kadid10k \
    --config.stage2.manual_dir=/data/<unpacked KADID-10k> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_kadid10k", "kadid10k", num_repeats=10)
