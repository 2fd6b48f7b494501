"""RankIQA's ranking pretext task (Liu, van de Weijer, Bagdanov, ICCV 2017) on the
KADIS-700k pristine images, with DeepFL-IQA's InceptionResNetV2 instead of VGG-16 (so
the three pretext tasks compare on one backbone).

Each step: groups of one 224x224 pristine crop and its KADID levels 1..5 of one type
(uniform over the 25 types), one forward pass, efficient Siamese hinge loss (f higher =
better), sum over ordered pairs / batch size. Source of each setting in its comment:
"paper" = stated by RankIQA, "ours" = our choice where the paper is silent or its
setting does not carry over (VGG-16 in Caffe with SGD).

  python -m deepfl_jax.main --config=configs/rankiqa_kadis700k.py --workdir=runs/rankiqa \
    --config.stage1.data_dir=/data/tfds \
    --config.model.init_from=/weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
"""
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("rankiqa_kadis700k")
  config.stages = ("stage1",)
  config.stage1.task = "ranking"
  config.stage1.source = "kadis700k"     # ours (RankIQA: Waterloo + Places2 images)
  config.stage1.crop_size = (224, 224)   # paper: 224x224 sub-images
  config.stage1.types = ()               # ours: all 25 KADID types (paper: 4 LIVE types)
  config.stage1.margin = 10.0            # paper (original prototxt)
  config.stage1.include_pristine = True  # paper: pristine + increasing levels per group
  config.stage1.rank_head_hidden = ()    # ours: a linear scalar head on pooled features
  config.stage1.rank_head_dropout = ()   # (paper: VGG-16's fc6/fc7 then fc8 -> 1)
  config.train.batch_size = 48           # ours: 8 groups x 6 (paper: e.g. 9 x 5 = 45)
  config.train.num_steps = 50_000        # paper: 50K ranking iterations
  config.train.checkpoint_every = 2000   # ours
  config.optim.learning_rate = 1e-4      # paper's ranking rate (with SGD); ours: Adam
  config.optim.warmup_steps = 1000       # ours
  return config
