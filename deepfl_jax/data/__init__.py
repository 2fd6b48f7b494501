"""Datasets: TFDS builders of the IQA databases, splits and the host input pipeline.

    from deepfl_jax import data
    builder = data.builders.prepare("kadid10k", manual_dir, data_dir)
    source = data.load_source(builder)                 # or ("kadid10k", data_dir)
    parts = data.splits.make_split(source.index, source.metadata["split_kind"], seed=0)
    for batch in data.batches(source, parts["train"], batch_size=32, seed=0):
      ...

In-memory training sets take their order from `data.order.step_indices` (the same
contract: step s's batch depends on (seed, s) only).

Online synthesis (Stage 1) and the embedded mini-KADID build on `pipeline.batches`
(its `transform` hook) and on `builders.Kadis700k` (pristine images + assignment).

Importing the package does not import JAX (the host pipeline and Grain's workers do not
need it). Modules: `builders/` (TFDS builders), `pipeline` (Grain input), `splits`,
`order` (imports JAX), `histeq` (per-metric histogram equalisation of the FR labels),
`synthesis` (Stage 1's sharded distort-and-label program), `generation` (KADIS-700k
generation), `pristine` and `mini_kadid` (the embedded images and database);
`kadid_type_level_dmos.csv` is mini-KADID's label table.
"""
from deepfl_jax.data import builders, pipeline, splits
from deepfl_jax.data.pipeline import (IqaSource, batch_indices, batches,
                                      in_memory_source, load_source, reading_speed)

__all__ = ["builders", "pipeline", "splits", "IqaSource", "batch_indices", "batches",
           "in_memory_source", "load_source", "reading_speed"]
