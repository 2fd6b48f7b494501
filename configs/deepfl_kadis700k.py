"""The paper's Stage 1: InceptionResNetV2 multi-task on the 11 FR proxies of KADIS-700k.

KADIS-700k ships pristine images, the type assignment and the FR-score file, not the
700,000 distorted images; we regenerate each reference's five levels of its assigned
type on the device with the distortion engine ("kadis" assignment, incl. the type-7/8
quirk), label them on the device with the 11 metrics, and histogram-equalise each
metric with the CDF of OUR scores of that stream (`stage1.equalizer = "own"`), so every
target is uniform on [0, 1] as the paper's were. The published score file's CDFs
(`equalizer="published"`, `score_file=...`) apply only to the metrics that reproduce
MATLAB's scale; SC-QI, ADD-GSIM (reconstructions) and SFF (our W) always use our own.
Check the labels against the published ones first: configs/kadis700k_compare_labels.py.
Paper details not given in its text (learning rate, batch, steps) are config values.

  python -m deepfl_jax.main --config=configs/deepfl_kadis700k.py --workdir=runs/kadis \
    --config.stage1.data_dir=/data/tfds \
    --config.model.init_from=/weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
"""
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("deepfl_kadis700k")
  config.stages = ("stage1",)
  config.stage1.source = "kadis700k"
  config.stage1.assignment = "kadis"
  config.stage1.crop_size = (384, 512)    # KADIS images are 512x384
  config.stage1.equalizer = "own"         # our scores' CDFs (see the docstring)
  config.train.batch_size = 40            # 8 references x 5 levels per step
  config.train.num_steps = 100_000
  config.train.checkpoint_every = 2000
  config.optim.learning_rate = 1e-4
  config.optim.warmup_steps = 1000
  return config
