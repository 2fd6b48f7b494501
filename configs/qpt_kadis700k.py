"""Quality-aware contrastive pretraining, QPT (Zhao, Yuan, Sun, Li, Wen, CVPR 2023), on
the KADIS-700k pristine images with DeepFL-IQA's InceptionResNetV2 (the paper: ResNet-50
pretrained on ImageNet-1k).

Each step: 384x512 pristine crops ("contents"), each degraded twice by the sampler of
`deepfl_jax.pretext.degradations` (engine ops with continuous parameters, shuffled,
skipped, repeated, plus a Real-ESRGAN-style second-order chain); two 160x160 views of
every degraded image with IoU in [0.1, 0.3] are positives; the other degradation of the
same content (hard) and every other view of the global batch (gathered across devices)
are negatives; InfoNCE on L2-normalised projections. The projection head is dropped:
Stage 2 reads the backbone only. Sources: "paper" (QPT), "reimpl" (a published
re-implementation of QPT: two 160x160 views with IoU in [0.1, 0.3]), "ours" (our
choice; QPT is silent or its setting is tied to ResNet-50 / MoCo).

  python -m deepfl_jax.main --config=configs/qpt_kadis700k.py --workdir=runs/qpt \
    --config.stage1.data_dir=/data/tfds \
    --config.model.init_from=/weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
"""
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("qpt_kadis700k")
  config.stages = ("stage1",)
  config.stage1.task = "contrastive"
  config.stage1.source = "kadis700k"       # ours
  config.stage1.crop_size = (384, 512)     # ours: whole KADIS images as contents
  config.stage1.view_size = (160, 160)     # reimpl
  config.stage1.iou_range = (0.1, 0.3)     # reimpl
  config.stage1.degradations_per_content = 2  # ours: one hard negative per view
  config.stage1.ops = ()                   # ours: degradations.DEFAULT_OPS (19 types)
  config.stage1.max_ops = 3                # ours
  config.stage1.skip_prob = 0.3            # ours
  config.stage1.second_order_prob = 0.5    # ours (paper: BSRGAN/Real-ESRGAN models)
  config.stage1.features = "final"         # paper: pooled last features (ResNet-50)
  config.stage1.proj_hidden = 2048         # ours: MoCo v2 / SimCLR projection MLP
  config.stage1.proj_dim = 128             # ours: same
  config.stage1.temperature = 0.2          # ours: unknown in the paper (MoCo v2's 0.2)
  config.stage1.flip = True                # paper: crops and flips
  config.train.batch_size = 256            # ours: 64 contents x 2 degradations x 2 views
  config.train.num_steps = 100_000         # ours
  config.train.checkpoint_every = 2000     # ours
  config.optim.learning_rate = 3e-4        # ours (Adam; MoCo: SGD 0.03)
  config.optim.warmup_steps = 2000         # ours
  return config
