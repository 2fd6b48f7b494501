"""Datasets: TFDS builders of the IQA databases, splits and the host input pipeline.

    from deepfl_jax import data
    builder = data.builders.prepare("kadid10k", manual_dir, data_dir)
    source = data.load_source(builder)                 # or ("kadid10k", data_dir)
    parts = data.splits.make_split(source.index, source.metadata["split_kind"], seed=0)
    for batch in data.batches(source, parts["train"], batch_size=32, seed=0):
      ...

In-memory training sets take their order from `order.step_indices` (the same
contract: step s's batch depends on (seed, s) only).

Online synthesis (Stage 1) and the embedded mini-KADID build on `pipeline.batches`
(its `transform` hook) and on `builders.Kadis700k` (pristine images + assignment).

Modules: `builders/` (TFDS builders), `pipeline` (Grain input), `splits`, `order`,
`histeq` (per-metric histogram equalisation of the FR labels), `synthesis` (Stage 1's
sharded distort-and-label program), `generation` (KADIS-700k generation), `pristine`
and `mini_kadid` (the embedded images and database); `kadid_type_level_dmos.csv` is
mini-KADID's label table.
"""
from deepfl_jax.data import builders, order, pipeline, splits
from deepfl_jax.data.order import array_batches, step_indices
from deepfl_jax.data.pipeline import (IqaSource, batch_indices, batches,
                                      in_memory_source, load_source, reading_speed)

__all__ = ["builders", "order", "pipeline", "splits", "array_batches", "step_indices",
           "IqaSource", "batch_indices", "batches",
           "in_memory_source", "load_source", "reading_speed"]
