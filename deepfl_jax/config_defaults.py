"""Every default of an experiment config, one function per section, and `base_config`
that assembles them; experiment files (configs/*.py) start from it and override.

This module imports only ml_collections (and the standard library): a config file
loads, and is checked, before JAX starts. So the few defaults that name data of the
package (mini-KADID's photographs, Stage 1's pristine sources, the ../shared folder)
are written out here; tests/test_config_defaults.py checks them against the data
modules.

A value two sections share is one value: `config.stage2.width`, `.blocks` and
`.input_scale` are `FieldReference`s to `config.model`'s (Stage 2 reads the backbone
Stage 1 trained; setting either key sets both), and `config.finetune.num_repeats` to
`config.stage3.num_repeats`.

Stage code reads its section with `section(config, name)`: the config's keys over the
section's defaults, so a config that leaves a key out (or a whole section) still runs.
"""
from __future__ import annotations

import pathlib
from typing import Callable

import ml_collections

# The defaults that name the package's data (see the module docstring).
MINI_KADID_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                     "hubble_deep_field", "retina", "motorcycle")  # data.mini_kadid.PHOTOS
STAGE1_SOURCES = ("grey_photos", "dead_leaves")                    # data.pristine
SHARED_DIR = str(pathlib.Path(__file__).resolve().parents[1].parent / "shared")


def train_config() -> ml_collections.ConfigDict:
  """`config.train`: loop, data-parallel and checkpoint settings (`train.loop`)."""
  c = ml_collections.ConfigDict()
  c.batch_size = 32            # GLOBAL batch, split over all devices of all processes
  c.num_steps = 10_000
  c.seed = 0                   # init, data order and dropout
  c.compute_dtype = "float32"  # or "bfloat16" (parameters and optimiser stay float32)
  c.log_every = 50             # metrics -> metrics.jsonl, TensorBoard, progress line
  # Several processes agree on a stop signal (SIGTERM) only at log, evaluation and
  # checkpoint steps (no host round trip in other steps): keep log_every x step time
  # inside the cluster's preemption grace period.
  c.checkpoint_every = 1000    # orbax checkpoint every N steps (and always at exit)
  c.keep_checkpoints = 3
  c.eval_every = 1000          # validation (when the stage has one) every N steps
  c.progress = True            # progress bar with rate and ETA on stderr
  return c


def optim_config() -> ml_collections.ConfigDict:
  """`config.optim`: see `train.optim`."""
  c = ml_collections.ConfigDict()
  c.name = "adam"
  c.learning_rate = 1e-4
  c.b1 = 0.9
  c.b2 = 0.999
  c.eps = 1e-7
  c.weight_decay = 0.0
  c.clip_norm = 0.0
  c.schedule = "cosine"
  c.warmup_steps = 500
  c.end_factor = 0.0
  c.boundaries = ()
  c.decay = 0.1
  return c


def model_config() -> ml_collections.ConfigDict:
  """`config.model`: the InceptionResNetV2 backbone as Keras builds it."""
  c = ml_collections.ConfigDict()
  c.width = 1.0                 # channel multiplier (1.0 = Keras' InceptionResNetV2)
  c.blocks = (10, 20, 10)       # block35 / block17 / block8 repeats
  c.input_scale = "unit"        # x/255 as the DeepFL-IQA release; "keras": [-1, 1]
  c.head_hidden = (2048, 1024, 256)   # Stage 1 multi-task head on MLSP (paper's stack)
  c.head_dropout = (0.25, 0.25, 0.5)
  c.bn_momentum = 0.99          # batch-norm running averages' decay in training (Keras)
  # Keras .h5 (ImageNet notop) or orbax folder, or "scratch" (random weights). Unset,
  # Stage 1 refuses to start: the paper starts from ImageNet weights.
  c.init_from = ""
  return c


def pretext_config() -> ml_collections.ConfigDict:
  """The `config.stage1` keys of the pretext tasks (`deepfl_jax.pretext`; unused by
  "fr_proxies")."""
  c = ml_collections.ConfigDict()
  # ranking / ranking_mlsp (RankIQA, Liu, van de Weijer, Bagdanov, ICCV 2017)
  c.margin = 10.0               # hinge margin (RankIQA's prototxt)
  c.include_pristine = True     # each group: pristine + levels 1..5 (6 images)
  c.rank_head_hidden = ()       # () = a linear scalar head on the features
  c.rank_head_dropout = ()
  c.mlsp_blocks = ()            # MLSP blocks read by the head (() = all 43)
  # contrastive (QPT, Zhao et al., CVPR 2023)
  c.features = "final"          # "final" pooled conv_7b | "mlsp"
  c.proj_hidden = 2048          # projection MLP (dropped after pretraining)
  c.proj_dim = 128
  c.temperature = 0.1
  c.view_size = (160, 160)      # positive crops (a published QPT re-implementation)
  c.iou_range = (0.1, 0.3)      # their overlap (same)
  c.degradations_per_content = 2  # >= 2: hard negatives (same content, other degradation)
  c.max_ops = 3                 # first-order slots (each skipped / repeated at random)
  c.skip_prob = 0.3
  c.second_order_prob = 0.5     # Real-ESRGAN-style two-round chain after the ops
  c.ops = ()                    # engine type ids of the first-order pool (() = default)
  c.flip = True                 # random horizontal flip of each view (dm-pix)
  return c


def stage1_config() -> ml_collections.ConfigDict:
  """`config.stage1`: online synthesis settings (see `train.stage1.run_stage1`)."""
  c = ml_collections.ConfigDict()
  c.task = "fr_proxies"         # | "ranking" | "ranking_mlsp" | "contrastive" (pretext)
  c.source = "embedded"         # "embedded" (mini-KADID's photographs) | "pristine"
                                # (grey photos + dead leaves) | "kadis700k"
  c.photos = MINI_KADID_PHOTOS  # the 8 photographs shipped with scikit-image
  c.image_size = (384, 512)     # embedded photographs are fitted to this size
  c.data_dir = ""               # TFDS data_dir of the built kadis700k (source kadis700k)
  c.crop_size = (384, 512)
  c.pristine = ml_collections.ConfigDict({   # source "pristine" (data/pristine.py)
      "sources": STAGE1_SOURCES, "num_dead_leaves": 32, "seed": 0})
  c.augment = ml_collections.ConfigDict({    # random scale, flip (and colour) of the crops
      "enabled": False, "min_scale": 0.25, "max_scale": 1.0, "flip": True,
      "colour": 0.0})                          # pristine.colour_jitter strength (0 = off)
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
  c.update(pretext_config())    # keys of the ranking / contrastive tasks
  return c


def stage2_config(model: ml_collections.ConfigDict | None = None
                  ) -> ml_collections.ConfigDict:
  """`config.stage2` (see `train.stage2`); width, blocks and input_scale are
  references to `model`'s (default: a fresh `model_config()`)."""
  model = model_config() if model is None else model
  c = ml_collections.ConfigDict()
  c.dataset = "mini_kadid"      # or a builder of data.builders.BUILDERS ("kadid10k", ...)
  c.data_dir = ""               # "" = <workdir>/data
  c.manual_dir = ""             # where the database was unpacked ("" = already built)
  c.builder_config = ""         # TFDS config of the builder ("" = its default)
  c.mini_kadid = ml_collections.ConfigDict()  # keyword arguments of mini_kadid.load
  c.weights = "stage1"          # "stage1" | "random" | a Keras .h5 or orbax path
  c.checkpoint_dir = "stage1/checkpoints"
  c.stage1_checkpoint = "best"  # | "latest"
  c.random_seed = 0
  c.compare_random = True       # also the random-weight backbone's features
  c.kind = "narrow"             # | "wide"
  for key in ("width", "blocks", "input_scale"):  # the backbone Stage 1 trained
    c[key] = model.get_ref(key)
  c.compute_dtype = "float32"   # | "bfloat16"
  c.batch_size = 16             # images per forward pass
  c.progress = True
  return c


def stage3_config() -> ml_collections.ConfigDict:
  """`config.stage3` (see `train.stage3`): the paper's regressor and protocol."""
  c = ml_collections.ConfigDict()
  c.epochs = 30
  c.batch_size = 128
  c.learning_rate = 1e-3
  c.adam_eps = 1e-7             # Keras' epsilon
  c.hidden = (2048, 1024, 256)
  c.dropout = (0.25, 0.25, 0.5)
  c.num_repeats = 5
  c.seed0 = 0
  c.split_kind = ""             # "" = the database's own (content / official / random)
  c.fractions = (0.6, 0.2, 0.2)
  c.plcc_fit = "logistic5"      # | "logistic4"
  c.feature_sets = ()           # () = every set Stage 2 wrote, primary first
  c.ridge = False               # the ridge probe beside the regressor
  c.ridge_alphas = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
  c.export = "final"            # | "repeat" (the scoring model of `deepfl-iqa score`)
  c.export_repeat = 0
  c.progress = True
  return c


def finetune_config(stage3: ml_collections.ConfigDict | None = None
                    ) -> ml_collections.ConfigDict:
  """`config.finetune` (see `train.finetune`); num_repeats is a reference to
  `stage3`'s when given (else 0: as config.stage3.num_repeats)."""
  c = ml_collections.ConfigDict()
  c.epochs = 10               # ours (RankIQA fine-tunes for a fixed iteration count)
  c.batch_size = 16           # ours
  c.learning_rate = 1e-4      # ours: Adam, one rate for backbone and head
  c.num_repeats = 0 if stage3 is None else stage3.get_ref("num_repeats")
  c.compare_random = True     # also fine-tune from random backbone weights
  c.progress = True
  return c


def transfer_config() -> ml_collections.ConfigDict:
  """`config.transfer` (see `train.transfer`)."""
  c = ml_collections.ConfigDict()
  c.sklearn = True            # scikit-learn's sample photographs, when installed
  c.shared_dir = SHARED_DIR   # TID2013 references of ../shared ("" = none)
  c.folders = ()              # more folders of one's own photographs
  c.size = ()                 # () = mini-KADID's size of config.stage2
  c.compare = True            # every Stage 2 feature set, not only the primary
  c.batch_size = 16
  return c


def generate_config() -> ml_collections.ConfigDict:
  """`config.generate`: KADIS-700k generation (`data.generation.run_generate`)."""
  c = ml_collections.ConfigDict()
  c.data_dir = ""          # TFDS data_dir where the kadis700k builder was prepared
  c.out_dir = ""           # "" = <workdir>/generate/tfds
  c.seed = 0               # image (record i, level l): key split(fold_in(seed, i), 5)[l-1]
  c.shard_size = 1000      # pristine images per shard (5,000 records)
  c.types = ()             # types compiled in (() = all 25)
  c.host_otsu = True       # type 22: MATLAB's exact float64 Otsu search on the host
  return c


def compare_labels_config() -> ml_collections.ConfigDict:
  """`config.compare_labels`: our FR labels vs the published KADIS-700k scores
  (`label_agreement.run`)."""
  c = ml_collections.ConfigDict()
  c.score_file = ""          # kadis700k_friqa.csv (required)
  c.ref_dir = ""             # folder of the pristine images named in ref_im (required)
  c.dist_dir = ""            # optional folder of distorted images named in dist_im;
                             # rows without one are regenerated by the engine
  c.max_rows = 0             # compare the first N usable rows (0 = all)
  c.batch_size = 10          # pairs per fused metric call (same image size)
  c.metrics = ()             # () = all 11; a subset scores faster
  c.color_mode = "rgb2gray_uint8"   # MATLAB's rgb2gray of uint8 images (the default)
  return c


SECTIONS: dict[str, Callable[[], ml_collections.ConfigDict]] = {
    "train": train_config, "optim": optim_config, "model": model_config,
    "stage1": stage1_config, "stage2": stage2_config, "stage3": stage3_config,
    "finetune": finetune_config, "transfer": transfer_config,
    "generate": generate_config, "compare_labels": compare_labels_config}


def base_config(name: str) -> ml_collections.ConfigDict:
  """Every section with its defaults, shared values linked; Stages 1-3 to run."""
  config = ml_collections.ConfigDict()
  config.name = name
  config.stages = ("stage1", "stage2", "stage3")
  config.model = model_config()
  config.train = train_config()
  config.optim = optim_config()
  config.stage1 = stage1_config()
  config.stage2 = stage2_config(config.model)
  config.stage3 = stage3_config()
  config.finetune = finetune_config(config.stage3)
  config.transfer = transfer_config()
  return config


def section(config, name: str) -> ml_collections.ConfigDict:
  """`config.<name>` over the defaults of that section: missing keys take the default
  (Stage 2's width, blocks and input_scale: `config.model`'s); given values replace
  defaults whatever their type (e.g. None for "")."""
  if name not in SECTIONS:
    raise KeyError(f"no config section {name!r}; sections: {', '.join(SECTIONS)}")
  # Stage 2's backbone keys default to the config's model (the network Stage 1
  # trained), also where a section was built without base_config's references.
  defaults = (stage2_config(section(config, "model")) if name == "stage2"
              else SECTIONS[name]())
  out = defaults.to_dict()
  given = config.get(name, None) if config is not None else None
  if given is not None:
    out.update(given.to_dict() if isinstance(given, ml_collections.ConfigDict)
               else dict(given))
  return ml_collections.ConfigDict(out)
