"""Label agreement before Stage 1: our 11 FR scores against the published KADIS-700k
score file, per metric and per distortion type (SROCC, PLCC, mean absolute difference),
on whatever subset of the pristine (and, optionally, distorted) images you have.
Writes workdir/compare_labels/agreement.json and agreement.md (see
deepfl_jax/label_agreement.py for what is compared and its caveats).

  python -m deepfl_jax.main --config=configs/kadis700k_compare_labels.py \
    --workdir=runs/kadis_labels \
    --config.compare_labels.score_file=/data/kadis700k/kadis700k_friqa.csv \
    --config.compare_labels.ref_dir=/data/kadis700k/ref_imgs \
    --config.compare_labels.max_rows=2000
"""
import ml_collections

from deepfl_jax import config_defaults


def get_config():
  config = ml_collections.ConfigDict()
  config.name = "kadis700k_compare_labels"
  config.stages = ("compare_labels",)
  # score_file and ref_dir are required (see the command above).
  config.compare_labels = config_defaults.compare_labels_config()
  return config
