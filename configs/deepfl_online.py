"""Stage 1 by online synthesis: uniformly random (type, level) over all 25 types,
distorted and labelled on the device, from any pristine image set (default: the
embedded photographs; `--config.stage1.source=kadis700k` for KADIS' 140k pristine
images). No distorted image is ever written to disk."""
from deepfl_jax import config_defaults


def get_config():
  config = config_defaults.base_config("deepfl_online")
  config.stages = ("stage1",)
  config.stage1.assignment = "uniform"
  config.stage1.crop_size = (384, 512)
  config.train.batch_size = 32
  config.train.num_steps = 100_000
  config.train.checkpoint_every = 2000
  config.optim.learning_rate = 1e-4
  config.optim.warmup_steps = 1000
  return config
