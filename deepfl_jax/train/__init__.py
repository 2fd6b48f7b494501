"""Training infrastructure: state, optimisers, data-parallel step, checkpoints, loop,
progress and metric logs; the three DeepFL-IQA stages (Stage 2's parts: weights,
features, feature_cache; Stage 3's: regressor, probes, reporting), fine-tuning and
transfer."""
from deepfl_jax.train.checkpoint import Checkpointer
from deepfl_jax.train.config import compute_dtype
from deepfl_jax.data.order import array_batches, step_indices
from deepfl_jax.train.loop import BestCheckpoint, NonFiniteError, Preempted, fit, train
from deepfl_jax.train.optim import from_config, make_optimizer, make_schedule
from deepfl_jax.train.progress import MetricWriter, Progress
from deepfl_jax.train.parallel import (DATA_AXIS, check_batch_size, make_mesh,
                                       make_train_step, replicate, shard_batch, to_host)
from deepfl_jax.train.state import TrainState, param_count

__all__ = [
    "Checkpointer", "compute_dtype",
    "BestCheckpoint", "MetricWriter", "NonFiniteError", "Preempted", "Progress",
    "array_batches", "fit", "step_indices",
    "train", "from_config", "make_optimizer", "make_schedule", "DATA_AXIS",
    "check_batch_size", "make_mesh", "make_train_step", "replicate", "shard_batch",
    "to_host", "TrainState", "param_count",
]
