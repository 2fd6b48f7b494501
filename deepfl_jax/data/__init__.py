"""Datasets: TFDS builders of the IQA databases, splits and the host input pipeline.

    from deepfl_jax import data
    builder = data.builders.prepare("kadid10k", manual_dir, data_dir)
    source = data.load_source(builder)                 # or ("kadid10k", data_dir)
    parts = data.splits.make_split(source.index, source.metadata["split_kind"], seed=0)
    for batch in data.batches(source, parts["train"], batch_size=32, seed=0):
      ...

Online synthesis (Stage 1) and the embedded mini-KADID build on `pipeline.batches`
(its `transform` hook) and on `builders.Kadis700k` (pristine images + assignment).
"""
from deepfl_jax.data import builders, pipeline, splits
from deepfl_jax.data.pipeline import (IqaSource, batch_indices, batches,
                                      in_memory_source, load_source, reading_speed)

__all__ = ["builders", "pipeline", "splits", "IqaSource", "batch_indices", "batches",
           "in_memory_source", "load_source", "reading_speed"]
