"""Multi-level ranking ("Learning from Rankings with Multi-level Features for NR-IQA")
on KADIS-700k pristine images: RankIQA's ranking loss with the scalar head on the MLSP
vector of InceptionResNetV2 (all 43 blocks: global average pools, 16,928-d).

No public code or numbers of this paper are known to us, so every
setting below is either RankIQA's ("RankIQA") or our choice ("ours"), stated.

  python -m deepfl_jax.main --config=configs/rank_mlsp_kadis700k.py --workdir=runs/rmlsp \
    --config.stage1.data_dir=/data/tfds \
    --config.model.init_from=/weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
"""
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("rank_mlsp_kadis700k")
  config.stages = ("stage1",)
  config.stage1.task = "ranking_mlsp"
  config.stage1.source = "kadis700k"     # ours
  config.stage1.crop_size = (224, 224)   # RankIQA
  config.stage1.margin = 10.0            # RankIQA
  config.stage1.include_pristine = True  # RankIQA
  config.stage1.mlsp_blocks = ()         # ours: all 43 blocks (a subset: indices 0..42)
  config.stage1.rank_head_hidden = (2048, 1024, 256)  # ours: DeepFL-IQA's MLSP stack,
  config.stage1.rank_head_dropout = (0.25, 0.25, 0.5)  # the head fine-tuned on MOS
  config.train.batch_size = 48           # ours: 8 groups x 6
  config.train.num_steps = 50_000        # RankIQA's ranking iterations
  config.train.checkpoint_every = 2000   # ours
  config.optim.learning_rate = 1e-4      # ours (Adam)
  config.optim.warmup_steps = 1000       # ours
  return config
