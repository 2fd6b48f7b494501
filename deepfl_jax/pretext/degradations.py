"""QPT's degradation space (Zhao et al., CVPR 2023) from the engine's own operations.

A degradation is a list of steps (op, parameter) applied in order to one image:

1. First order: `max_ops` slots, each an op drawn WITH replacement from the pool
   (repetition), each slot skipped with probability `skip_prob`, the kept slots in a
   random order (shuffle). Ops are engine types (`distort_param`) with a CONTINUOUS
   parameter drawn uniformly between the type's KADID level-1 and level-5 values.
2. With probability `second_order_prob`, a practical two-round chain (Real-ESRGAN's
   second-order model, Wang et al. 2021): in each round, each of blur (engine type 1,
   sigma), resize down and back up (bilinear, scale 0.5..1 on a 0.1 grid), noise
   (engine Gaussian type 11 or Poisson) and JPEG (engine type 10, quality) is kept
   with probability 1/2.

Every degradation has at least one step, and the degradations of one content within a
batch are pairwise distinct (the hard negatives must differ in degradation).

`sample` is a pure function of its PRNG key (host NumPy generator seeded from the
key's bits), `apply` runs each step as one jit-compiled engine call on one image (one
compiled program per op and image size, whatever the parameter).

Our choices where QPT is silent (stated in `count_degradations`): the pool
`DEFAULT_OPS`, parameter ranges (the KADID level-1..5 span; chain ranges in `CHAIN`),
and a count that discretises each continuous parameter into `param_bins` values.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.distortions import distort_param
from deepfl_jax.distortions.registry import DISTORTIONS, LEVEL_TABLE

# Engine types with a continuous parameter that change perceived quality and compile
# quickly: blurs, colour, JPEG, noises, brightness, jitter, pixelate, sharpen, contrast.
# (Left out: integer counts (6, 20, 22, 23), and the slow JPEG 2000 (9) and denoise (15).)
DEFAULT_OPS = (1, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 21, 24, 25)
RESIZE, POISSON = 101, 102  # ops of the chain that the engine lacks
INTEGER_PARAM = (10,)       # JPEG quality
# Real-ESRGAN's chain, ranges of its first round (our reading of the paper's settings).
CHAIN = {1: (0.2, 3.0), RESIZE: (0.5, 1.0), 11: (0.0005, 0.01), POISSON: (30.0, 1000.0),
         10: (30.0, 95.0)}

Step = tuple[int, float]
Plan = tuple[Step, ...]


@dataclasses.dataclass(frozen=True)
class DegradationSpace:
  ops: tuple[int, ...] = DEFAULT_OPS
  max_ops: int = 3
  skip_prob: float = 0.3
  second_order_prob: float = 0.5

  def __post_init__(self):
    bad = [t for t in self.ops if t not in DISTORTIONS]
    if not self.ops or bad:
      raise ValueError(f"config.stage1.ops: {bad or 'empty'}; give engine type ids 1..25")
    if self.max_ops < 1 or not 0 <= self.skip_prob < 1 or not 0 <= self.second_order_prob <= 1:
      raise ValueError("config.stage1: max_ops >= 1, 0 <= skip_prob < 1 and "
                       "0 <= second_order_prob <= 1 are required")


def param_range(op: int) -> tuple[float, float]:
  """(low, high) of an op's continuous parameter."""
  if op in (RESIZE, POISSON):
    return CHAIN[op]
  lv = LEVEL_TABLE[op - 1]
  return float(min(lv[0], lv[-1])), float(max(lv[0], lv[-1]))


def _param(rng: np.random.Generator, op: int, lo_hi=None) -> float:
  lo, hi = param_range(op) if lo_hi is None else lo_hi
  p = float(rng.uniform(lo, hi))
  if op == RESIZE:  # scales on a 0.1 grid: each compiles its own static shapes
    return float(np.round(p, 1))
  return float(round(p)) if op in INTEGER_PARAM else p


def host_rng(key) -> np.random.Generator:
  """A NumPy generator that is a pure function of a JAX key."""
  bits = np.asarray(jax.random.randint(key, (4,), 0, np.iinfo(np.int32).max))
  return np.random.default_rng([int(b) for b in bits])


def _sample_one(rng: np.random.Generator, space: DegradationSpace) -> Plan:
  while True:
    slots = [int(rng.choice(space.ops)) for _ in range(space.max_ops)]  # repetition
    kept = [op for op in slots if rng.random() >= space.skip_prob]       # skipping
    rng.shuffle(kept)                                                   # order
    steps = [(op, _param(rng, op)) for op in kept]
    if rng.random() < space.second_order_prob:
      for _ in range(2):
        if rng.random() < 0.5:
          steps.append((1, _param(rng, 1, CHAIN[1])))
        if rng.random() < 0.5:
          steps.append((RESIZE, _param(rng, RESIZE)))
        if rng.random() < 0.5:
          op = 11 if rng.random() < 0.5 else POISSON
          steps.append((op, _param(rng, op, CHAIN[op])))
        if rng.random() < 0.5:
          steps.append((10, _param(rng, 10, CHAIN[10])))
    if steps:
      return tuple(steps)


def sample(key, num_contents: int, per_content: int,
           space: DegradationSpace = DegradationSpace()) -> list[list[Plan]]:
  """[content][k] plans: `per_content` pairwise distinct degradations per content, a
  pure function of `key`."""
  rng = host_rng(key)
  out = []
  for _ in range(num_contents):
    plans: list[Plan] = []
    while len(plans) < per_content:
      p = _sample_one(rng, space)
      if p not in plans:
        plans.append(p)
    out.append(plans)
  return out


def count_degradations(space: DegradationSpace = DegradationSpace(),
                       param_bins: int = 10) -> dict[str, int]:
  """Distinct degradations the sampler can produce, each continuous parameter
  discretised into `param_bins` values (QPT counts about 2e7 for its space):
  first order sum_{l=1..max_ops} (T q)^l ordered sequences (T ops, q bins; shuffling
  and repetition make every ordered sequence reachable), the chain
  ((1+q)(1+q)(1+2q)(1+q))^2 - 1 non-empty two-round chains; total = first x (1 +
  chain) + chain (first order empty, chain only)."""
  t, q = len(space.ops), param_bins
  first = sum((t * q) ** l for l in range(1, space.max_ops + 1))
  chain = ((1 + q) * (1 + q) * (1 + 2 * q) * (1 + q)) ** 2 - 1
  if space.second_order_prob == 0:
    return {"first_order": first, "chain": 0, "total": first}
  total = first + first * chain + chain if space.second_order_prob < 1 else (
      first * chain + chain)
  return {"first_order": first, "chain": chain, "total": total}


# --- applying a plan -------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("scale",))
def _resize_down_up(image, scale: float):
  """Bilinear resize to `scale` x the size and back (antialiased downscale)."""
  h, w = image.shape[:2]
  small = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
  down = jax.image.resize(image, (*small, image.shape[2]), "bilinear")
  return jnp.clip(jax.image.resize(down, image.shape, "bilinear"), 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("op",))
def _apply_step(image, param, key, op: int):
  if op == POISSON:
    # Photon noise at peak `param` photons for white (Real-ESRGAN's Poisson noise).
    return jnp.clip(jax.random.poisson(key, image * param).astype(image.dtype) / param,
                    0.0, 1.0)
  return distort_param(image, op, param, key)


def apply(image: jnp.ndarray, plan: Plan, key) -> jnp.ndarray:
  """One degradation on one (H, W, 3) float image in [0, 1] -> (H, W, 3) in [0, 1]."""
  keys = jax.random.split(key, len(plan))
  x = image
  for (op, p), k in zip(plan, keys):
    if op == RESIZE:  # the scale sets static shapes: one program per grid value
      x = _resize_down_up(x, scale=float(p))
    else:
      x = _apply_step(x, jnp.float32(p), k, op=op)
  return x
