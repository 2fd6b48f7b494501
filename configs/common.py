"""Config sections shared by the experiment configs (each experiment file overrides)."""
import ml_collections

from deepfl_jax import pretext
from deepfl_jax.data import mini_kadid, pristine
from deepfl_jax.train import stage2, stage3
from deepfl_jax.train.config import default_optim_config, default_train_config


def model_config() -> ml_collections.ConfigDict:
  """`config.model`: the InceptionResNetV2 backbone as Keras builds it."""
  c = ml_collections.ConfigDict()
  c.width = 1.0                 # channel multiplier (1.0 = Keras' InceptionResNetV2)
  c.blocks = (10, 20, 10)       # block35 / block17 / block8 repeats
  c.input_scale = "unit"        # x/255 as the DeepFL-IQA release; "keras": [-1, 1]
  c.head_hidden = (2048, 1024, 256)   # Stage 1 multi-task head on MLSP (paper's stack)
  c.head_dropout = (0.25, 0.25, 0.5)
  # Keras .h5 (ImageNet notop) or orbax folder, or "scratch" (random weights). Unset,
  # Stage 1 refuses to start: the paper starts from ImageNet weights.
  c.init_from = ""
  return c


def stage1_config() -> ml_collections.ConfigDict:
  """`config.stage1`: online synthesis settings (see train/stage1.run_stage1)."""
  c = ml_collections.ConfigDict()
  c.task = "fr_proxies"         # | "ranking" | "ranking_mlsp" | "contrastive" (pretext.md)
  c.source = "embedded"         # "embedded" (mini-KADID's photographs) | "pristine"
                                # (grey photos + dead leaves) | "kadis700k"
  c.photos = mini_kadid.PHOTOS  # the 8 photographs shipped with scikit-image
  c.image_size = (384, 512)     # embedded photographs are fitted to this size
  c.data_dir = ""               # TFDS data_dir of the built kadis700k (source kadis700k)
  c.crop_size = (384, 512)
  c.pristine = ml_collections.ConfigDict({   # source "pristine" (data/pristine.py)
      "sources": pristine.STAGE1_SOURCES, "num_dead_leaves": 32, "seed": 0})
  c.augment = ml_collections.ConfigDict({    # random scale and flip of the crops
      "enabled": False, "min_scale": 0.25, "max_scale": 1.0, "flip": True})
  c.assignment = "uniform"      # "uniform" random (type, level) | "kadis" (one type x 5)
  c.types = ()                  # restrict the distortion types (() = all 25)
  c.group_size = 4
  c.calibration_steps = 20      # batches for the histogram-equalisation CDFs
  c.equalizer = "own"           # CDFs fitted on our own scores of the stream's data;
                                # "published": score_file's CDFs for MATLAB-parity metrics
  c.score_file = ""             # kadis700k_friqa.csv (equalizer "published")
  c.published_metrics = ()      # () = all of metrics.MATLAB_PARITY (never the proxies/SFF)
  c.val_fraction = 0.02         # pristine contents held out for validation (0 = none)
  c.val_seed = 0                # which contents, and their fixed distortions
  c.val_batches = 16            # validation set: this many batches, synthesised once
  c.num_workers = 0             # Grain worker processes decoding pristine images
  c.update(pretext.default_config())  # keys of the ranking / contrastive tasks
  return c


def base_config(name: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = name
  config.stages = ("stage1", "stage2", "stage3")
  config.model = model_config()
  config.train = default_train_config()
  config.optim = default_optim_config()
  config.stage1 = stage1_config()
  config.stage2 = stage2.default_config()
  for key in ("width", "blocks", "input_scale"):  # Stage 2 takes them from config.model
    del config.stage2[key]
  config.stage3 = stage3.default_config()
  return config


def mlsp_eval_config(name: str, dataset: str, num_repeats: int
                     ) -> ml_collections.ConfigDict:
  """Stages 2 and 3 on a database built by its TFDS builder (`stage2.dataset`)."""
  config = base_config(name)
  config.stages = ("stage2", "stage3")
  config.stage2.dataset = dataset
  config.stage2.compare_random = False
  config.stage3.num_repeats = num_repeats
  return config
