"""Checks an experiment config before any work, so a bad value stops the run with one
line naming the key, the value and what is allowed (and "did you mean" for names).

`problems(config)` lists every problem; `validate(config)` raises `ConfigError` with
the first. Sections are checked only where the stages that read them run
(`config.stages`): `train` / `optim` / `stage1` for Stage 1, `model` for Stages 1 and
2, `stage2`, `stage3`. `unknown_override(config, "train.num_stepz")` names a
command-line override of a key the config does not have. The allowed names come from
the modules that use them (optim, reporting), so they live in one place; the defaults
of every key are in `config_defaults`.
"""
from __future__ import annotations

import difflib
import numbers
from typing import Any, Callable, Iterable

from deepfl_jax.stages import STAGES


class ConfigError(ValueError):
  """A config value that cannot work; the message is one line."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
  """' (did you mean X?)' for the closest of `known`, or ''."""
  close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
  return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_override(config, dotted: str) -> str | None:
  """The one-line error for an override `--config.<dotted>=...` whose key the config
  lacks (None when every part of the path exists)."""
  node, walked = config, "config"
  for part in dotted.split("."):
    keys = list(node.keys()) if hasattr(node, "keys") else []
    if part not in keys:
      if not keys:
        return f"--config.{dotted}: {walked} is a value, not a section"
      return (f"--config.{dotted}: {walked} has no key {part!r}"
              f"{did_you_mean(part, keys)}; its keys: {', '.join(sorted(keys))}")
    node, walked = node[part], f"{walked}.{part}"
  return None


# --------------------------------------------------------------------------- checks


def _is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _int_at_least(lo: int) -> Callable[[Any], str | None]:
  return lambda v: None if _is_int(v) and v >= lo else f"an integer >= {lo}"


def _num_in(lo: float, hi: float, lo_open=False, hi_open=False):
  def check(v):
    ok = (_is_num(v) and (v > lo if lo_open else v >= lo) and
          (v < hi if hi_open else v <= hi))
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    return None if ok else f"a number in {left}{lo:g}, {hi:g}{right}"
  return check


def _positive(v):
  return None if _is_num(v) and v > 0 else "a number > 0"


def _one_of(*allowed):
  def check(v):
    if v in allowed:
      return None
    return f"one of {', '.join(map(repr, allowed))}{did_you_mean(v, allowed)}"
  return check


def _ints_at_least(lo: int, length: int | None = None):
  def check(v):
    ok = (isinstance(v, (tuple, list)) and all(_is_int(x) and x >= lo for x in v) and
          (length is None or len(v) == length))
    n = f"{length} " if length else ""
    return None if ok else f"a tuple of {n}integers >= {lo}"
  return check


def _rates(v):
  ok = isinstance(v, (tuple, list)) and all(_is_num(x) and 0 <= x < 1 for x in v)
  return None if ok else "a tuple of dropout rates in [0, 1)"


def _type_ids(n: int):
  def check(v):
    ok = isinstance(v, (tuple, list)) and all(_is_int(t) and 1 <= t <= n for t in v)
    return None if ok else f"a tuple of distortion type ids 1..{n} (() = all)"
  return check


def _rules() -> dict[str, dict[str, Callable[[Any], str | None]]]:
  """{section: {key: check}}; a check returns None or what the value must be."""
  # Lazy: these import JAX, and main.py imports this module before the flags (and the
  # config file) are parsed, while native logs may still be silenced.
  # pylint: disable=import-outside-toplevel
  from deepfl_jax.data import histeq
  from deepfl_jax.distortions.registry import NUM_TYPES
  from deepfl_jax.models.inception_resnet_v2 import MIN_SIZE
  from deepfl_jax.pretext import TASKS
  from deepfl_jax.train import optim, reporting
  return {
      "train": {
          "batch_size": _int_at_least(1), "num_steps": _int_at_least(1),
          "seed": _int_at_least(0), "log_every": _int_at_least(1),
          "checkpoint_every": _int_at_least(1), "keep_checkpoints": _int_at_least(1),
          "compute_dtype": _one_of("float32", "bfloat16")},
      "optim": {
          "name": _one_of(*optim.OPTIMIZERS), "learning_rate": _positive,
          "b1": _num_in(0, 1, hi_open=True), "b2": _num_in(0, 1, hi_open=True),
          "eps": _positive, "weight_decay": _num_in(0, float("inf")),
          "clip_norm": _num_in(0, float("inf")), "warmup_steps": _int_at_least(0),
          "schedule": _one_of(*optim.SCHEDULES),
          "end_factor": _num_in(0, 1), "decay": _num_in(0, 1, lo_open=True),
          "boundaries": _ints_at_least(1)},
      "model": {
          "width": _positive, "blocks": _ints_at_least(1, 3),
          "input_scale": _one_of("unit", "keras"), "head_hidden": _ints_at_least(1),
          "head_dropout": _rates, "bn_momentum": _num_in(0, 1, hi_open=True)},
      "stage1": {
          "source": _one_of("embedded", "pristine", "kadis700k", "kadis700k_generated"),
          "assignment": _one_of("uniform", "kadis"), "group_size": _int_at_least(1),
          "calibration_steps": _int_at_least(1),
          "equalizer": _one_of(*histeq.EQUALIZER_SOURCES),
          "crop_size": _ints_at_least(MIN_SIZE, 2),
          "image_size": _ints_at_least(MIN_SIZE, 2),
          "types": _type_ids(NUM_TYPES),
          # the pretext tasks (deepfl_jax/pretext)
          "task": _one_of(*TASKS), "margin": _num_in(0, float("inf")),
          "rank_head_hidden": _ints_at_least(1), "rank_head_dropout": _rates,
          "mlsp_blocks": lambda v: (None if isinstance(v, (tuple, list)) and all(
              _is_int(b) and 0 <= b < 43 for b in v) else "a tuple of MLSP block "
              "indices 0..42 (() = all 43)"),
          "features": _one_of("final", "mlsp"), "temperature": _positive,
          "proj_hidden": _int_at_least(1), "proj_dim": _int_at_least(1),
          "view_size": _ints_at_least(MIN_SIZE, 2),
          "iou_range": lambda v: (None if isinstance(v, (tuple, list)) and len(v) == 2
                                  and all(_is_num(x) for x in v) and
                                  0 <= v[0] <= v[1] <= 1
                                  else "(lo, hi), 0 <= lo <= hi <= 1"),
          "degradations_per_content": _int_at_least(1), "max_ops": _int_at_least(1),
          "skip_prob": _num_in(0, 1, hi_open=True), "second_order_prob": _num_in(0, 1),
          "ops": _type_ids(NUM_TYPES)},
      "generate": {
          "seed": _int_at_least(0), "shard_size": _int_at_least(1),
          "types": _type_ids(NUM_TYPES)},
      "stage2": {
          "kind": _one_of("narrow", "wide"), "batch_size": _int_at_least(1),
          "compute_dtype": _one_of("float32", "bfloat16"),
          "random_seed": _int_at_least(0)},
      "stage3": {
          "epochs": _int_at_least(1), "batch_size": _int_at_least(1),
          "learning_rate": _positive, "adam_eps": _positive,
          "hidden": _ints_at_least(1), "dropout": _rates,
          "num_repeats": _int_at_least(1), "seed0": _int_at_least(0),
          "split_kind": _one_of("", "content", "official", "random"),
          "plcc_fit": _one_of(*reporting.FIT_FORMULAS),
          "export": _one_of("final", "repeat"),
          "export_repeat": _int_at_least(0), "ridge_alphas": lambda v: (
              None if isinstance(v, (tuple, list)) and v and all(_is_num(a) and a > 0
                                                                 for a in v)
              else "a non-empty tuple of numbers > 0")},
  }


# Which stages read a section.
_ALL = ("stage1", "compare_pretext")  # compare_pretext runs Stages 1-3 and finetune
_READ_BY = {"train": _ALL, "optim": _ALL, "stage1": _ALL,
            "model": _ALL + ("stage2", "finetune"),
            "stage2": ("stage2", "finetune", "compare_pretext"),
            "stage3": ("stage3", "finetune", "compare_pretext"),
            "generate": ("generate",)}


def _fmt(v) -> str:
  return repr(tuple(v)) if isinstance(v, list) else repr(v)


def _cross_checks(config, run: set[str]) -> Iterable[str]:
  """Relations between keys (each message names both)."""
  if "stage1" in run and "train" in config and "optim" in config:
    t, o = config.train, config.optim
    steps, warm = t.get("num_steps"), o.get("warmup_steps")
    if (o.get("schedule") == "cosine" and _is_int(steps) and _is_int(warm) and
        warm >= steps):
      yield (f"config.optim.warmup_steps={warm}: must be < config.train.num_steps="
             f"{steps} for the cosine schedule")
  if "stage1" in run and "stage1" in config:
    c = config.stage1
    if c.get("equalizer") == "published" and not c.get("score_file"):
      yield ("config.stage1.equalizer='published': needs config.stage1.score_file "
             "(kadis700k_friqa.csv)")
    aug = c.get("augment")
    if (aug is not None and _is_num(aug.get("colour", 0)) and aug.get("colour", 0) > 0
        and not aug.get("enabled", False)):
      yield (f"config.stage1.augment.colour={aug['colour']}: needs "
             "config.stage1.augment.enabled=True (colour is part of the crop transform)")
  for name, (hid, drop) in (("model", ("head_hidden", "head_dropout")),
                            ("stage3", ("hidden", "dropout"))):
    sec = config.get(name) if name in config else None
    if (sec is not None and name in {n for n in _READ_BY if run & set(_READ_BY[n])} and
        hid in sec and drop in sec and isinstance(sec[hid], (tuple, list)) and
        isinstance(sec[drop], (tuple, list)) and len(sec[hid]) != len(sec[drop])):
      yield (f"config.{name}.{drop}={_fmt(sec[drop])}: needs one rate per layer of "
             f"config.{name}.{hid}={_fmt(sec[hid])}")
  if "stage3" in run and "stage3" in config:
    c = config.stage3
    fr = c.get("fractions")
    if fr is not None and not (isinstance(fr, (tuple, list)) and len(fr) == 3 and
                               all(_is_num(f) and f > 0 for f in fr) and
                               abs(sum(fr) - 1) < 1e-6):
      yield (f"config.stage3.fractions={_fmt(fr)}: must be 3 positive fractions "
             "(train, validation, test) summing to 1")
    n, r = c.get("num_repeats"), c.get("export_repeat")
    if _is_int(n) and _is_int(r) and n >= 1 and not 0 <= r < n:
      yield (f"config.stage3.export_repeat={r}: must be a repeat index 0..{n - 1} "
             f"(config.stage3.num_repeats={n})")


def stage_names(config) -> tuple[str, ...]:
  """`config.stages` as a tuple of names (`--config.stages=stage2,stage3` arrives as
  one string, alone or in a tuple)."""
  stages = config.get("stages", ()) if "stages" in config else ()
  if isinstance(stages, str):
    stages = (stages,)
  if not isinstance(stages, (tuple, list)):
    return ()
  return tuple(p.strip() for s in stages for p in str(s).split(",") if p.strip())


def problems(config) -> list[str]:
  """Every problem of `config`, one line each (empty when it can run)."""
  out = []
  stages = stage_names(config)
  if not stages:
    return [f"config.stages={config.get('stages')!r}: must name stages to run, from "
            f"{', '.join(STAGES)}"]
  for s in stages:
    if s not in STAGES:
      out.append(f"config.stages: unknown stage {s!r}{did_you_mean(s, STAGES)}; "
                 f"known: {', '.join(STAGES)}")
  run = set(stages)
  for section, rules in _rules().items():
    if section not in config or not run & set(_READ_BY[section]):
      continue
    sec = config[section]
    for key, rule in rules.items():
      if key not in sec:
        continue
      allowed = rule(sec[key])
      if allowed:
        out.append(f"config.{section}.{key}={_fmt(sec[key])}: must be {allowed}")
  out.extend(_cross_checks(config, run))
  return out


def validate(config) -> None:
  """Raises `ConfigError` (one line: key, value, what is allowed) on the first problem
  of `config`; see `problems` for all of them."""
  found = problems(config)
  if found:
    more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
    raise ConfigError(found[0] + more)
