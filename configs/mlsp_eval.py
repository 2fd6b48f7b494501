"""Stages 2 and 3 on a human-rated IQA database: MLSP features with given weights, then
the DeepFL-IQA regressor over repeated splits (the paper's evaluation). The argument
after the colon picks the database:

  python -m deepfl_jax.main --config=configs/mlsp_eval.py:kadid10k --workdir=runs/kadid10k \
    --config.stage2.manual_dir=/data/<unpacked KADID-10k> \
    --config.stage2.weights=/weights/quality-mlsp-mtl-mse-loss.hdf5

Arguments (`DATABASES`: the TFDS builder of `deepfl_jax.data.builders` and the number
of splits, of the database's own kind): kadid10k, koniq10k, tid2013, live, csiq, livec;
configs/README.md lists them with the paper's targets. `config.name` is
`mlsp_<argument>`. `stage2.weights` may also be "stage1" (a Stage 1 run in the same
work directory) or an orbax folder; see deepfl_jax/train/weights.py for the weights,
deepfl_jax/train/feature_cache.py for the work directory's layout and the builder's
docstring for the database's.
"""
from deepfl_jax import config_defaults

# argument: (TFDS builder of deepfl_jax.data.builders, number of splits)
DATABASES = {
    "kadid10k": ("kadid10k", 10),
    "koniq10k": ("koniq10k", 1),
    "tid2013": ("tid2013", 10),
    "live": ("live_iqa", 10),
    "csiq": ("csiq", 10),
    "livec": ("live_in_the_wild", 10),
}


def get_config(arg: str | None = None):
  if arg not in DATABASES:
    raise ValueError(
        f"configs/mlsp_eval.py needs a database after a colon, one of "
        f"{', '.join(DATABASES)} (e.g. --config=configs/mlsp_eval.py:kadid10k); "
        f"got {arg!r}")
  dataset, num_repeats = DATABASES[arg]
  config = config_defaults.base_config(f"mlsp_{arg}")
  config.stages = ("stage2", "stage3")
  config.stage2.dataset = dataset
  config.stage2.compare_random = False
  config.stage3.num_repeats = num_repeats
  return config
