"""TFDS builders of the IQA databases (manual download, array_record storage).

`BUILDERS` maps the TFDS name to the builder class; `prepare` builds one from a manual
directory. Importing this module registers the builders with TFDS, so
`tfds.data_source("kadid10k", data_dir=...)` works afterwards.
"""
from __future__ import annotations

import pathlib

import tensorflow_datasets as tfds

from deepfl_jax.data.builders._base import (BadImageError, IqaBuilder, IqaConfig,
                                            ManualDirError, FULL, REFERENCES)
from deepfl_jax.data.builders.csiq import Csiq
from deepfl_jax.data.builders.kadid10k import Kadid10k
from deepfl_jax.data.builders.kadis700k import Kadis700k
# Written by the generate stage (data/generation.py), not by `prepare`.
from deepfl_jax.data.builders.kadis700k_generated import Kadis700kGenerated
from deepfl_jax.data.builders.koniq10k import Koniq10k
from deepfl_jax.data.builders.live_in_the_wild import LiveInTheWild
from deepfl_jax.data.builders.live_iqa import LiveIqa
from deepfl_jax.data.builders.tid2013 import Tid2013

BUILDERS: dict[str, type[IqaBuilder]] = {
    cls.name: cls for cls in (Kadid10k, Kadis700k, Koniq10k, Tid2013, LiveIqa, Csiq,
                              LiveInTheWild)}


def prepare(name: str | type[IqaBuilder], manual_dir, data_dir, *,
            config: str | None = None, on_bad_image: str | None = None,
            resolution: str | None = None) -> IqaBuilder:
  """Builds database `name` (a key of BUILDERS or a builder class) from `manual_dir`
  into `data_dir` as array_record; returns the prepared builder (a no-op when built).

  `on_bad_image` ("raise" | "skip") and `resolution` (KonIQ) pick the config when
  `config` is not given.
  """
  cls = BUILDERS[name] if isinstance(name, str) else name
  if config is None:
    res = resolution or next((c.resolution for c in cls.BUILDER_CONFIGS), "")
    mode = on_bad_image or "raise"
    config = next(c.name for c in cls.BUILDER_CONFIGS
                  if c.on_bad_image == mode and c.resolution == res)
  builder = cls(data_dir=str(data_dir), config=config, file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(pathlib.Path(manual_dir))))
  return builder


__all__ = ["BUILDERS", "prepare", "IqaBuilder", "IqaConfig", "ManualDirError",
           "BadImageError", "FULL", "REFERENCES", "Kadid10k", "Kadis700k", "Koniq10k",
           "Tid2013", "LiveIqa", "Csiq", "LiveInTheWild", "Kadis700kGenerated"]
