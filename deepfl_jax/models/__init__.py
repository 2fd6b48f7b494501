"""InceptionResNetV2 (Flax), MLSP feature extraction, heads and Keras weight import."""
from deepfl_jax.models.heads import MLSPHead, MOSRegressor, MultiTaskHead, NUM_PROXIES
from deepfl_jax.models.host_init import host_init
from deepfl_jax.models.inception_resnet_v2 import InceptionResNetV2, tap_widths
from deepfl_jax.models.keras_import import (load_keras_weights, load_variables,
                                            restore_checkpoint, save_checkpoint)
from deepfl_jax.models.mlsp import (MLSP_WIDTH, mlsp_extractor, mlsp_features,
                                    mlsp_narrow, mlsp_wide)

__all__ = [
    "InceptionResNetV2", "tap_widths", "load_keras_weights", "load_variables",
    "restore_checkpoint", "save_checkpoint", "MLSP_WIDTH", "mlsp_extractor",
    "mlsp_features", "mlsp_narrow", "mlsp_wide", "MLSPHead", "MOSRegressor",
    "MultiTaskHead", "NUM_PROXIES", "host_init",
]
