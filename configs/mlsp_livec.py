"""Stages 2 and 3 on LIVE in the Wild: MLSP features with given weights, then the DeepFL-IQA
regressor over repeated random splits. Paper target: 0.734 SROCC / 0.769 PLCC (unconfirmed).

  python -m deepfl_jax.main --config=configs/mlsp_livec.py --workdir=runs/livec \
    --config.stage2.manual_dir=/data/<unpacked LIVE in the Wild> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

`stage2.weights` may also be "stage1" (a Stage 1 run in the same work directory) or an
orbax folder; see deepfl_jax/train/stage2.py and the builder's docstring for the layout.
"""
from configs import common


def get_config():
  return common.mlsp_eval_config("mlsp_livec", "live_in_the_wild", num_repeats=10)
