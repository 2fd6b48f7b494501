"""InceptionResNetV2 (Flax), MLSP feature extraction, heads and Keras weight import.

`inception_resnet_v2` (the backbone, layer for layer as Keras builds it, with MLSP
taps), `host_init` (random variables drawn with NumPy, no compile), `mlsp` (narrow and
wide MLSP features as one jitted function), `heads` (multi-task and MOS heads of
DeepFL-IQA), `keras_import` (Keras .h5 weights and orbax checkpoints of variables).
"""
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
